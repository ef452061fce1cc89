"""`edge-agent replay BUNDLE --out DIR`: run a capture bundle through the agent, offline.

Writes DIR/positions.csv and DIR/heatmap.json (spec/capture-bundle.md) and DIR/summary.json
(counts per source, skip reasons, tracker health). With --db/--broker the windows also go
through the outbox to the broker, exactly as the live agent sends them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.errors import InputError

if TYPE_CHECKING:  # the pipeline (numpy) is imported by run(), after the BLAS thread setting
    from edge_agent.pipeline import WindowSink

DEFAULT_AGENT = "fl-01"
DB_NAME = "outbox.sqlite"
BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"
"""The tracker's matrices are tiny (<= 10 x 10): OpenBLAS's extra threads do no work but spin
when numpy loads them, 0.07 s of CPU per replay on this 2-core machine (more cores, more spin).
One thread unless the user's environment says otherwise; set before numpy is first imported."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from edge_agent.publish.options import add_broker_options

    p = subparsers.add_parser(
        "replay", help="replay a capture bundle: positions.csv, heatmap.json, summary.json",
        description="Feed a capture bundle (site.json + wifi.pcap / ble.pcap / gps.nmea) through "
                    "the tracker and the heatmap exactly as the live agent would, at full "
                    "speed. Writes DIR/positions.csv, DIR/heatmap.json (the whole run) and "
                    "DIR/summary.json.")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="capture bundle directory")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (created if missing)")
    p.add_argument("--agent", default=DEFAULT_AGENT, metavar="ID",
                   help=f"agent id written into the heatmap and window ids (default "
                        f"{DEFAULT_AGENT})")
    p.add_argument("--cell-m", type=float, default=2.0, metavar="M",
                   help="heatmap cell size in metres (default 2)")
    p.add_argument("--window-s", type=float, default=60.0, metavar="S",
                   help="heatmap window length in seconds (default 60)")
    p.add_argument("--db", type=Path, metavar="PATH",
                   help="also store every window in this outbox database (default with "
                        f"--broker: DIR/{DB_NAME})")
    add_broker_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.bundle.is_dir():
        raise InputError(args.bundle, "no such capture bundle directory", field="BUNDLE")
    if not args.cell_m > 0 or args.cell_m > 100:
        raise InputError("command line", "must be > 0 and <= 100", field="--cell-m",
                         value=args.cell_m)
    if not args.window_s >= 1:
        raise InputError("command line", "must be at least 1", field="--window-s",
                         value=args.window_s)
    from edge_agent.publish.options import check_topic_level

    check_topic_level(args.agent, "--agent")  # it goes into window ids and topics
    os.environ.setdefault(BLAS_THREADS_ENV, "1")
    from edge_agent.pipeline import replay_bundle

    sink = _sink(args)
    summary = replay_bundle(args.bundle, args.out, args.agent, window_sink=sink,
                            progress=sys.stderr.isatty(), cell_m=args.cell_m,
                            window_s=args.window_s)
    print(f"replay: {summary.line()}", file=sys.stderr)
    return 0


def _sink(args: argparse.Namespace) -> WindowSink | None:
    """The outbox forwarder when --db or --broker is given (import kept local: replay alone
    needs no MQTT)."""
    if args.db is None and args.broker is None:
        return None
    from edge_agent.bundle import Bundle
    from edge_agent.publish.forward import OutboxForwarder
    from edge_agent.publish.options import broker_kwargs

    site = Bundle.open(args.bundle).site.site
    db = args.db if args.db is not None else args.out / DB_NAME
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    fwd: WindowSink = OutboxForwarder(db, args.broker, site, args.agent, **broker_kwargs(args))
    return fwd
