"""`edge-agent inspect CAPTURE [--json]`: what one capture file holds, in survey mode.

The format is recognised from the pcap/pcapng header and its link type (Wi-Fi or BLE) or, for
text, from NMEA sentences in its first bytes; the file then goes through the same replay source
the agent uses, with no site, so every emitter with a signal and every fix is counted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from edge_agent.errors import CaptureError
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, WifiObs
from edge_agent.sources.base import Source
from edge_agent.sources.pcap import open_pcap

# Link types read as BLE: LE LL with PHDR (256), LE LL (251), PPI (192, Ubertooth's wrapper);
# everything else goes to the Wi-Fi source, which names and counts what it cannot read.
BLE_LINKTYPES = frozenset({251, 256, 192})
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34", b"\x0a\x0d\x0d\x0a"}
_NMEA_RE = re.compile(rb"\$[A-Z]{2}[A-Z]{3},")
_SNIFF_BYTES = 65536  # NMEA sniffing reads this much: enough for the gpsd log headers


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inspect", help="report what one capture file holds (Wi-Fi/BLE pcap, NMEA log)",
        description="Read one capture file (Wi-Fi pcap/pcapng with radiotap, BLE pcap of link "
                    "type 256, or an NMEA 0183 log) in survey mode and report its observations, "
                    "skipped records by reason, warnings, time span and distinct emitters.")
    p.add_argument("capture", type=Path, help="the capture file to read")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object instead of text")
    p.set_defaults(func=run)


def detect(path: Path) -> tuple[str, str]:
    """(format, kind): ("pcap"|"pcapng"|"nmea", "wifi"|"ble"|"gnss"); CaptureError if neither."""
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise CaptureError(path, f"cannot read: {e.strerror or e}") from None
    if head[:4] in _PCAP_MAGICS:
        with open_pcap(path) as reader:
            linktype = reader.linktype
            fmt = reader.format
        return fmt, "ble" if linktype in BLE_LINKTYPES else "wifi"
    if _NMEA_RE.search(head):
        return "nmea", "gnss"
    raise CaptureError(path, "not a pcap, pcapng or NMEA log (no capture header, no NMEA "
                             "sentence in the first 64 KiB)")


def open_source(path: Path, kind: str) -> Source:
    if kind == "ble":
        from edge_agent.sources.ble import BleSource

        return BleSource.replay(path, None)
    if kind == "gnss":
        from edge_agent.sources.gnss import GnssSource

        return GnssSource.replay(path, None)
    from edge_agent.sources.wifi import WifiSource

    return WifiSource.replay(path, None)


def inspect_capture(path: Path) -> dict[str, Any]:
    """The report as a JSON-able dict (what --json prints)."""
    fmt, kind = detect(path)
    src = open_source(path, kind)
    counts = {"wifi": 0, "ble": 0, "gnss": 0}
    no_fix = 0
    emitters: set[str] = set()
    t_first: float | None = None
    t_last: float | None = None
    for o in src:
        if isinstance(o, GnssNoFix):
            no_fix += 1
            continue
        if isinstance(o, WifiObs):
            counts["wifi"] += 1
            emitters.add(o.bssid)
        elif isinstance(o, BleObs):
            counts["ble"] += 1
            emitters.add(o.beacon_id)
        elif isinstance(o, GnssFix):
            counts["gnss"] += 1
        t_first = o.t if t_first is None else min(t_first, o.t)
        t_last = o.t if t_last is None else max(t_last, o.t)
    report: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "kind": kind,
        "observations": counts,
        "skipped": dict(sorted(src.stats.skipped.items())),
        "warnings": list(src.stats.warnings),
        "start": t_first,
        "end": t_last,
        "duration_s": (t_last - t_first) if t_first is not None and t_last is not None else 0.0,
    }
    if kind == "wifi":
        report["distinct_bssids"] = len(emitters)
    elif kind == "ble":
        report["distinct_advertisers"] = len(emitters)
    else:
        report["no_fix_epochs"] = no_fix
    return report


def run(args: argparse.Namespace) -> int:
    report = inspect_capture(args.capture)
    if args.json:
        print(json.dumps(report))
        return 0
    out = sys.stdout
    obs = report["observations"]
    print(f"{report['file']}: {report['format']}, {report['kind']}", file=out)
    print(f"  observations: wifi {obs['wifi']}, ble {obs['ble']}, gnss {obs['gnss']}", file=out)
    for key in ("distinct_bssids", "distinct_advertisers", "no_fix_epochs"):
        if key in report:
            print(f"  {key.replace('_', ' ')}: {report[key]}", file=out)
    if report["start"] is not None:
        print(f"  time: {report['start']:.6f} .. {report['end']:.6f} "
              f"({report['duration_s']:.1f} s)", file=out)
    if report["skipped"]:
        skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items())
        print(f"  skipped: {skipped}", file=out)
    for w in report["warnings"]:
        print(f"  warning: {w}", file=out)
    return 0
