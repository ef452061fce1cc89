"""Capture bundle writers: pcap records, beacon and advertisement templates, NMEA, whole bundles.

The building blocks live in pcap_writer, radiotap_writer, ble_frames and nmea_writer (named apart
from the parsers in edge_agent.sources); this module is the one import the rest of the project
uses (`edge-agent record`, firmware_sim) and re-exports what they need.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

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


def write_observations_bundle(out_dir: str | Path, site: Site,
                              observations: Iterable[Observation]) -> dict[str, int]:
    """Write site.json, wifi.pcap, ble.pcap and gps.nmea holding `observations`.

    Returns the number of records written per file. Files for a sensor with no observations are
    not created. GNSS fixes without lat/lon are placed from their site x/y.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    site.save(out / "site.json")
    wifi: list[WifiObs] = []
    ble: list[BleObs] = []
    gnss: list[GnssFix | GnssNoFix] = []
    for o in observations:
        if isinstance(o, WifiObs):
            wifi.append(o)
        elif isinstance(o, BleObs):
            ble.append(o)
        else:
            gnss.append(o)
    counts: dict[str, int] = {}
    if wifi:
        templates: dict[tuple[str, str, int], BeaconTemplate] = {}
        with PcapWriter(out / "wifi.pcap", LINKTYPE_IEEE802_11_RADIOTAP) as w:
            for o in sorted(wifi, key=lambda o: o.t):
                ap = site.ap(o.bssid)
                ssid = o.ssid or (ap.ssid if ap else "")
                channel = o.channel or (ap.channel if ap else 0)
                key = (o.bssid, ssid, channel)
                tpl = templates.get(key)
                if tpl is None:
                    tpl = templates[key] = BeaconTemplate(o.bssid, ssid, channel)
                w.write(o.t, tpl.frame(round(o.rssi_dbm)))
            counts["wifi.pcap"] = w.records
    if ble:
        ble_tpl: dict[tuple[str, str], BleAdvTemplate] = {}
        with PcapWriter(out / "ble.pcap", LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
            for i, b in enumerate(sorted(ble, key=lambda o: o.t)):
                bkey = (b.beacon_id, b.address)
                btpl = ble_tpl.get(bkey)
                if btpl is None:
                    btpl = ble_tpl[bkey] = ble_template_for(site, b.beacon_id, b.address)
                w.write(b.t, btpl.frame(round(b.rssi_dbm), ADV_CHANNELS[i % 3]))
            counts["ble.pcap"] = w.records
    if gnss:
        lines: list[str] = []
        for g in sorted(gnss, key=lambda o: o.t):
            if isinstance(g, GnssNoFix):
                lines += [rmc(RECORD_TALKER, g.t, None, None), gga(RECORD_TALKER, g.t, None, None)]
                continue
            lat, lon = (g.lat, g.lon) if (g.lat or g.lon) else site.to_wgs84(g.x_m, g.y_m)
            lines.append(rmc(RECORD_TALKER, g.t, lat, lon))
            lines.append(gga(RECORD_TALKER, g.t, lat, lon, g.fix_quality or 1, g.num_sats,
                             g.hdop, site.origin.alt))
            if g.has_gst:
                lines.append(gst(RECORD_TALKER, g.t, g.sigma_m, g.sigma_m, g.sigma_m,
                                 1.5 * g.sigma_m))
        (out / "gps.nmea").write_text("\r\n".join(lines) + "\r\n")
        counts["gps.nmea"] = len(lines)
    return counts
