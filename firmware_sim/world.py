"""The plant's radios as surveyed (site.json) and as they really are (true positions and radio
parameters, random fields), drawn once per (seed, scenario seed key)."""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass, replace

import numpy as np

from edge_agent.site import BleBeacon, Origin, Site, WifiAp
from firmware_sim.plant import Plant
from firmware_sim.radio import TrueEmitter
from firmware_sim.scenarios import Scenario
from firmware_sim.seeds import stream

ORIGIN = Origin(47.4735, 6.8112, 340.0)  # a plant somewhere in the Upper Rhine valley
SITE_SSID = "plant-ops"
FOREIGN_SSIDS = ("neighbour-guest", "ACME-Logistics", "AndroidAP_4821", "DIRECT-7c-Printer",
                 "Truckers-WiFi")
MAX_UPTIME_US = 30 * 86400 * 1_000_000  # APs run for weeks between reboots
_AP_OUI = "b4:fb:e4"  # one vendor for the plant's APs, as in a real managed network
_BLE_SITE_UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"


@dataclass(frozen=True)
class WifiEmitter:
    bssid: str
    ssid: str
    channel: int
    surveyed: bool
    true: TrueEmitter
    interval_s: float  # beacon interval including the AP's clock error
    phase_s: float
    tsf0_us: int = 0  # the AP's TSF timer at the run's start (its uptime)


@dataclass(frozen=True)
class BleEmitter:
    beacon_id: str  # site key; for foreign advertisers their address
    address: str
    ibeacon: tuple[str, int, int, int] | None
    eddystone: tuple[str, str, int] | None
    surveyed: bool
    true: TrueEmitter
    interval_s: float
    phase_s: float


@dataclass(frozen=True)
class World:
    survey: Site
    true_site: Site
    wifi: tuple[WifiEmitter, ...]
    ble: tuple[BleEmitter, ...]
    ble_collision_loss: float


def _mac(rng: np.random.Generator, prefix: str) -> str:
    return prefix + "".join(f":{b:02x}" for b in rng.integers(0, 256, 3))


def _random_static(rng: np.random.Generator) -> str:
    b = rng.integers(0, 256, 6)
    b[0] |= 0xC0
    return ":".join(f"{int(v):02X}" for v in b)


def build_world(sc: Scenario, plant: Plant, seed: int) -> World:
    from edge_agent.sources.dot11 import channel_to_freq

    key = sc.seed_key
    wc = sc.wifi
    survey_aps: list[WifiAp] = []
    true_aps: list[WifiAp] = []
    wifi: list[WifiEmitter] = []
    placements = [(x, y, wc.ap_height_m) for x, y in wc.ap_xy] + [
        (x, y, wc.yard_ap_height_m) for x, y in wc.yard_ap_xy]
    for i, (x, y, z) in enumerate(placements):
        r = stream(seed, key + "/ap", i)
        bssid = _mac(r, _AP_OUI)
        # 4 APs a row: neighbours along and across rows get different channels
        channel = wc.channels[(i + i // 4) % len(wc.channels)]
        s_rssi = round(2 * (wc.survey_rssi_1m_dbm + wc.survey_rssi_sd_db * r.standard_normal())) / 2
        s_exp = wc.survey_exponent
        sx = round(x + wc.survey_position_sd_m * r.standard_normal(), 1)
        sy = round(y + wc.survey_position_sd_m * r.standard_normal(), 1)
        t_rssi = s_rssi + wc.true_offset_mean_db + wc.true_offset_sd_db * r.standard_normal()
        t_exp = float(np.clip(s_exp + wc.true_exponent_bias
                              + wc.true_exponent_sd * r.standard_normal(), 1.6, 4.0))
        tx, ty = x, y
        if wc.moved_ap is not None and wc.moved_ap[0] == i:
            tx, ty = x + wc.moved_ap[1], y + wc.moved_ap[2]
        freq = float(channel_to_freq(channel))
        te = TrueEmitter.draw(stream(seed, key + "/ap-fields", i), bssid, tx, ty, z, t_rssi,
                              t_exp, (freq,), wc.link)
        survey_aps.append(WifiAp(bssid, SITE_SSID, channel, sx, sy, z, s_rssi, s_exp))
        true_aps.append(WifiAp(bssid, SITE_SSID, channel, tx, ty, z, t_rssi, t_exp))
        interval = wc.beacon_interval_s * (1 + r.uniform(-wc.clock_ppm, wc.clock_ppm) * 1e-6)
        phase = float(r.uniform(0, wc.beacon_interval_s))
        wifi.append(WifiEmitter(bssid, SITE_SSID, channel, True, te, interval, phase,
                                int(r.integers(0, MAX_UPTIME_US))))
    b = plant.bounds
    for i in range(wc.foreign_aps):
        r = stream(seed, key + "/foreign-ap", i)
        side = i % 3  # beyond the west, east or south fence
        fx = [b.xmin - r.uniform(20, 60), b.xmax + r.uniform(20, 60),
              r.uniform(b.xmin, b.xmax)][side]
        fy = [r.uniform(b.ymin, b.ymax), r.uniform(b.ymin, b.ymax),
              b.ymin - r.uniform(20, 50)][side]
        channel = int(r.choice([1, 6, 11, 3, 9]))
        freq = float(channel_to_freq(channel))
        te = TrueEmitter.draw(stream(seed, key + "/foreign-fields", i), "", fx, fy, 4.0,
                              -35.0, 2.3, (freq,), wc.link)
        bssid = _mac(r, "3c:84:6a")
        phase = float(r.uniform(0, wc.beacon_interval_s))
        wifi.append(WifiEmitter(bssid, FOREIGN_SSIDS[i % len(FOREIGN_SSIDS)], channel, False,
                                te, wc.beacon_interval_s, phase,
                                int(r.integers(0, MAX_UPTIME_US))))

    survey_beacons: list[BleBeacon] = []
    true_beacons: list[BleBeacon] = []
    ble: list[BleEmitter] = []
    bc = sc.ble
    collision = 0.0
    if bc is not None:
        freqs = (2402.0, 2426.0, 2480.0)
        for i, (x, y, z) in enumerate(bc.beacon_xyz):
            r = stream(seed, key + "/beacon", i)
            address = _random_static(r)
            s_rssi, s_exp = bc.survey_rssi_1m_dbm, bc.survey_exponent
            t_rssi = s_rssi + bc.true_offset_mean_db + bc.true_offset_sd_db * r.standard_normal()
            t_exp = float(np.clip(s_exp + bc.true_exponent_bias
                                  + bc.true_exponent_sd * r.standard_normal(), 1.5, 4.0))
            te = TrueEmitter.draw(stream(seed, key + "/beacon-fields", i), "", x, y, z, t_rssi,
                                  t_exp, freqs, bc.link)
            interval = float(r.choice(bc.intervals_s))
            phase = float(r.uniform(0, interval))
            if bc.address_only_every and i % bc.address_only_every == bc.address_only_every - 1:
                sb = BleBeacon(address, "", None, None, x, y, z, s_rssi, s_exp)
                ed = (f"{0x5A1E:04x}" + "00" * 8, f"{i:012x}", -20)
                ble.append(BleEmitter(address, address, None, ed, True,
                                      replace(te, key=address), interval, phase))
            else:
                sb = BleBeacon("", _BLE_SITE_UUID, 1, i + 1, x, y, z, s_rssi, s_exp)
                ib = (_BLE_SITE_UUID, 1, i + 1, round(s_rssi))
                ble.append(BleEmitter(sb.beacon_id, address, ib, None, True,
                                      replace(te, key=sb.beacon_id), interval, phase))
            survey_beacons.append(sb)
            true_beacons.append(replace(sb, rssi_1m_dbm=t_rssi, path_loss_exponent=t_exp))
        for i in range(bc.foreign_advertisers):
            r = stream(seed, key + "/foreign-ble", i)
            address = _random_static(r)
            fx, fy = r.uniform(b.xmin, b.xmax), r.uniform(b.ymin, b.ymax)
            te = TrueEmitter.draw(stream(seed, key + "/foreign-ble-fields", i), address, fx, fy,
                                  1.2, -62.0, 2.2, freqs, bc.link)
            ib = (str(uuid_mod.UUID(int=int(r.integers(0, 2**63)))), 7, i, -60)
            interval = float(r.choice((0.1, 0.25, 1.0)))
            ble.append(BleEmitter(address, address, ib, None, False, te, interval,
                                  float(r.uniform(0, interval))))
        # Pure ALOHA on each advertising channel: every event puts one packet on each channel.
        rate_per_channel = sum(1.0 / e.interval_s for e in ble)
        collision = 1.0 - float(np.exp(-2.0 * rate_per_channel * bc.airtime_s))
    survey = Site(plant.name, ORIGIN, plant.bounds, plant.zones, plant.graph.aisles(),
                  tuple(survey_aps), tuple(survey_beacons))
    true_site = replace(survey, wifi_aps=tuple(true_aps), ble_beacons=tuple(true_beacons),
                        _ap_by_bssid={})
    return World(survey, true_site, tuple(wifi), tuple(ble), collision)
