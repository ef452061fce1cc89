"""`python -m firmware_sim` and `edge-agent simulate`: write a scenario's bundle(s)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from edge_agent.errors import EdgeAgentError, InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario name (see --list)")
    p.add_argument("--list", action="store_true", help="print the scenario names, one a line")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bundle")
    p.add_argument("--out", type=Path, help="output folder for the bundle (or the fleet's "
                                            "fl-01, fl-02, ... folders)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to simulate (default: the scenario's, 1800)")
    p.add_argument("--trucks", type=int, default=1,
                   help="fleet mode: N trucks, one bundle each in OUT/fl-NN (default 1: OUT)")


def run(args: argparse.Namespace) -> int:
    from firmware_sim.fleet import agent_id
    from firmware_sim.run import simulate
    from firmware_sim.scenarios import SCENARIOS

    if args.list:
        for name in SCENARIOS:
            print(name)
        return 0
    if not args.scenario:
        raise InputError("SCENARIO", "missing scenario name (see --list)")
    if args.out is None:
        raise InputError("--out", "missing output folder")
    if args.trucks < 1:
        raise InputError("--trucks", "must be at least 1", value=args.trucks)
    progress = sys.stderr.isatty()
    start = time.perf_counter()
    n_obs = 0
    dur = 0.0
    for i in range(args.trucks):
        if progress:
            print(f"\rsimulating truck {i + 1}/{args.trucks} ...", end="", file=sys.stderr,
                  flush=True)
        r = simulate(args.scenario, args.seed, args.duration, truck=i)
        r.write_bundle(args.out if args.trucks == 1 else args.out / agent_id(i))
        n_obs += len(r.observations)
        dur = float(r.truth.t[-1] - r.truth.t[0]) + 0.1
    if progress:
        print("", file=sys.stderr)
    what = "bundle" if args.trucks == 1 else f"{args.trucks} bundles"
    print(f"{args.scenario} seed {args.seed}: {what} of {dur:.0f} s in {args.out}, "
          f"{n_obs} observations, {time.perf_counter() - start:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_sim",
                                description="Simulate forklifts in a plant and write capture "
                                            "bundles with ground truth.")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except EdgeAgentError as e:
        print(f"firmware_sim: error: {e}", file=sys.stderr)
        return e.exit_code
