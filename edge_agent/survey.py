"""Site survey: which APs and beacons are heard, how strongly, and whether site.json has them.

Runs on survey-mode observations (every BSSID kept). Its output stays on the engineer's machine:
it lists neighbours' APs too, which is why the agent never does this unless asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.observations import BleObs, Observation, WifiObs
from edge_agent.site import Site

# Nominal model values for a draft site.json: a typical enterprise AP at 1 m, an iBeacon's
# "measured power" default, and indoor exponents; `edge-agent calibrate` replaces them.
DRAFT_WIFI_RSSI_1M_DBM = -40.0
DRAFT_WIFI_PLE = 2.5
DRAFT_BLE_RSSI_1M_DBM = -59.0
DRAFT_BLE_PLE = 2.0
DRAFT_AP_Z_M = 3.0
DRAFT_BEACON_Z_M = 2.5
# Heard fewer times than this in a survey: a passing phone hotspot or a far neighbour.
DEFAULT_MIN_COUNT = 10


@dataclass
class HeardStats:
    """Running statistics of one transmitter (Welford's mean and variance)."""

    kind: str  # "wifi" | "ble"
    key: str  # BSSID or beacon id
    ssid: str = ""
    address: str = ""
    channels: set[int] = field(default_factory=set)
    count: int = 0
    mean_dbm: float = 0.0
    _m2: float = 0.0
    min_dbm: float = math.inf
    max_dbm: float = -math.inf
    first_t: float = math.inf
    last_t: float = -math.inf
    surveyed: bool = False

    def add(self, t: float, rssi_dbm: float) -> None:
        self.count += 1
        d = rssi_dbm - self.mean_dbm
        self.mean_dbm += d / self.count
        self._m2 += d * (rssi_dbm - self.mean_dbm)
        self.min_dbm = min(self.min_dbm, rssi_dbm)
        self.max_dbm = max(self.max_dbm, rssi_dbm)
        self.first_t = min(self.first_t, t)
        self.last_t = max(self.last_t, t)

    @property
    def std_db(self) -> float:
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        heard = self.count > 0
        return {
            "kind": self.kind, "id": self.key, "ssid": self.ssid, "address": self.address,
            "channels": sorted(self.channels), "count": self.count,
            "rssi_mean_dbm": round(self.mean_dbm, 1) if heard else None,
            "rssi_min_dbm": self.min_dbm if heard else None,
            "rssi_max_dbm": self.max_dbm if heard else None,
            "rssi_std_db": round(self.std_db, 2) if heard else None,
            "first_t": self.first_t if heard else None,
            "last_t": self.last_t if heard else None,
            "surveyed": self.surveyed,
        }


@dataclass
class SurveyReport:
    heard: list[HeardStats]  # strongest mean first, Wi-Fi then BLE
    missing: list[HeardStats]  # in site.json but never heard (moved, off, out of range)
    observations: int = 0
    start_t: float | None = None
    end_t: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"observations": self.observations, "start": self.start_t, "end": self.end_t,
                "heard": [h.to_dict() for h in self.heard],
                "surveyed_not_heard": [m.to_dict() for m in self.missing]}


def survey(observations: Iterable[Observation], site: Site | None = None) -> SurveyReport:
    """Aggregate survey-mode observations per AP / beacon; mark the ones site.json knows."""
    stats: dict[tuple[str, str], HeardStats] = {}
    n = 0
    t0: float | None = None
    t1: float | None = None
    for ob in observations:
        if isinstance(ob, WifiObs):
            k = ("wifi", ob.bssid)
            h = stats.get(k)
            if h is None:
                h = stats[k] = HeardStats("wifi", ob.bssid)
            if ob.ssid:
                h.ssid = ob.ssid
            if ob.channel:
                h.channels.add(ob.channel)
        elif isinstance(ob, BleObs):
            k = ("ble", ob.beacon_id)
            h = stats.get(k)
            if h is None:
                h = stats[k] = HeardStats("ble", ob.beacon_id)
            if ob.address:
                h.address = ob.address
        else:
            continue
        h.add(ob.t, ob.rssi_dbm)
        n += 1
        t0 = ob.t if t0 is None else min(t0, ob.t)
        t1 = ob.t if t1 is None else max(t1, ob.t)
    missing: list[HeardStats] = []
    if site is not None:
        for ap in site.wifi_aps:
            h = stats.get(("wifi", ap.bssid))
            if h is None:
                missing.append(HeardStats("wifi", ap.bssid, ssid=ap.ssid, surveyed=True,
                                          channels={ap.channel} if ap.channel else set()))
            else:
                h.surveyed = True
        for b in site.ble_beacons:
            h = stats.get(("ble", b.beacon_id))
            if h is None and b.address:
                h = stats.get(("ble", b.address))
            if h is None:
                missing.append(HeardStats("ble", b.beacon_id, address=b.address, surveyed=True))
            else:
                h.surveyed = True
    heard = sorted(stats.values(), key=lambda s: (s.kind != "wifi", -s.mean_dbm))
    return SurveyReport(heard, missing, n, t0, t1)


def draft_site(report: SurveyReport, base: Site | None = None, *, name: str = "my-plant",
               min_count: int = DEFAULT_MIN_COUNT) -> dict[str, Any]:
    """A draft site.json: surveyed entries kept, new ones added with x/y null to fill in.

    The nulls make `edge-agent validate` fail, naming each position still to measure.
    """
    if base is not None:
        d = base.to_dict()
    else:
        d = {"site": name, "origin": {"lat": None, "lon": None, "alt": 0.0},
             "bounds": {"xmin": 0, "ymin": 0, "xmax": None, "ymax": None},
             "zones": [], "wifi_aps": [], "ble_beacons": []}
    for h in report.heard:
        if h.surveyed or h.count < min_count:
            continue
        if h.kind == "wifi":
            d["wifi_aps"].append({
                "bssid": h.key, "ssid": h.ssid,
                "channel": min(h.channels) if h.channels else 0,
                "x": None, "y": None, "z": DRAFT_AP_Z_M, "rssi_1m_dbm": DRAFT_WIFI_RSSI_1M_DBM,
                "path_loss_exponent": DRAFT_WIFI_PLE})
        else:
            entry: dict[str, Any] = {}
            parts = h.key.split("/")
            if len(parts) == 3:
                entry.update(uuid=parts[0], major=int(parts[1]), minor=int(parts[2]))
                if h.address:
                    entry["address"] = h.address
            else:
                entry["address"] = h.address or h.key
            entry.update(x=None, y=None, z=DRAFT_BEACON_Z_M, rssi_1m_dbm=DRAFT_BLE_RSSI_1M_DBM,
                         path_loss_exponent=DRAFT_BLE_PLE)
            d["ble_beacons"].append(entry)
    return d


def format_table(report: SurveyReport) -> str:
    """A plain-text table for a terminal, strongest first."""
    lines = [f"{'kind':4} {'id':44} {'ssid':16} {'ch':>5} {'count':>6} {'mean':>6} {'min':>5} "
             f"{'max':>5} {'std':>5}  surveyed"]
    for h in report.heard:
        ch = ",".join(map(str, sorted(h.channels))) or "-"
        lines.append(f"{h.kind:4} {h.key:44.44} {h.ssid:16.16} {ch:>5} {h.count:6d} "
                     f"{h.mean_dbm:6.1f} {h.min_dbm:5.0f} {h.max_dbm:5.0f} {h.std_db:5.1f}  "
                     f"{'yes' if h.surveyed else 'no'}")
    for m in report.missing:
        lines.append(f"{m.kind:4} {m.key:44.44} {m.ssid:16.16} {'-':>5} {0:6d} {'-':>6} "
                     f"{'-':>5} {'-':>5} {'-':>5}  yes, NOT HEARD")
    return "\n".join(lines)
