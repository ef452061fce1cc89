"""What the truck's receivers capture: Wi-Fi beacons through a hopping monitor interface, BLE
advertisements through a channel-rotating scanner. Vectorised per emitter."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from firmware_sim.motion import Track
from firmware_sim.plant import Plant
from firmware_sim.radio import TrueEmitter, dbm_round
from firmware_sim.scenarios import BleConfig, WifiConfig
from firmware_sim.world import BleEmitter, WifiEmitter

IntArray = npt.NDArray[np.int64]
Array = npt.NDArray[np.float64]

BEACON_AIRTIME_S = 0.0009  # ~110-byte beacon at 1 Mb/s: the capture stamps the frame's end
ADV_CHANNELS = np.array([37, 38, 39])
BLE_FREQS_MHZ = np.array([2402.0, 2426.0, 2480.0])


@dataclass(frozen=True)
class Captured:
    """The frames of one emitter that the receiver captured."""

    index: int  # emitter index in the world
    t_us: IntArray  # pcap record time
    rssi_dbm: IntArray
    channel: IntArray  # Wi-Fi channel, or BLE advertising channel (37-39)
    seq: IntArray | None = None  # Wi-Fi: the 802.11 sequence number (12 bits)
    tsf_us: IntArray | None = None  # Wi-Fi: the AP's TSF timer in the beacon


def shadow_along(em: TrueEmitter, track: Track, t_s: Array) -> Array:
    """Shadowing at the truck's position at t: evaluated at the track's knots (0.25 m apart
    when moving) and interpolated, far cheaper than at every frame and as fine as the field."""
    at_knots = em.shadow(track.x, track.y)
    out: Array = np.interp(t_s, track.t, at_knots)
    return out


def hop_channel(t_s: Array, hop_t0_s: float, wc: WifiConfig) -> tuple[IntArray,
                                                                       npt.NDArray[np.bool_]]:
    """The channel the monitor interface is tuned to at t, and whether it is retuning then."""
    pos = (t_s - hop_t0_s) / wc.dwell_s
    slot = np.floor(pos)
    chans = np.asarray(wc.channels)[(slot.astype(np.int64)) % len(wc.channels)]
    retuning = (pos - slot) * wc.dwell_s < wc.switch_s
    return chans, retuning


def interference_bursts(rng: np.random.Generator, t0_s: float, duration_s: float,
                        share: float, mean_s: float) -> tuple[Array, Array]:
    """(start, end) of interference bursts: Poisson starts, exponential lengths, `share` of the
    time on average (microwave ovens, a busy neighbour, a welding bay)."""
    if share <= 0:
        return np.zeros(0), np.zeros(0)
    rate = share / ((1 - share) * mean_s)  # bursts per second of quiet time
    n = int(rng.poisson(rate * duration_s * 1.5)) + 1
    gaps = rng.exponential(1 / rate, n)
    lens = rng.exponential(mean_s, n)
    starts = t0_s + np.cumsum(gaps) + np.concatenate(([0.0], np.cumsum(lens)[:-1]))
    return starts, starts + lens


def in_bursts(t_s: Array, starts: Array, ends: Array) -> npt.NDArray[np.bool_]:
    i = np.searchsorted(starts, t_s, side="right") - 1
    out: npt.NDArray[np.bool_] = (i >= 0) & (t_s < ends[np.maximum(i, 0)])
    return out


def capture_wifi(emitters: tuple[WifiEmitter, ...], wc: WifiConfig, plant: Plant, track: Track,
                 t0_s: float, duration_s: float, hop_t0_s: float,
                 rng: np.random.Generator, rx_gain_db: float = 0.0) -> list[Captured]:
    """Every beacon the monitor interface captures, per emitter.

    Losses: a baseline rate plus interference bursts that lose burst_loss of the frames while
    they last; together they average wc.link.frame_loss."""
    b_start, b_end = interference_bursts(rng, t0_s, duration_s, wc.burst_share, wc.burst_mean_s)
    base = (wc.link.frame_loss - wc.burst_share * wc.burst_loss) / (1 - wc.burst_share)
    link = replace(wc.link, frame_loss=max(0.0, base))
    out = []
    for i, em in enumerate(emitters):
        if wc.outage is not None and wc.outage[0] == i:
            down = (t0_s + wc.outage[1], t0_s + wc.outage[1] + wc.outage[2])
        else:
            down = (0.0, 0.0)
        n = math.ceil((duration_s - em.phase_s) / em.interval_s)
        k = np.arange(max(n, 0))
        tx = t0_s + em.phase_s + k * em.interval_s
        tx = tx + rng.exponential(wc.beacon_defer_mean_s, len(tx)) + BEACON_AIRTIME_S
        chan, retuning = hop_channel(tx, hop_t0_s, wc)
        heard = (chan == em.channel) & ~retuning & (tx < t0_s + duration_s)
        heard &= ~((tx >= down[0]) & (tx < down[1]))  # the AP is off (reboot, power cut)
        t = tx[heard]
        x, y, _ = track.at(t)
        freq = np.full(len(t), em.true.freqs_mhz[0])
        rssi, ok = em.true.measure(x, y, t - t0_s, freq, plant, link, rng,
                                   track.heading_at(t), rx_gain_db, shadow_along(em.true, track, t))
        ok &= ~(in_bursts(t, b_start, b_end) & (rng.random(len(t)) < wc.burst_loss))
        t_us = np.rint(t[ok] * 1e6).astype(np.int64)
        kk = k[heard][ok]
        tsf = em.tsf0_us + np.rint((em.phase_s + kk * em.interval_s) * 1e6).astype(np.int64)
        seq = (kk + em.tsf0_us // 1000) % 4096  # the counter started somewhere long ago
        out.append(Captured(i, t_us, dbm_round(rssi[ok]), np.full(int(ok.sum()), em.channel),
                            seq, tsf))
    return out


def capture_ble(emitters: tuple[BleEmitter, ...], bc: BleConfig, collision_loss: float,
                plant: Plant, track: Track, t0_s: float, duration_s: float, scan_t0_s: float,
                rng: np.random.Generator, rx_gain_db: float = 0.0) -> list[Captured]:
    link = replace(bc.link, frame_loss=1 - (1 - bc.link.frame_loss) * (1 - collision_loss))
    out = []
    for i, em in enumerate(emitters):
        # Advertising events: interval plus the spec's 0-10 ms pseudo-random delay, accumulated.
        n = math.ceil(duration_s / em.interval_s) + 1
        steps = em.interval_s + rng.uniform(0, bc.adv_delay_max_s, n)
        ev = t0_s + em.phase_s + np.concatenate(([0.0], np.cumsum(steps[:-1])))
        ev = ev[ev < t0_s + duration_s - 2 * bc.channel_spacing_s]
        ts: list[Array] = []
        cs: list[IntArray] = []
        for j in range(3):
            t = ev + j * bc.channel_spacing_s + bc.airtime_s
            scan = ((t - scan_t0_s) / bc.scan_interval_s).astype(np.int64) % 3
            hit = scan == j
            ts.append(t[hit])
            cs.append(np.full(int(hit.sum()), j, dtype=np.int64))
        t = np.concatenate(ts)
        cidx = np.concatenate(cs)
        order = np.argsort(t, kind="stable")
        t, cidx = t[order], cidx[order]
        x, y, _ = track.at(t)
        rssi, ok = em.true.measure(x, y, t - t0_s, BLE_FREQS_MHZ[cidx], plant, link, rng,
                                   track.heading_at(t), rx_gain_db, shadow_along(em.true, track, t))
        t_us = np.rint(t[ok] * 1e6).astype(np.int64)
        out.append(Captured(i, t_us, dbm_round(rssi[ok]), ADV_CHANNELS[cidx[ok]]))
    return out
