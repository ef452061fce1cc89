"""`edge-agent record DIR --site site.json ...`: live sources -> a capture bundle (spec format).

Only surveyed BSSIDs and beacons are recorded (the sources filter with the site, and the writer
is fed nothing else), so a bundle carries no bystander MAC addresses. capture.writers.BundleWriter
(the writer behind write_observations_bundle) writes them, flushed every FLUSH_EVERY_S, so a
forklift switched off mid-run keeps its bundle, and replaying it gives the same observations
(to pcap microsecond / NMEA centisecond resolution).
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

from edge_agent.capture.writers import BundleWriter
from edge_agent.cli_options import WIFI_MODES, add_live_source_options, parse_host_port
from edge_agent.errors import EdgeAgentError, InputError
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Site, load_site
from edge_agent.sources.base import Source

FLUSH_EVERY_S = 1.0  # a power cut loses at most this much of the recording
_TICK_S = FLUSH_EVERY_S  # flush and terminal progress share one tick
_POLL_S = 0.2  # how often the collector checks the duration and Ctrl-C
_DONE = object()
DEFAULT_BAUD = 9600  # most USB GNSS receivers' NMEA default


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "record", help="record live Wi-Fi/BLE/GNSS into a capture bundle",
        description="Record the live sources into a capture bundle DIR (site.json, wifi.pcap, "
                    "ble.pcap, gps.nmea) that `edge-agent replay` reads back. Only BSSIDs and "
                    "beacons surveyed in the site are recorded.")
    p.add_argument("dir", type=Path, help="bundle directory to write (created if missing)")
    p.add_argument("--site", type=Path, required=True,
                   help="site.json: the survey; copied into the bundle, and the privacy filter")
    add_live_source_options(p, from_config=False)
    # Old name of --wifi-mode (run always said --wifi-mode); kept working, hidden from help.
    p.add_argument("--mode", dest="deprecated_mode", choices=WIFI_MODES, help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    p.set_defaults(func=run)


def build_sources(args: argparse.Namespace, site: Site) -> list[Source]:
    """The live sources the options ask for (each imports its platform package itself)."""
    sources: list[Source] = []
    mode = args.wifi_mode
    if mode in ("monitor", "iw") and not args.iface:
        raise InputError("command line", f"--wifi-mode {mode} needs --iface", field="--iface")
    if args.iface or mode == "termux":
        from edge_agent.sources.wifi import WifiSource

        if mode in (None, "monitor"):
            sources.append(WifiSource.live_monitor(args.iface, site))
        elif mode == "iw":
            sources.append(WifiSource.live_iw(args.iface, site))
        else:
            sources.append(WifiSource.live_termux(site))
    if args.ble:
        from edge_agent.sources.ble import BleSource

        sources.append(BleSource.live(site, adapter=args.ble_adapter))
    if args.gnss_serial or args.gnss_gpsd:
        from edge_agent.sources.gnss import GPSD_DEFAULT_PORT, GnssSource

        if args.gnss_serial:
            sources.append(GnssSource.serial(args.gnss_serial, args.gnss_baud or DEFAULT_BAUD,
                                             site))
        else:
            host, port = parse_host_port(args.gnss_gpsd, "--gnss-gpsd", GPSD_DEFAULT_PORT)
            sources.append(GnssSource.gpsd(host, port, site))
    elif args.gnss_termux:
        from edge_agent.sources.gnss_termux import TermuxLocationSource

        sources.append(TermuxLocationSource(site))
    if not sources:
        raise InputError("command line", "nothing to record: give --iface (or --wifi-mode "
                         "termux), --ble, --gnss-serial, --gnss-gpsd or --gnss-termux")
    return sources


def surveyed(site: Site, o: Observation) -> bool:
    """Whether an observation may be recorded: its AP or beacon is in the survey (GNSS always)."""
    if isinstance(o, WifiObs):
        return site.ap(o.bssid) is not None
    if isinstance(o, BleObs):
        return any(b.beacon_id == o.beacon_id for b in site.ble_beacons)
    return True


def collect(sources: Sequence[Source], site: Site, sink: Callable[[Observation], None], *,
            duration_s: float | None = None, tick: Callable[[float], None] | None = None,
            ) -> Counter[str]:
    """Run every source in its own thread, passing surveyed observations to `sink`, until all
    sources end, duration_s passes (monotonic) or Ctrl-C; `tick(elapsed_s)` about once a second.

    Returns the counts of observations dropped here (unsurveyed emitters a source let through).
    """
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
    last_tick = started
    running = len(threads)
    try:
        while running:
            now = time.monotonic()
            if duration_s is not None and now - started >= duration_s:
                break
            if tick is not None and now - last_tick >= _TICK_S:
                tick(now - started)
                last_tick = now
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
                    sink(item)
                else:
                    dropped["not_surveyed"] += 1
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the recording; what was heard is already written
    finally:
        for s in sources:
            stop = getattr(s, "stop", None)
            if callable(stop):
                stop()
    return dropped


def record_bundle(out_dir: Path, site: Site, sources: Sequence[Source], *,
                  duration_s: float | None = None, progress: bool = False) -> str:
    """Record `sources` into the bundle out_dir; returns the one-line summary."""
    started = time.monotonic()
    rec = BundleWriter(out_dir, site)

    def tick(elapsed_s: float) -> None:
        rec.flush()  # a power cut loses at most the last tick
        if progress:
            _progress_line(rec.counts(), elapsed_s)

    try:
        dropped = collect(sources, site, rec.add, duration_s=duration_s, tick=tick)
    finally:
        rec.close()
    if progress:
        print(file=sys.stderr)
    elapsed = time.monotonic() - started
    files = ", ".join(f"{name} {n}" for name, n in sorted(rec.counts().items())) \
        or "no observations"
    skipped: Counter[str] = Counter(dropped)
    for s in sources:
        skipped.update(s.stats.skipped)
    line = f"recorded {out_dir}: {files} in {elapsed:.1f} s"
    if skipped:
        line += "; skipped " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
    return line


def _progress_line(counts: dict[str, int], elapsed_s: float) -> None:
    print(f"\rrecording {elapsed_s:6.0f} s: wifi {counts.get('wifi.pcap', 0)}, "
          f"ble {counts.get('ble.pcap', 0)}, gnss {counts.get('gps.nmea', 0)} sentences",
          end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.deprecated_mode is not None:
        print("record: --mode is deprecated, use --wifi-mode", file=sys.stderr)
        args.wifi_mode = args.wifi_mode or args.deprecated_mode
    site = load_site(args.site)
    sources = build_sources(args, site)
    summary = record_bundle(args.dir, site, sources, duration_s=args.duration,
                            progress=sys.stderr.isatty())
    print(summary)
    return 0
