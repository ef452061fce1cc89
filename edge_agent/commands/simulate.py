"""`edge-agent simulate`: the simulator's bundles from the agent's command (python -m firmware_sim).

The options come from firmware_sim.cli (one definition for both entry points); firmware_sim.cli
imports only the standard library at start, the simulator itself only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from edge_agent.errors import InputError

_NOT_INSTALLED = "the simulator is not installed with this agent"


def _cli() -> ModuleType | None:
    try:
        return importlib.import_module("firmware_sim.cli")
    except ModuleNotFoundError:
        return None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate", help="write a simulated capture bundle with ground truth",
        description="Simulate forklifts in a plant (Wi-Fi, BLE, GNSS as their receivers hear "
                    "them) and write capture bundles with truth.csv; same as python -m "
                    "firmware_sim.")
    cli = _cli()
    if cli is not None:
        cli.add_arguments(p)
    else:  # an agent installed without firmware_sim: the command says so when run
        p.add_argument("rest", nargs=argparse.REMAINDER, help=_NOT_INSTALLED)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cli = _cli()
    if cli is None:
        raise InputError("firmware_sim", _NOT_INSTALLED)
    rc: int = cli.run(args)
    return rc
