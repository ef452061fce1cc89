"""`edge-agent simulate`: the simulator's bundles from the agent's command (python -m firmware_sim).

firmware_sim is imported only when the command runs: the agent itself never depends on it.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from edge_agent.errors import InputError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate", help="write a simulated capture bundle with ground truth",
        description="Simulate forklifts in a plant (Wi-Fi, BLE, GNSS as their receivers hear "
                    "them) and write capture bundles with truth.csv; same as python -m "
                    "firmware_sim.")
    p.add_argument("scenario", nargs="?", help="scenario name (see --list)")
    p.add_argument("--list", action="store_true", help="print the scenario names, one a line")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bundle")
    p.add_argument("--out", type=Path, help="output folder for the bundle (or the fleet's "
                                            "fl-01, fl-02, ... folders)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to simulate (default: the scenario's, 1800)")
    p.add_argument("--trucks", type=int, default=1,
                   help="fleet mode: N trucks, one bundle each in OUT/fl-NN (default 1: OUT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cli = importlib.import_module("firmware_sim.cli")
    except ModuleNotFoundError:
        raise InputError("firmware_sim", "the simulator is not installed with this agent") \
            from None
    rc: int = cli.run(args)
    return rc
