"""`edge-agent record DIR --site site.json ...`: live sources -> a capture bundle (spec format).

Only surveyed BSSIDs and beacons are recorded (the sources filter with the site, and the writer
is fed nothing else), so a bundle carries no bystander MAC addresses. Observations are held in
memory and written when recording stops (duration, Ctrl-C or the sources ending); replaying the
bundle gives the same observations (to pcap microsecond / NMEA centisecond resolution).
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_agent.errors import EdgeAgentError, InputError
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Site, load_site
from edge_agent.sources.base import Source

_PROGRESS_EVERY_S = 1.0  # terminal progress refresh
_POLL_S = 0.2  # how often the collector checks the duration and Ctrl-C
_DONE = object()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "record", help="record live Wi-Fi/BLE/GNSS into a capture bundle",
        description="Record the live sources into a capture bundle DIR (site.json, wifi.pcap, "
                    "ble.pcap, gps.nmea) that `edge-agent replay` reads back. Only BSSIDs and "
                    "beacons surveyed in the site are recorded.")
    p.add_argument("dir", type=Path, help="bundle directory to write (created if missing)")
    p.add_argument("--site", type=Path, required=True,
                   help="site.json: the survey; copied into the bundle, and the privacy filter")
    p.add_argument("--iface", help="Wi-Fi interface to record (e.g. wlan0)")
    p.add_argument("--mode", choices=("monitor", "iw", "termux"), default="monitor",
                   help="Wi-Fi capture: monitor mode (raw frames, hopping channels), iw "
                        "(managed-mode scans) or termux (Android scan info); default monitor")
    p.add_argument("--ble", action="store_true", help="record BLE beacons through bleak")
    p.add_argument("--ble-adapter", help="BlueZ adapter for --ble (default: the system's)")
    gnss = p.add_mutually_exclusive_group()
    gnss.add_argument("--gnss-serial", metavar="PORT",
                      help="GNSS receiver on a serial port, e.g. /dev/ttyACM0")
    gnss.add_argument("--gnss-gpsd", metavar="HOST:PORT",
                      help="GNSS from gpsd, e.g. localhost:2947")
    p.add_argument("--gnss-baud", type=int, default=9600,
                   help="baud rate for --gnss-serial (default 9600)")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    p.set_defaults(func=run)


def build_sources(args: argparse.Namespace, site: Site) -> list[Source]:
    """The live sources the options ask for (each imports its platform package itself)."""
    sources: list[Source] = []
    if args.iface or args.mode == "termux":
        from edge_agent.sources.wifi import WifiSource

        if args.mode == "monitor":
            sources.append(WifiSource.live_monitor(args.iface, site))
        elif args.mode == "iw":
            sources.append(WifiSource.live_iw(args.iface, site))
        else:
            sources.append(WifiSource.live_termux(site))
    if args.ble:
        from edge_agent.sources.ble import BleSource

        sources.append(BleSource.live(site, adapter=args.ble_adapter))
    if args.gnss_serial or args.gnss_gpsd:
        from edge_agent.sources.gnss import GPSD_DEFAULT_PORT, GnssSource

        if args.gnss_serial:
            sources.append(GnssSource.serial(args.gnss_serial, args.gnss_baud, site))
        else:
            host, _, port = args.gnss_gpsd.rpartition(":")
            if not host:
                host, port = port, str(GPSD_DEFAULT_PORT)
            if not port.isdigit():
                raise InputError("command line", "must be HOST:PORT", field="--gnss-gpsd",
                                 value=args.gnss_gpsd)
            sources.append(GnssSource.gpsd(host, int(port), site))
    if not sources:
        raise InputError("command line", "nothing to record: give --iface (or --mode termux), "
                         "--ble, --gnss-serial or --gnss-gpsd")
    return sources


def surveyed(site: Site, o: Observation) -> bool:
    """Whether an observation may be recorded: its AP or beacon is in the survey (GNSS always)."""
    if isinstance(o, WifiObs):
        return site.ap(o.bssid) is not None
    if isinstance(o, BleObs):
        return any(b.beacon_id == o.beacon_id for b in site.ble_beacons)
    return True


def collect(sources: Sequence[Source], site: Site, *, duration_s: float | None = None,
            progress: Callable[[Counter[str], float], None] | None = None,
            ) -> tuple[list[Observation], Counter[str]]:
    """Run every source in its own thread until all end or duration_s passes (monotonic)."""
    q: queue.Queue[object] = queue.Queue()
    dropped: Counter[str] = Counter()

    def pump(src: Source) -> None:
        try:
            for o in src:
                q.put(o)
        except EdgeAgentError as e:
            q.put(e)
        finally:
            q.put(_DONE)

    threads = [threading.Thread(target=pump, args=(s,), name=f"record-{s.kind}", daemon=True)
               for s in sources]
    for th in threads:
        th.start()
    started = time.monotonic()
    last_progress = started
    running = len(threads)
    out: list[Observation] = []
    counts: Counter[str] = Counter()
    try:
        while running:
            now = time.monotonic()
            if duration_s is not None and now - started >= duration_s:
                break
            if progress is not None and now - last_progress >= _PROGRESS_EVERY_S:
                progress(counts, now - started)
                last_progress = now
            try:
                item = q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _DONE:
                running -= 1
            elif isinstance(item, EdgeAgentError):
                raise item
            elif isinstance(item, WifiObs | BleObs | GnssFix | GnssNoFix):
                if surveyed(site, item):
                    out.append(item)
                    counts[_kind(item)] += 1
                else:
                    dropped["not_surveyed"] += 1
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the recording; what was heard is still written
    finally:
        for s in sources:
            stop = getattr(s, "stop", None)
            if callable(stop):
                stop()
    out.sort(key=lambda o: o.t)
    return out, dropped


def _kind(o: Observation) -> str:
    if isinstance(o, WifiObs):
        return "wifi"
    if isinstance(o, BleObs):
        return "ble"
    return "gnss"


def record_bundle(out_dir: Path, site: Site, sources: Sequence[Source], *,
                  duration_s: float | None = None, progress: bool = False) -> str:
    """Record `sources` into the bundle out_dir; returns the one-line summary."""
    from edge_agent.capture.writers import write_observations_bundle

    started = time.monotonic()
    show = _progress_line if progress else None
    observations, dropped = collect(sources, site, duration_s=duration_s, progress=show)
    if progress:
        print(file=sys.stderr)
    written = write_observations_bundle(out_dir, site, observations)
    elapsed = time.monotonic() - started
    files = ", ".join(f"{name} {n}" for name, n in written.items()) or "no observations"
    skipped: Counter[str] = Counter(dropped)
    for s in sources:
        skipped.update(s.stats.skipped)
    line = f"recorded {out_dir}: {files} in {elapsed:.1f} s"
    if skipped:
        line += "; skipped " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
    return line


def _progress_line(counts: Counter[str], elapsed_s: float) -> None:
    print(f"\rrecording {elapsed_s:6.0f} s: wifi {counts['wifi']}, ble {counts['ble']}, "
          f"gnss {counts['gnss']}", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    sources = build_sources(args, site)
    summary = record_bundle(args.dir, site, sources, duration_s=args.duration,
                            progress=sys.stderr.isatty())
    print(summary)
    return 0
