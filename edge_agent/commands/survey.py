"""`edge-agent survey`: APs and beacons heard, with signal stats, to build or check site.json."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from edge_agent.errors import InputError
from edge_agent.observations import Observation
from edge_agent.site import Site, load_site
from edge_agent.sources.base import Source
from edge_agent.survey import DEFAULT_MIN_COUNT, draft_site, format_table, survey

LINKTYPE_BLE_PHDR = 256
# Progress on a terminal every this many observations.
PROGRESS_EVERY = 5000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "survey", help="list the APs and beacons heard, with signal statistics",
        description="Survey mode: keep every BSSID and beacon heard (not only the surveyed "
                    "ones; BLE: iBeacon/Eddystone or listed by address in --site, other "
                    "advertisers such as phones are only counted) and print count, RSSI "
                    "mean/min/max/std and channel of each, marking "
                    "those site.json already has and those it has but were never heard. The "
                    "result stays on this machine: it lists the neighbours' APs too.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--capture", nargs="+", type=Path, metavar="FILE",
                     help="pcap/pcapng files (radiotap Wi-Fi or BLE LE-LL with PHDR)")
    src.add_argument("--bundle", type=Path, metavar="DIR",
                     help="a capture bundle folder (wifi.pcap, ble.pcap)")
    src.add_argument("--iface", metavar="IFACE",
                     help="listen live on this Wi-Fi interface (monitor mode needs root or "
                          "CAP_NET_RAW/CAP_NET_ADMIN)")
    p.add_argument("--wifi-mode", "--mode", dest="mode", choices=("monitor", "iw"),
                   default="monitor",
                   help="live: sniff beacons in monitor mode (default) or use `iw` scans "
                        "(--mode: the old name, as for run and record)")
    p.add_argument("--duration", type=float, default=60.0, metavar="S",
                   help="live: stop after S seconds of observation time (default 60)")
    p.add_argument("--site", type=Path, help="site.json to compare against")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--write-site", type=Path, metavar="OUT",
                   help="write a draft site.json: the --site entries plus every new AP/beacon "
                        "heard at least --min-count times, with x/y null to fill in")
    p.add_argument("--min-count", type=int, default=DEFAULT_MIN_COUNT,
                   help=f"least times heard to enter the draft (default {DEFAULT_MIN_COUNT})")
    p.set_defaults(func=run)


def capture_sources(paths: Iterable[Path], site: Site | None, *,
                    survey_site: Site | None = None) -> list[Source]:
    """One replay source per pcap file, by link type: BLE LE-LL with PHDR, else Wi-Fi (the
    Wi-Fi parser counts what it cannot use, e.g. 802.11 without radiotap has no signal).

    Survey mode (site None) keeps BLE beacons only, plus advertisers `survey_site` lists by
    address: a worker's phone must not end up in a survey or a draft site.json.
    """
    from edge_agent.sources.pcap import open_pcap

    sources: list[Source] = []
    for path in paths:
        if not path.exists():
            raise InputError(path, "file not found")
        reader = open_pcap(path)
        linktype = reader.linktype
        close = getattr(reader, "close", None)
        if callable(close):
            close()
        if linktype == LINKTYPE_BLE_PHDR:
            from edge_agent.sources.ble import BleSource

            known = [b.address for b in survey_site.ble_beacons if b.address] \
                if survey_site is not None else []
            sources.append(BleSource.replay(path, site, beacons_only=site is None,
                                            known_addresses=known))
        else:
            from edge_agent.sources.wifi import WifiSource

            sources.append(WifiSource.replay(path, site))
    return sources


def bundle_sources(bundle: Path, site: Site | None, *,
                   survey_site: Site | None = None) -> list[Source]:
    if not bundle.is_dir():
        raise InputError(bundle, "not a folder")
    files = [bundle / n for n in ("wifi.pcap", "ble.pcap") if (bundle / n).exists()]
    if not files:
        raise InputError(bundle, "no wifi.pcap or ble.pcap in the bundle")
    return capture_sources(files, site, survey_site=survey_site)


def live_observations(iface: str, mode: str, duration_s: float) -> Iterator[Observation]:
    from edge_agent.sources.wifi import WifiSource

    src = (WifiSource.live_monitor(iface, None) if mode == "monitor"
           else WifiSource.live_iw(iface, None))
    t0: float | None = None
    for ob in src:
        t0 = ob.t if t0 is None else t0
        if ob.t - t0 > duration_s:
            break
        yield ob


def with_progress(obs: Iterable[Observation]) -> Iterator[Observation]:
    if not sys.stderr.isatty():
        yield from obs
        return
    for i, ob in enumerate(obs, start=1):
        if i % PROGRESS_EVERY == 0:
            print(f"\rsurvey: {i} observations", end="", file=sys.stderr, flush=True)
        yield ob
    print("", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    site = load_site(args.site) if args.site else None
    sources: list[Source] = []
    if args.capture:
        sources = capture_sources(args.capture, None, survey_site=site)
        obs: Iterable[Observation] = itertools.chain.from_iterable(sources)
    elif args.bundle:
        sources = bundle_sources(args.bundle, None, survey_site=site)
        obs = itertools.chain.from_iterable(sources)
    else:
        obs = live_observations(args.iface, args.mode, args.duration)
    report = survey(with_progress(obs), site)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_table(report))
    if args.write_site:
        draft = draft_site(report, site, min_count=args.min_count)
        args.write_site.write_text(json.dumps(draft, indent=2) + "\n")
        todo = sum(1 for e in itertools.chain(draft["wifi_aps"], draft["ble_beacons"])
                   if e.get("x") is None)
        print(f"wrote {args.write_site}: {todo} positions to fill in, then run "
              f"`edge-agent validate {args.write_site}`", file=sys.stderr)
    n_wifi = sum(1 for h in report.heard if h.kind == "wifi")
    n_ble = len(report.heard) - n_wifi
    surveyed = sum(1 for h in report.heard if h.surveyed)
    summary = (f"survey: {report.observations} observations, {n_wifi} APs and {n_ble} beacons "
               f"heard")
    if site is not None:
        summary += (f"; {surveyed} of them in {args.site}, {len(report.missing)} surveyed ones "
                    f"not heard")
    skipped: Counter[str] = Counter()
    for src in sources:  # by source: "not_beacon" means a Wi-Fi data frame or a BLE phone
        skipped.update({f"{getattr(src, 'kind', '')} {k}".strip(): n
                        for k, n in src.stats.skipped.items()})
    if skipped:
        summary += " (skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.most_common()) + ")"
    print(summary, file=sys.stderr)
    return 0
