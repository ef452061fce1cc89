"""Observations: one frozen record per thing a source received, stamped with the source's own time.

`t` is UTC seconds since the epoch taken from the source itself (pcap record time, NMEA date and
time), never from the wall clock, which is what lets a replay reproduce a live run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WifiObs:
    """A beacon or probe response heard from an access point."""

    t: float
    bssid: str  # lower-case "aa:bb:cc:dd:ee:ff"
    rssi_dbm: float
    channel: int  # 0 when unknown
    freq_mhz: int = 0  # 0 when unknown
    ssid: str = ""


@dataclass(frozen=True, slots=True)
class BleObs:
    """A BLE advertisement from a beacon; `beacon_id` is the site's key for it (see site.py)."""

    t: float
    beacon_id: str
    rssi_dbm: float
    address: str = ""  # advertiser address, upper-case "AA:BB:..", when known


@dataclass(frozen=True, slots=True)
class GnssFix:
    """A GNSS position converted to the site frame, with its uncertainty.

    `sigma_m` is the 1-sigma horizontal error per axis: from GST when the receiver sends it, else
    HDOP times a receiver error figure. `lat`/`lon` keep the raw WGS84 values; `speed_mps` is
    RMC's speed over ground.
    """

    t: float
    x_m: float
    y_m: float
    sigma_m: float
    hdop: float
    fix_quality: int  # GGA quality: 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, ...
    lat: float = 0.0
    lon: float = 0.0
    num_sats: int = 0
    has_gst: bool = False
    speed_mps: float | None = None  # speed over ground (RMC: Doppler), when the receiver gives it


@dataclass(frozen=True, slots=True)
class GnssNoFix:
    """An epoch in which the receiver reported no fix (RMC status V, GGA quality 0)."""

    t: float


Observation = WifiObs | BleObs | GnssFix | GnssNoFix
