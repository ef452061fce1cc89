"""`edge-agent dashboard`: subscribe to the fleet's windows and serve the supervisors' page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.errors import InputError
from edge_agent.publish.options import add_broker_options, broker_kwargs, check_topic_level

# How long to wait for the broker before serving anyway (it may come later; paho retries).
CONNECT_WAIT_S = 5.0


def parse_http(value: str) -> tuple[str, int]:
    """HOST:PORT for the web server; bad values are an InputError naming the option."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError("--http", "must be HOST:PORT, e.g. 127.0.0.1:8080", value=value)
    return host.strip("[]"), int(port)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "dashboard", help="central dashboard: ingest the fleet's windows, serve the map",
        description="Subscribe to every agent's heatmap windows through a shared "
                    "subscription ($share/GROUP/plants/+/agents/+/heatmap; MQTT 5, or 3.1.1 "
                    "with --mqtt-version 3), plus their status "
                    "and the sites' plans, keep them in a SQLite store (each window once), and "
                    "serve the floor plan, the fleet heatmap and the utilisation tables over "
                    "HTTP. API: docs/dashboard.md.")
    add_broker_options(p, inflight=False)
    p.add_argument("--db", type=Path, default=Path("dashboard.db"),
                   help="SQLite store (created if missing; instances of one share group on "
                        "one host share it); default ./dashboard.db")
    p.add_argument("--http", default="127.0.0.1:8080",
                   help="HOST:PORT the web page and API listen on; default 127.0.0.1:8080 "
                        "(use 0.0.0.0:8080 to reach it from tablets)")
    p.add_argument("--site-file", type=Path, action="append", default=[],
                   help="a site.json whose floor plan the map draws (repeat for several "
                        "sites); sites may also be published retained on plants/SITE/site")
    p.add_argument("--group", default="dashboard",
                   help="shared-subscription group: instances in one group split the load "
                        "(default dashboard; a topic level: A-Z a-z 0-9 . _ -)")
    p.add_argument("--client-id", default=None,
                   help="MQTT client id (default: stable per host, group and --db)")
    p.add_argument("--store-process", action="store_true",
                   help="decode and store windows in a second process, so MQTT and SQLite use "
                        "two cores (faster backlog drains on a multi-core server)")
    p.add_argument("--shifts", default="06:00,14:00,22:00",
                   help="shift start times HH:MM in the browser's local time, comma "
                        "separated, for the 'This shift' range; default 06:00,14:00,22:00")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from edge_agent.dashboard.app import create_app, parse_shifts
    from edge_agent.dashboard.ingest import DashboardIngest
    from edge_agent.dashboard.store import DashboardStore
    from edge_agent.site import load_site

    host, port = parse_http(args.http)
    check_topic_level(args.group, "--group")
    if args.broker is None and (args.tls_ca or args.username or args.password_file):
        raise InputError("command line", "broker options given without --broker",
                         field="--broker")
    try:
        shifts = parse_shifts([s.strip() for s in args.shifts.split(",") if s.strip()])
    except ValueError as e:
        raise InputError("--shifts", str(e)) from None
    plans = [load_site(f) for f in args.site_file]
    store = DashboardStore(args.db)
    for f, site in zip(args.site_file, plans, strict=True):
        store.set_site_plan(site.to_dict(), f"file:{f}")
    ingest = None
    if args.broker:
        ingest = DashboardIngest(store, args.broker, group=args.group, client_id=args.client_id,
                                 store_process=args.store_process, **broker_kwargs(args))
        ingest.start()
        if ingest.wait_connected(CONNECT_WAIT_S):
            print(f"subscribed to {ingest.url} as share group {args.group!r}", file=sys.stderr)
        else:
            print(f"dashboard: warning: not subscribed to {ingest.url} yet "
                  f"({ingest.last_error or 'no answer'}); serving the store and retrying",
                  file=sys.stderr)
    print(f"dashboard on http://{host}:{port}/ (store {args.db})", file=sys.stderr)
    try:
        uvicorn.run(create_app(store, shifts=shifts), host=host, port=port, log_level="warning")
    finally:
        if ingest is not None:
            print(f"dashboard: {ingest.stop()}")
    return 0
