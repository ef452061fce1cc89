"""The plant survey (site.json): APs, beacons, zones, aisles and the WGS84 origin of the frame.

Loaded and validated once, then handed to fusion and heatmap; they never read files.
Format: ../shared/spec/capture-bundle.md (site.json section).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.errors import SiteError

# WGS84 ellipsoid
_WGS84_A_M = 6378137.0
_WGS84_E2 = 6.69437999014e-3


@dataclass(frozen=True, slots=True)
class Origin:
    lat: float
    lon: float
    alt: float = 0.0


@dataclass(frozen=True, slots=True)
class Bounds:
    xmin: float
    ymin: float
    xmax: float
    ymax: float

    def contains(self, x_m: float, y_m: float) -> bool:
        return self.xmin <= x_m <= self.xmax and self.ymin <= y_m <= self.ymax

    def clamp(self, x_m: float, y_m: float) -> tuple[float, float]:
        return (min(max(x_m, self.xmin), self.xmax), min(max(y_m, self.ymin), self.ymax))


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    polygon: tuple[tuple[float, float], ...]
    indoor: bool

    def contains(self, x_m: float, y_m: float) -> bool:
        """Point-in-polygon (even-odd rule); points on the lower/left edge count as inside."""
        inside = False
        pts = self.polygon
        j = len(pts) - 1
        for i in range(len(pts)):
            xi, yi = pts[i]
            xj, yj = pts[j]
            if (yi > y_m) != (yj > y_m):
                x_cross = xi + (y_m - yi) * (xj - xi) / (yj - yi)
                if x_m < x_cross:
                    inside = not inside
            j = i
        return inside


@dataclass(frozen=True, slots=True)
class Aisle:
    start: tuple[float, float]
    end: tuple[float, float]
    width_m: float


@dataclass(frozen=True, slots=True)
class WifiAp:
    bssid: str  # lower case
    ssid: str
    channel: int
    x: float
    y: float
    z: float
    rssi_1m_dbm: float
    path_loss_exponent: float


@dataclass(frozen=True, slots=True)
class BleBeacon:
    address: str  # upper case, "" when matched by iBeacon id only
    uuid: str  # lower case, "" when not an iBeacon
    major: int | None
    minor: int | None
    x: float
    y: float
    z: float
    rssi_1m_dbm: float
    path_loss_exponent: float

    @property
    def beacon_id(self) -> str:
        """The key observations use: "uuid/major/minor" for iBeacons, else the address."""
        if self.uuid and self.major is not None and self.minor is not None:
            return f"{self.uuid}/{self.major}/{self.minor}"
        return self.address


@dataclass(frozen=True)
class Site:
    site: str
    origin: Origin
    bounds: Bounds
    zones: tuple[Zone, ...] = ()
    aisles: tuple[Aisle, ...] = ()
    wifi_aps: tuple[WifiAp, ...] = ()
    ble_beacons: tuple[BleBeacon, ...] = ()
    _ap_by_bssid: dict[str, WifiAp] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._ap_by_bssid.update({ap.bssid: ap for ap in self.wifi_aps})

    def ap(self, bssid: str) -> WifiAp | None:
        """The surveyed AP with this BSSID (lower case), or None."""
        return self._ap_by_bssid.get(bssid)

    def beacon_for(self, address: str = "", uuid: str = "", major: int | None = None,
                   minor: int | None = None) -> BleBeacon | None:
        """The surveyed beacon matching an advertiser address or an iBeacon uuid/major/minor."""
        address = address.upper()
        uuid = uuid.lower()
        for b in self.ble_beacons:
            if b.uuid and uuid and b.uuid == uuid and b.major == major and b.minor == minor:
                return b
            if b.address and address and b.address == address:
                return b
        return None

    def zone_at(self, x_m: float, y_m: float) -> Zone | None:
        for z in self.zones:
            if z.contains(x_m, y_m):
                return z
        return None

    def is_indoor(self, x_m: float, y_m: float) -> bool:
        z = self.zone_at(x_m, y_m)
        return bool(z and z.indoor)

    def to_local(self, lat: float, lon: float, alt: float | None = None) -> tuple[float, float]:
        """WGS84 degrees to site metres (x east, y north) on the tangent plane at `origin`."""
        return geodetic_to_enu(lat, lon, self.origin.alt if alt is None else alt, self.origin)[:2]

    def to_wgs84(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Site metres to WGS84 degrees (inverse of to_local at origin altitude; mm accurate at
        plant scale)."""
        return enu_to_geodetic(x_m, y_m, 0.0, self.origin)[:2]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "site": self.site,
            "origin": {"lat": self.origin.lat, "lon": self.origin.lon, "alt": self.origin.alt},
            "bounds": {"xmin": self.bounds.xmin, "ymin": self.bounds.ymin,
                       "xmax": self.bounds.xmax, "ymax": self.bounds.ymax},
            "zones": [{"name": z.name, "polygon": [list(p) for p in z.polygon],
                       "indoor": z.indoor} for z in self.zones],
            "wifi_aps": [{"bssid": a.bssid, "ssid": a.ssid, "channel": a.channel, "x": a.x,
                          "y": a.y, "z": a.z, "rssi_1m_dbm": a.rssi_1m_dbm,
                          "path_loss_exponent": a.path_loss_exponent} for a in self.wifi_aps],
            "ble_beacons": [],
        }
        if self.aisles:
            d["aisles"] = [{"from": list(a.start), "to": list(a.end), "width_m": a.width_m}
                           for a in self.aisles]
        for b in self.ble_beacons:
            bd: dict[str, Any] = {}
            if b.address:
                bd["address"] = b.address
            if b.uuid:
                bd.update({"uuid": b.uuid, "major": b.major, "minor": b.minor})
            bd.update({"x": b.x, "y": b.y, "z": b.z, "rssi_1m_dbm": b.rssi_1m_dbm,
                       "path_loss_exponent": b.path_loss_exponent})
            d["ble_beacons"].append(bd)
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def geodetic_to_enu(lat: float, lon: float, alt: float,
                    origin: Origin) -> tuple[float, float, float]:
    """WGS84 (degrees, metres) to east/north/up metres at `origin`, through ECEF."""
    x, y, z = _ecef(lat, lon, alt)
    x0, y0, z0 = _ecef(origin.lat, origin.lon, origin.alt)
    dx, dy, dz = x - x0, y - y0, z - z0
    la, lo = math.radians(origin.lat), math.radians(origin.lon)
    sl, cl, so, co = math.sin(la), math.cos(la), math.sin(lo), math.cos(lo)
    e = -so * dx + co * dy
    n = -sl * co * dx - sl * so * dy + cl * dz
    u = cl * co * dx + cl * so * dy + sl * dz
    return e, n, u


def enu_to_geodetic(e: float, n: float, u: float, origin: Origin) -> tuple[float, float, float]:
    """East/north/up metres at `origin` to WGS84 (degrees, metres)."""
    la, lo = math.radians(origin.lat), math.radians(origin.lon)
    sl, cl, so, co = math.sin(la), math.cos(la), math.sin(lo), math.cos(lo)
    x0, y0, z0 = _ecef(origin.lat, origin.lon, origin.alt)
    x = x0 - so * e - sl * co * n + cl * co * u
    y = y0 + co * e - sl * so * n + cl * so * u
    z = z0 + cl * n + sl * u
    return _geodetic(x, y, z)


def _ecef(lat: float, lon: float, alt: float) -> tuple[float, float, float]:
    la, lo = math.radians(lat), math.radians(lon)
    n = _WGS84_A_M / math.sqrt(1 - _WGS84_E2 * math.sin(la) ** 2)
    return ((n + alt) * math.cos(la) * math.cos(lo), (n + alt) * math.cos(la) * math.sin(lo),
            (n * (1 - _WGS84_E2) + alt) * math.sin(la))


def _geodetic(x: float, y: float, z: float) -> tuple[float, float, float]:
    lon = math.atan2(y, x)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - _WGS84_E2))
    alt = 0.0
    for _ in range(5):
        n = _WGS84_A_M / math.sqrt(1 - _WGS84_E2 * math.sin(lat) ** 2)
        alt = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1 - _WGS84_E2 * n / (n + alt)))
    return math.degrees(lat), math.degrees(lon), alt


# --- loading and validation -------------------------------------------------------------------

def load_site(path: str | Path) -> Site:
    """Read and validate site.json; any problem is a SiteError naming the field and value."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise SiteError(p, "file not found") from None
    except json.JSONDecodeError as e:
        raise SiteError(p, f"not valid JSON: {e.msg} at line {e.lineno}") from None
    return site_from_dict(raw, p)


def site_from_dict(raw: Any, path: str | Path = "site.json") -> Site:
    """Validate a parsed site.json document."""
    v = _Validator(path)
    if not isinstance(raw, dict):
        raise SiteError(path, "top level must be a JSON object", value=type(raw).__name__)
    known = {"site", "origin", "bounds", "zones", "aisles", "wifi_aps", "ble_beacons"}
    for k in raw:
        if k not in known:
            raise SiteError(path, "unknown key", field=k)
    name = v.string(raw, "site")
    o = v.obj(raw, "origin")
    origin = Origin(v.num(o, "lat", "origin.lat", lo=-90, hi=90),
                    v.num(o, "lon", "origin.lon", lo=-180, hi=180),
                    v.num(o, "alt", "origin.alt", default=0.0))
    b = v.obj(raw, "bounds")
    bounds = Bounds(*(v.num(b, k, f"bounds.{k}") for k in ("xmin", "ymin", "xmax", "ymax")))
    if bounds.xmax <= bounds.xmin or bounds.ymax <= bounds.ymin:
        raise SiteError(path, "xmax/ymax must exceed xmin/ymin", field="bounds",
                        value=raw["bounds"])
    zones = []
    for i, z in enumerate(v.array(raw, "zones")):
        f = f"zones[{i}]"
        poly = z.get("polygon") if isinstance(z, dict) else None
        if not isinstance(poly, list) or len(poly) < 3:
            raise SiteError(path, "polygon needs at least 3 [x, y] points", field=f"{f}.polygon",
                            value=poly)
        pts = tuple(v.point(pt, f"{f}.polygon[{j}]") for j, pt in enumerate(poly))
        zones.append(Zone(v.string(z, "name", f"{f}.name"), pts,
                          bool(z.get("indoor", True))))
    aisles = []
    for i, a in enumerate(v.array(raw, "aisles")):
        f = f"aisles[{i}]"
        aisles.append(Aisle(v.point(a.get("from"), f"{f}.from"), v.point(a.get("to"), f"{f}.to"),
                            v.num(a, "width_m", f"{f}.width_m", lo=0.1, hi=100, default=3.0)))
    aps = []
    seen: set[str] = set()
    for i, a in enumerate(v.array(raw, "wifi_aps")):
        f = f"wifi_aps[{i}]"
        bssid = v.mac(a, "bssid", f"{f}.bssid").lower()
        if bssid in seen:
            raise SiteError(path, "duplicate BSSID", field=f"{f}.bssid", value=bssid)
        seen.add(bssid)
        aps.append(WifiAp(bssid, str(a.get("ssid", "")),
                          int(v.num(a, "channel", f"{f}.channel", lo=0, hi=233, default=0)),
                          v.num(a, "x", f"{f}.x"), v.num(a, "y", f"{f}.y"),
                          v.num(a, "z", f"{f}.z", default=3.0),
                          v.num(a, "rssi_1m_dbm", f"{f}.rssi_1m_dbm", lo=-100, hi=0),
                          v.num(a, "path_loss_exponent", f"{f}.path_loss_exponent", lo=1.0,
                                hi=6.0)))
    beacons = []
    for i, bb in enumerate(v.array(raw, "ble_beacons")):
        f = f"ble_beacons[{i}]"
        addr = v.mac(bb, "address", f"{f}.address").upper() if "address" in bb else ""
        uuid = str(bb.get("uuid", "")).lower()
        major = int(v.num(bb, "major", f"{f}.major", lo=0, hi=65535)) if uuid else None
        minor = int(v.num(bb, "minor", f"{f}.minor", lo=0, hi=65535)) if uuid else None
        if not addr and not uuid:
            raise SiteError(path, "a beacon needs an address or uuid/major/minor", field=f)
        beacons.append(BleBeacon(addr, uuid, major, minor, v.num(bb, "x", f"{f}.x"),
                                 v.num(bb, "y", f"{f}.y"), v.num(bb, "z", f"{f}.z", default=2.5),
                                 v.num(bb, "rssi_1m_dbm", f"{f}.rssi_1m_dbm", lo=-110, hi=0),
                                 v.num(bb, "path_loss_exponent", f"{f}.path_loss_exponent",
                                       lo=1.0, hi=6.0)))
    return Site(name, origin, bounds, tuple(zones), tuple(aisles), tuple(aps), tuple(beacons))


class _Validator:
    def __init__(self, path: str | Path) -> None:
        self.path = path

    def obj(self, d: dict[str, Any], key: str) -> dict[str, Any]:
        val = d.get(key)
        if not isinstance(val, dict):
            raise SiteError(self.path, "must be an object", field=key, value=val)
        return val

    def array(self, d: dict[str, Any], key: str) -> list[dict[str, Any]]:
        val = d.get(key, [])
        if not isinstance(val, list):
            raise SiteError(self.path, "must be a list", field=key, value=val)
        for i, item in enumerate(val):
            if not isinstance(item, dict):
                raise SiteError(self.path, "must be an object", field=f"{key}[{i}]", value=item)
        return val

    def string(self, d: dict[str, Any], key: str, name: str | None = None) -> str:
        val = d.get(key)
        if not isinstance(val, str) or not val:
            raise SiteError(self.path, "must be a non-empty string", field=name or key, value=val)
        return val

    def num(self, d: dict[str, Any], key: str, name: str | None = None, *, lo: float | None = None,
            hi: float | None = None, default: float | None = None) -> float:
        val = d.get(key, default)
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
            raise SiteError(self.path, "must be a number", field=name or key, value=val)
        if (lo is not None and val < lo) or (hi is not None and val > hi):
            raise SiteError(self.path, f"must be between {lo} and {hi}", field=name or key,
                            value=val)
        return float(val)

    def point(self, val: Any, name: str) -> tuple[float, float]:
        if (not isinstance(val, list | tuple) or len(val) != 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in val)):
            raise SiteError(self.path, "must be [x, y] in metres", field=name, value=val)
        return (float(val[0]), float(val[1]))

    def mac(self, d: dict[str, Any], key: str, name: str) -> str:
        val = d.get(key)
        parts = val.split(":") if isinstance(val, str) else []
        if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                      for p in parts):
            raise SiteError(self.path, "must be a MAC address aa:bb:cc:dd:ee:ff", field=name,
                            value=val)
        return str(val)
