"""NMEA 0183 sentences as a GNSS receiver prints them: RMC, GGA, GST, GSA, GSV (any talker).

Formatting follows what u-blox receivers emit (hhmmss.ss times, 7-decimal minutes for cm-level
positions, empty fields when there is no fix), so the bundle reads like a real receiver log.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

KNOTS_PER_MPS = 1.0 / 0.514444


def nmea_sentence(body: str) -> str:
    """"$" + body + "*" + the two-hex-digit XOR checksum of body (no line ending)."""
    body = body.strip().lstrip("$")
    if "*" in body:
        body = body.split("*", 1)[0]
    cs = 0
    for ch in body.encode("ascii"):
        cs ^= ch
    return f"${body}*{cs:02X}"


def nmea_time(t_s: float) -> tuple[str, str]:
    """UTC seconds to ("hhmmss.ss", "ddmmyy")."""
    cs_total = round(t_s * 100)
    whole, cs = divmod(cs_total, 100)
    tm = time.gmtime(whole)
    return (f"{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}.{cs:02d}",
            f"{tm.tm_mday:02d}{tm.tm_mon:02d}{tm.tm_year % 100:02d}")


def nmea_lat(lat: float) -> tuple[str, str]:
    a = abs(lat)
    deg = int(a)
    minutes = (a - deg) * 60.0
    if round(minutes, 7) >= 60.0:
        deg, minutes = deg + 1, 0.0
    return f"{deg:02d}{minutes:010.7f}", "N" if lat >= 0 else "S"


def nmea_lon(lon: float) -> tuple[str, str]:
    a = abs(lon)
    deg = int(a)
    minutes = (a - deg) * 60.0
    if round(minutes, 7) >= 60.0:
        deg, minutes = deg + 1, 0.0
    return f"{deg:03d}{minutes:010.7f}", "E" if lon >= 0 else "W"


def rmc(talker: str, t_s: float, lat: float | None, lon: float | None, speed_mps: float = 0.0,
        course_deg: float | None = None) -> str:
    """RMC; lat None gives the no-fix form (status V, mode N)."""
    hms, date = nmea_time(t_s)
    if lat is None or lon is None:
        return nmea_sentence(f"{talker}RMC,{hms},V,,,,,,,{date},,,N")
    la, ns = nmea_lat(lat)
    lo, ew = nmea_lon(lon)
    course = "" if course_deg is None else f"{course_deg % 360.0:.2f}"
    return nmea_sentence(f"{talker}RMC,{hms},A,{la},{ns},{lo},{ew},"
                         f"{speed_mps * KNOTS_PER_MPS:.3f},{course},{date},,,A")


def gga(talker: str, t_s: float, lat: float | None, lon: float | None, quality: int = 1,
        num_sats: int = 0, hdop: float = 99.99, alt_m: float = 0.0,
        geoid_sep_m: float = 47.0) -> str:
    """GGA; lat None or quality 0 gives the no-fix form."""
    hms, _ = nmea_time(t_s)
    if lat is None or lon is None or quality == 0:
        return nmea_sentence(f"{talker}GGA,{hms},,,,,0,{num_sats:02d},99.99,,,,,,")
    la, ns = nmea_lat(lat)
    lo, ew = nmea_lon(lon)
    return nmea_sentence(f"{talker}GGA,{hms},{la},{ns},{lo},{ew},{quality},{num_sats:02d},"
                         f"{hdop:.2f},{alt_m:.1f},M,{geoid_sep_m:.1f},M,,")


def gst(talker: str, t_s: float, rms_m: float, sigma_lat_m: float, sigma_lon_m: float,
        sigma_alt_m: float) -> str:
    """GST: pseudorange residual RMS and 1-sigma errors in latitude, longitude, altitude."""
    hms, _ = nmea_time(t_s)
    smaj = max(sigma_lat_m, sigma_lon_m)
    smin = min(sigma_lat_m, sigma_lon_m)
    return nmea_sentence(f"{talker}GST,{hms},{rms_m:.1f},{smaj:.1f},{smin:.1f},0.0,"
                         f"{sigma_lat_m:.1f},{sigma_lon_m:.1f},{sigma_alt_m:.1f}")


def gsa(talker: str, prns: Sequence[int], pdop: float, hdop: float, vdop: float,
        fix_3d: bool = True) -> str:
    sv = [f"{p:02d}" for p in prns[:12]] + [""] * (12 - min(12, len(prns)))
    mode = "3" if fix_3d and prns else "1"
    return nmea_sentence(f"{talker}GSA,A,{mode},{','.join(sv)},{pdop:.2f},{hdop:.2f},{vdop:.2f}")


def gsv(talker: str, sats: Sequence[tuple[int, int, int, int | None]]) -> list[str]:
    """GSV sentences for (prn, elevation_deg, azimuth_deg, snr_dbhz or None), 4 per sentence."""
    n_msgs = max(1, (len(sats) + 3) // 4)
    out = []
    for i in range(n_msgs):
        group = sats[i * 4:(i + 1) * 4]
        fields = "".join(f",{p:02d},{el:02d},{az:03d}," + ("" if snr is None else f"{snr:02d}")
                         for p, el, az, snr in group)
        out.append(nmea_sentence(f"{talker}GSV,{n_msgs},{i + 1},{len(sats):02d}{fields}"))
    return out
