"""The GNSS receiver: 1 Hz epochs printed as NMEA, with errors as a real receiver makes them.

Outdoors the error wanders slowly (first-order Gauss-Markov per axis) and grows next to the hall
wall (multipath, half the sky hidden). Inside, fixes survive only near an open door, with large
errors and optimistic self-assessment; deeper in there is no fix (RMC V, GGA 0). After an outage
the receiver needs a few seconds to reacquire. Now and then it outputs a wild fix, 20-40 m off,
with an HDOP (and GST) that look perfectly fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.capture.nmea_writer import gga, gsa, gst, gsv, nmea_lat, nmea_lon, rmc
from edge_agent.site import Site
from firmware_sim.motion import Track
from firmware_sim.plant import Plant
from firmware_sim.scenarios import GnssConfig

Array = npt.NDArray[np.float64]

WALL_MULTIPATH_SCALE_M = 6.0  # multipath next to a tall wall fades out over ~ its height
GN_SATS_OPEN_SKY = (16, 24)  # GPS+GLONASS+Galileo+BeiDou in view with a clear sky
GP_SATS_OPEN_SKY = (8, 12)  # GPS only
AVAILABILITY_TAU_S = 20.0  # how long signal stays (or stays away) near a door
INDOOR_SELF_CONFIDENCE = 0.5  # indoors a receiver reports about half its real error
ANTENNA_HEIGHT_M = 2.2  # GNSS antenna on the overhead guard's roof
VERTICAL_ERROR_RATIO = 1.7  # vertical error is typically 1.5-2x the horizontal (VDOP > HDOP)


@dataclass(frozen=True)
class Epoch:
    """One receiver epoch: what it printed (lines) and what it truly was (for tests)."""

    t: float
    fix: bool
    lat: float
    lon: float
    hdop: float
    num_sats: int
    sigma_lat_m: float  # GST's self-assessed 1-sigma errors (when printed)
    sigma_lon_m: float
    err_x_m: float  # true error of the fix (0 without fix)
    err_y_m: float
    wild: bool
    indoor_depth_m: float  # 0 outdoors
    lines: tuple[str, ...]


def _parse_degrees(dm: str, hemisphere: str) -> float:
    # The same arithmetic as the agent's NMEA reader, so replayed fixes match to the last bit.
    v = float(dm)
    deg = math.floor(v / 100.0)
    out = deg + (v - deg * 100.0) / 60.0
    return -out if hemisphere in ("S", "W") else out


def printed_lat_lon(lat: float, lon: float) -> tuple[float, float]:
    """The latitude and longitude a reader gets back from the printed NMEA fields."""
    return _parse_degrees(*nmea_lat(lat)), _parse_degrees(*nmea_lon(lon))


def simulate_gnss(gc: GnssConfig, plant: Plant, site: Site, track: Track, t0_s: float,
                  duration_s: float, rng: np.random.Generator) -> list[Epoch]:
    n = int(duration_s)
    t = t0_s + np.arange(n, dtype=np.float64)
    x, y, v = track.at(t)
    dx = np.gradient(x) if n > 1 else np.zeros(n)
    dy = np.gradient(y) if n > 1 else np.zeros(n)
    outdoors = y > plant.wall_y_m
    depth = np.where(outdoors, 0.0, plant.door_distance(x, y))
    # error processes
    a = math.exp(-1.0 / gc.tau_s)
    w = rng.standard_normal((n, 2)) * math.sqrt(1 - a * a)
    e = np.zeros((n, 2))
    e_prev = rng.standard_normal(2)
    for k in range(n):
        e_prev = a * e_prev + w[k]
        e[k] = e_prev
    hd = np.zeros(n)
    h_prev = 0.0
    hw = rng.standard_normal(n) * math.sqrt(1 - a * a)
    for k in range(n):
        h_prev = a * h_prev + hw[k]
        hd[k] = h_prev
    wall_d = np.abs(y - plant.wall_y_m)
    mult_out = 1 + gc.wall_multipath_gain * np.exp(-wall_d / WALL_MULTIPATH_SCALE_M)
    sigma = np.where(outdoors, gc.outdoor_sigma_m * mult_out,
                     3.0 + gc.indoor_sigma_per_m * depth)
    hdop = np.where(outdoors, 0.8 + 0.15 * hd + 0.6 * (mult_out - 1),
                    1.8 + 0.35 * depth + 0.3 * np.abs(hd))
    hdop = np.round(np.maximum(hdop, 0.5), 2)
    sats_rng = GN_SATS_OPEN_SKY if gc.talker == "GN" else GP_SATS_OPEN_SKY
    sats_open = rng.integers(sats_rng[0], sats_rng[1] + 1)
    sats = np.where(outdoors, sats_open - np.round(4 * (mult_out - 1) / gc.wall_multipath_gain),
                    np.maximum(4, sats_open // 2 - np.round(depth / 3))).astype(int)
    avail_p = np.where(outdoors, 1.0, np.where(depth < gc.deep_indoor_m,
                                               np.exp(-depth / gc.door_decay_m), 0.0))
    # Near a door the signal comes and goes over tens of seconds (satellites moving behind the
    # door frame, trucks in the way): a slow Gauss-Markov margin, thresholded so that the
    # share of time with signal at a given depth is avail_p.
    b = math.exp(-1.0 / AVAILABILITY_TAU_S)
    zw = rng.standard_normal(n) * math.sqrt(1 - b * b)
    z = np.zeros(n)
    z_prev = float(rng.standard_normal())
    for k in range(n):
        z_prev = b * z_prev + zw[k]
        z[k] = z_prev
    u = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))  # uniform marginals
    avail = u < avail_p
    # lock: after an outage, `reacquire` seconds of signal before the first fix
    fix = np.zeros(n, dtype=bool)
    need = rng.uniform(*gc.reacquire_s)
    since = 0.0
    locked = False
    for k in range(n):
        if avail[k]:
            since += 1.0
            if not locked and since >= need:
                locked = True
            fix[k] = locked
        else:
            if locked:  # losing lock: reacquisition needs a new hot start
                need = rng.uniform(*gc.reacquire_s)
            locked = False
            since = 0.0
    # wild fixes
    wild = np.zeros(n, dtype=bool)
    wild_off = np.zeros((n, 2))
    k = 0
    p_wild = gc.wild_per_hour / 3600.0
    while k < n:
        if fix[k] and rng.random() < p_wild:
            m = int(rng.integers(gc.wild_epochs[0], gc.wild_epochs[1] + 1))
            ang = rng.uniform(0, 2 * math.pi)
            r = rng.uniform(*gc.wild_range_m)
            wild[k:k + m] = fix[k:k + m]
            wild_off[k:k + m] = (r * math.cos(ang), r * math.sin(ang))
            k += m
        else:
            k += 1
    err = e * sigma[:, None] + wild_off
    reported = sigma * np.where(outdoors, rng.uniform(0.8, 1.25, n), INDOOR_SELF_CONFIDENCE)
    reported = np.where(wild, gc.outdoor_sigma_m * rng.uniform(0.8, 1.25, n), reported)
    hdop = np.where(wild, np.round(rng.uniform(0.7, 1.1, n), 2), hdop)
    sky = _sky(rng, 24)
    epochs = []
    tk = gc.talker
    for k in range(n):
        if not fix[k]:
            lines = [rmc(tk, t[k], None, None), gga(tk, t[k], None, None)]
            if gc.gsa:
                lines.append(gsa(tk, [], 99.99, 99.99, 99.99, fix_3d=False))
            epochs.append(Epoch(float(t[k]), False, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, False,
                                float(depth[k]), tuple(lines)))
            continue
        fx, fy = x[k] + err[k, 0], y[k] + err[k, 1]
        lat, lon = site.to_wgs84(float(fx), float(fy))
        speed = max(0.0, float(v[k]) + 0.05 * float(rng.standard_normal()))
        course = math.degrees(math.atan2(dx[k], dy[k])) if v[k] > 0.3 else None
        ns = int(sats[k])
        lines = [rmc(tk, t[k], lat, lon, speed, course),
                 gga(tk, t[k], lat, lon, 1, ns, float(hdop[k]),
                     site.origin.alt + ANTENNA_HEIGHT_M
                     + VERTICAL_ERROR_RATIO * float(e[k, 1] * sigma[k]))]
        s_lat = round(float(reported[k]) * rng.uniform(0.85, 1.15), 1)
        s_lon = round(float(reported[k]) * rng.uniform(0.85, 1.15), 1)
        if gc.gst:
            lines.append(gst(tk, t[k], round(float(reported[k]) * 1.2, 1), s_lat, s_lon,
                             round(1.7 * float(reported[k]), 1)))
        if gc.gsa:
            prns = [p for p, *_ in sky[:ns]]
            lines.append(gsa(tk, prns, round(float(hdop[k]) * 1.6, 2), float(hdop[k]),
                             round(float(hdop[k]) * 1.3, 2)))
        if gc.gsv:
            snr_drop = 0 if outdoors[k] else 15
            lines += gsv("GP",  # satellites in view are listed per constellation: GPS here
                         [(p, el, az, max(10, snr - snr_drop)) for p, el, az, snr in sky[:ns]])
        plat, plon = printed_lat_lon(lat, lon)
        px, py = site.to_local(plat, plon)
        epochs.append(Epoch(float(t[k]), True, plat, plon, float(hdop[k]), ns, s_lat, s_lon,
                            px - float(x[k]), py - float(y[k]), bool(wild[k]), float(depth[k]),
                            tuple(lines)))
    return epochs


def _sky(rng: np.random.Generator, n: int) -> list[tuple[int, int, int, int]]:
    """Satellites in view, highest first: (prn, elevation, azimuth, C/N0 dB-Hz)."""
    prns = rng.choice(np.arange(1, 33), size=min(n, 32), replace=False)
    el = np.sort(rng.uniform(5, 85, len(prns)))[::-1]
    out = []
    for p, e_deg in zip(prns, el, strict=True):
        snr = int(28 + 20 * math.sin(math.radians(float(e_deg))) + rng.normal(0, 2))
        out.append((int(p), int(e_deg), int(rng.uniform(0, 360)), snr))
    return out
