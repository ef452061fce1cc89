"""BLE and GNSS replay speed: records/s of the sources next to raw pcap iteration / file reading.

Builds its own captures (BLE advertisements of link type 256, an NMEA log with RMC/GGA/GST/GSA/
GSV per epoch) in a temporary folder. Run: .venv/bin/python benchmarks/ble_gnss.py [--frames N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edge_agent.capture.nmea_writer import gga, gsa, gst, gsv, rmc
from edge_agent.capture.writers import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    BleAdvTemplate,
    PcapWriter,
    ibeacon_data,
)
from edge_agent.site import site_from_dict
from edge_agent.sources.ble import BleSource
from edge_agent.sources.gnss import GnssSource
from edge_agent.sources.pcap import open_pcap

UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"
T0 = 1_795_000_000.0


def best_of(n: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=100_000, help="BLE frames (default 100000)")
    ap.add_argument("--epochs", type=int, default=3600, help="GNSS epochs (default 3600)")
    args = ap.parse_args()
    site = site_from_dict({
        "site": "b", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "ble_beacons": [{"uuid": UUID, "major": 1, "minor": m, "x": 1.0 * m, "y": 2.0,
                         "rssi_1m_dbm": -59, "path_loss_exponent": 2.0} for m in range(10)]})
    with tempfile.TemporaryDirectory() as d:
        ble = Path(d) / "ble.pcap"
        tpls = [BleAdvTemplate(f"C0:00:00:00:00:{m:02X}", ibeacon_data(UUID, 1, m, -59))
                for m in range(20)]  # 10 surveyed, 10 strangers
        with PcapWriter(ble, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
            for i in range(args.frames):
                w.write(T0 + i * 0.01, tpls[i % 20].frame(-60 - i % 30, (37, 38, 39)[i % 3]))
        raw_s = best_of(3, lambda: sum(1 for _ in open_pcap(ble)))
        src_s = best_of(3, lambda: sum(1 for _ in BleSource.replay(ble, site)))
        n = args.frames
        print(f"BLE  {n} frames: raw pcap iteration {n / raw_s:10.0f} frames/s | BleSource.replay "
              f"{n / src_s:9.0f} frames/s | ratio {src_s / raw_s:.1f}x")

        nmea = Path(d) / "gps.nmea"
        lines: list[str] = []
        lat, lon = site.to_wgs84(20.0, 30.0)
        sats = [(p, 40, 100 + p, 40) for p in range(1, 13)]
        for i in range(args.epochs):
            t = T0 + i
            lines += [rmc("GN", t, lat, lon), gga("GN", t, lat, lon, 1, 12, 0.9, 340.0),
                      gst("GN", t, 1.0, 0.8, 0.9, 1.5), gsa("GN", list(range(1, 13)), 1.5, 0.9,
                                                             1.2), *gsv("GP", sats)]
        nmea.write_text("\r\n".join(lines) + "\r\n")
        read_s = best_of(3, lambda: sum(1 for _ in nmea.open("rb")))
        gnss_s = best_of(3, lambda: sum(1 for _ in GnssSource.replay(nmea, site)))
        m = len(lines)
        print(f"GNSS {m} sentences ({args.epochs} epochs): file line iteration "
              f"{m / read_s:10.0f} lines/s | GnssSource.replay {m / gnss_s:9.0f} sentences/s "
              f"({args.epochs / gnss_s:.0f} epochs/s) | ratio {gnss_s / read_s:.1f}x")


if __name__ == "__main__":
    main()
