"""Capture bundle writers: pcap records, beacon and advertisement templates, NMEA, whole bundles.

The building blocks live in pcap_writer, radiotap_writer, ble_frames and nmea_writer (named apart
from the parsers in edge_agent.sources); this module is the one import the rest of the project
uses (`edge-agent record`, firmware_sim) and re-exports what they need.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from edge_agent.capture.ble_frames import (
    ADV_CHANNELS,
    BleAdvTemplate,
    ble_adv_frame,
    ble_crc24,
    eddystone_uid_data,
    ibeacon_data,
)
from edge_agent.capture.nmea_writer import (
    gga,
    gsa,
    gst,
    gsv,
    nmea_lat,
    nmea_lon,
    nmea_sentence,
    rmc,
)
from edge_agent.capture.pcap_writer import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11_RADIOTAP,
    PcapWriter,
    pcap_time_s,
)
from edge_agent.capture.radiotap_writer import BeaconTemplate
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Site

__all__ = [
    "ADV_CHANNELS",
    "LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR",
    "LINKTYPE_IEEE802_11_RADIOTAP",
    "BeaconTemplate",
    "BleAdvTemplate",
    "BundleWriter",
    "PcapWriter",
    "ble_adv_frame",
    "ble_crc24",
    "ble_template_for",
    "eddystone_uid_data",
    "gga",
    "gsa",
    "gst",
    "gsv",
    "ibeacon_data",
    "nmea_lat",
    "nmea_lon",
    "nmea_sentence",
    "pcap_time_s",
    "rmc",
    "write_observations_bundle",
]

IBEACON_TX_POWER_DBM = -59  # the calibrated 1 m power most iBeacons advertise
RECORD_TALKER = "GN"  # multi-constellation receivers (the common case) use the GN talker


def _derived_address(key: str) -> str:
    """A stable random static address (top two bits set) for an advertiser known by id only."""
    h = bytearray(hashlib.sha256(key.encode()).digest()[:6])
    h[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in h)


def ble_template_for(site: Site | None, beacon_id: str, address: str = "") -> BleAdvTemplate:
    """A beacon's advertisement: an iBeacon when it has uuid/major/minor, else flags only."""
    beacon = None
    if site is not None:
        beacon = next((b for b in site.ble_beacons if b.beacon_id == beacon_id), None)
    addr = address or (beacon.address if beacon is not None else "")
    if beacon is not None and beacon.uuid and beacon.major is not None and \
            beacon.minor is not None:
        ib = (beacon.uuid, beacon.major, beacon.minor, IBEACON_TX_POWER_DBM)
    elif beacon is None and beacon_id.count("/") == 2:
        u, ma, mi = beacon_id.split("/")
        ib = (u, int(ma), int(mi), IBEACON_TX_POWER_DBM)
    else:
        ib = None
    if not addr:
        addr = beacon_id if beacon_id.count(":") == 5 else _derived_address(beacon_id)
    data = ibeacon_data(*ib) if ib is not None else bytes([0x02, 0x01, 0x06])
    return BleAdvTemplate(addr, data)


class BundleWriter:
    """A capture bundle written as observations arrive (`edge-agent record`): add(obs) holds
    them, flush() writes what is held, close() flushes and returns the records per file.

    Each file's records are in time order (a stable sort of what a flush writes), so the bytes
    equal write_observations_bundle's for the same observations as long as nothing added after
    a flush is older than what that flush wrote for its sensor; such a late observation is
    still written (after the others) and counted in `.late`. Files are created on their first
    record; site.json is written at once.
    """

    def __init__(self, out_dir: str | Path, site: Site) -> None:
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.site = site
        site.save(self.out / "site.json")
        self.late = 0
        self._pending: dict[str, list[Observation]] = {"wifi": [], "ble": [], "gnss": []}
        self._written_t: dict[str, float] = {}
        self._wifi: PcapWriter | None = None
        self._ble: PcapWriter | None = None
        self._gnss: TextIO | None = None
        self._gnss_lines = 0
        self._ble_records = 0  # BLE frames cycle through the advertising channels 37, 38, 39
        self._wifi_tpl: dict[tuple[str, str, int], BeaconTemplate] = {}
        self._ble_tpl: dict[tuple[str, str], BleAdvTemplate] = {}
        self._closed = False

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, obs: Observation) -> None:
        """Hold one observation until the next flush()."""
        if self._closed:
            raise ValueError("BundleWriter is closed")
        kind = "wifi" if isinstance(obs, WifiObs) else "ble" if isinstance(obs, BleObs) \
            else "gnss"
        self._pending[kind].append(obs)

    def flush(self, before_t: float | None = None) -> None:
        """Write the held observations stamped <= before_t (all when None) and hand the files
        to the OS; a recorder passes `newest - reorder margin` to keep each file in time order."""
        for kind, held in self._pending.items():
            if not held:
                continue
            held.sort(key=lambda o: o.t)  # stable, like write_observations_bundle's sorted()
            n = len(held) if before_t is None else bisect_right(held, before_t,
                                                                key=lambda o: o.t)
            if n == 0:
                continue
            batch, self._pending[kind] = held[:n], held[n:]
            last = self._written_t.get(kind)
            if last is not None:
                self.late += sum(o.t < last for o in batch)
            self._written_t[kind] = max(batch[-1].t, last) if last is not None else batch[-1].t
            self._write(kind, batch)
        for f in (self._wifi, self._ble, self._gnss):
            if f is not None:
                f.flush()

    def _write(self, kind: str, batch: list[Observation]) -> None:
        site = self.site
        if kind == "wifi":
            if self._wifi is None:
                self._wifi = PcapWriter(self.out / "wifi.pcap", LINKTYPE_IEEE802_11_RADIOTAP)
            for o in batch:
                assert isinstance(o, WifiObs)
                ap = site.ap(o.bssid)
                ssid = o.ssid or (ap.ssid if ap else "")
                channel = o.channel or (ap.channel if ap else 0)
                key = (o.bssid, ssid, channel)
                tpl = self._wifi_tpl.get(key)
                if tpl is None:
                    tpl = self._wifi_tpl[key] = BeaconTemplate(o.bssid, ssid, channel)
                self._wifi.write(o.t, tpl.frame(round(o.rssi_dbm)))
        elif kind == "ble":
            if self._ble is None:
                self._ble = PcapWriter(self.out / "ble.pcap", LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR)
            for b in batch:
                assert isinstance(b, BleObs)
                bkey = (b.beacon_id, b.address)
                btpl = self._ble_tpl.get(bkey)
                if btpl is None:
                    btpl = self._ble_tpl[bkey] = ble_template_for(site, b.beacon_id, b.address)
                self._ble.write(b.t, btpl.frame(round(b.rssi_dbm),
                                                ADV_CHANNELS[self._ble_records % 3]))
                self._ble_records += 1
        else:
            lines = _nmea_lines(site, batch)
            if self._gnss is None:
                self._gnss = open(self.out / "gps.nmea", "w", encoding="utf-8",  # noqa: SIM115
                                  newline="")  # closed in close()
            self._gnss.write("".join(line + "\r\n" for line in lines))
            self._gnss_lines += len(lines)

    def counts(self) -> dict[str, int]:
        """Records written so far per file (files not created yet are left out)."""
        out: dict[str, int] = {}
        if self._wifi is not None:
            out["wifi.pcap"] = self._wifi.records
        if self._ble is not None:
            out["ble.pcap"] = self._ble.records
        if self._gnss is not None:
            out["gps.nmea"] = self._gnss_lines
        return out

    def close(self) -> dict[str, int]:
        """Write everything held, close the files; returns the records per file."""
        if not self._closed:
            self.flush()
            self._closed = True
            for f in (self._wifi, self._ble, self._gnss):
                if f is not None:
                    f.close()
        return self.counts()


def _nmea_lines(site: Site, gnss: Iterable[Observation]) -> list[str]:
    """RMC + GGA (+ GST) per epoch; fixes without lat/lon are placed from their site x/y."""
    lines: list[str] = []
    for g in gnss:
        if isinstance(g, GnssNoFix):
            lines += [rmc(RECORD_TALKER, g.t, None, None), gga(RECORD_TALKER, g.t, None, None)]
            continue
        assert isinstance(g, GnssFix)
        lat, lon = (g.lat, g.lon) if (g.lat or g.lon) else site.to_wgs84(g.x_m, g.y_m)
        lines.append(rmc(RECORD_TALKER, g.t, lat, lon))
        lines.append(gga(RECORD_TALKER, g.t, lat, lon, g.fix_quality or 1, g.num_sats,
                         g.hdop, site.origin.alt))
        if g.has_gst:
            lines.append(gst(RECORD_TALKER, g.t, g.sigma_m, g.sigma_m, g.sigma_m,
                             1.5 * g.sigma_m))
    return lines


def write_observations_bundle(out_dir: str | Path, site: Site,
                              observations: Iterable[Observation]) -> dict[str, int]:
    """Write site.json, wifi.pcap, ble.pcap and gps.nmea holding `observations`.

    Returns the number of records written per file. Files for a sensor with no observations are
    not created. GNSS fixes without lat/lon are placed from their site x/y.
    """
    with BundleWriter(out_dir, site) as bw:
        for o in observations:
            bw.add(o)
        return bw.close()
