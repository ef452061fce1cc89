"""`edge-agent demo`: a simulated fleet through real agents, a private Mosquitto, the dashboard."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from edge_agent.commands.dashboard import parse_http


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo", help="simulate a small fleet and show it on the dashboard (start here)",
        description="Simulate a few forklifts in a plant (firmware_sim), start a private "
                    "Mosquitto on a free loopback port, replay each truck through the agent "
                    "(tracker, heatmap windows, SQLite outbox, MQTT 5) into it, run the "
                    "dashboard on it and print its URL; Ctrl-C stops everything. Needs "
                    "mosquitto (sudo apt-get install mosquitto).")
    p.add_argument("--trucks", type=int, default=3, help="number of forklifts (default 3)")
    p.add_argument("--duration", type=float, default=600.0,
                   help="simulated seconds per forklift (default 600)")
    p.add_argument("--scenario", default="indoor_shift",
                   help="firmware_sim scenario (python -m firmware_sim --list); default "
                        "indoor_shift")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument("--http", default="127.0.0.1:8080",
                   help="HOST:PORT for the dashboard (default 127.0.0.1:8080)")
    p.add_argument("--out", type=Path, default=Path("demo-out"),
                   help="folder for the bundles, agent outboxes, replays and the dashboard's "
                        "store; cleared on each run (default ./demo-out)")
    p.add_argument("--no-serve", action="store_true",
                   help="run everything, check the API's totals against the agents' own, "
                        "print them and exit (for tests and CI): exit 1 on a mismatch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_agent.dashboard import demo
    from edge_agent.dashboard.private_broker import find_mosquitto
    from edge_agent.errors import InputError

    if not 1 <= args.trucks <= 99:
        raise InputError("--trucks", "must be from 1 to 99", value=args.trucks)
    if not (math.isfinite(args.duration) and args.duration >= 60):
        raise InputError("--duration", "must be at least 60 s (one window)", value=args.duration)
    host, port = parse_http(args.http) if not args.no_serve else ("127.0.0.1", 0)
    find_mosquitto()  # fail first, with the apt command, before simulating anything
    if port:
        _check_port_free(host, port)
    from firmware_sim.fleet import write_fleet
    from firmware_sim.scenarios import SCENARIOS

    if args.scenario not in SCENARIOS:
        raise InputError("--scenario", f"unknown; one of {', '.join(sorted(SCENARIOS))}",
                         value=args.scenario)
    out: Path = args.out
    demo.prepare_out_dir(out)
    demo.say(f"demo: simulating {args.trucks} forklifts, {args.duration:g} s each "
             f"({args.scenario}, seed {args.seed}) into {out}/fleet")
    bundles = write_fleet(args.scenario, args.trucks, args.seed, out / "fleet",
                          duration_s=args.duration)
    rig = demo.start_rig(out, bundles[0] / "site.json", host, port)
    try:
        demo.say(f"demo: private Mosquitto on {rig.broker.url} (log {rig.broker.log_path})")
        if not args.no_serve:
            print(f"dashboard: {rig.base_url}/", flush=True)
        demo.say("demo: replaying the agents (tracker -> heatmap windows -> outbox -> MQTT)")
        runs = demo.replay_agents(bundles, out / "agents", rig.broker.url,
                                  progress=sys.stderr.isatty())
        ids = {w.id for r in runs for w in r.windows}
        arrived = demo.wait_for_windows(rig.store, ids)
        site = runs[0].heatmap["site"]
        api = demo.http_get_json(f"{rig.base_url}/api/utilisation?site={site}")
        check = demo.check_totals(api, runs)
        _print_check(check, arrived, api)
        if args.no_serve:
            return 0 if check.ok and arrived else 1
        print(f"dashboard: {rig.base_url}/  (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            demo.say("demo: stopping")
        return 0
    finally:
        demo.say(f"demo: dashboard ingest: {rig.stop()}")


def _check_port_free(host: str, port: int) -> None:
    """Fail before the simulation, not after it, when --http's port is taken."""
    import socket

    from edge_agent.errors import InputError

    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind((host, port))
    except OSError as e:
        raise InputError("--http", f"cannot listen on {host}:{port}: {e.strerror}; try "
                         f"--http {host}:{port + 1}") from None


def _print_check(check: object, arrived: bool, api: dict[str, object]) -> None:
    from edge_agent.dashboard.demo import Check

    assert isinstance(check, Check)
    print(f"{'agent':8} {'windows':>7} {'moving h':>9} {'idle h':>7} {'distance km':>11}  status")
    for r in check.rows:
        print(f"{r['agent']:8} {r['windows']:>7} {r['moving_s'] / 3600:>9.3f} "
              f"{r['idle_s'] / 3600:>7.3f} {r['distance_m'] / 1000:>11.3f}  {r['status']}")
    totals = api["totals"]
    assert isinstance(totals, dict)
    print(f"{'fleet':8} {totals['windows']:>7} {totals['moving_s'] / 3600:>9.3f} "
          f"{totals['idle_s'] / 3600:>7.3f} {totals['distance_m'] / 1000:>11.3f}")
    if not arrived:
        print("demo: not every window reached the dashboard in time")
    if check.ok:
        print("demo: API totals equal the agents' own heatmap.json, window for window: OK")
    else:
        for p in check.problems:
            print(f"demo: MISMATCH {p}")
