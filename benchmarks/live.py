"""CPU share and memory of the tracker fed in real time (~150 Wi-Fi frames/s plus BLE and GNSS).

    .venv/bin/python benchmarks/live.py [--scenario indoor_shift] [--seconds 60] [--seed 0]

Observations come from firmware_sim (its live feeder when it has one, else the simulated run
released at its own timestamps); each is handed to Tracker.process when its time comes. Prints the
tracker's CPU share of one core (thread CPU time inside process() over wall time), the whole
process's CPU share (feeding loop included), the frame rates fed, and peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's firmware_sim

from edge_agent.fusion.tracker import Tracker
from edge_agent.observations import BleObs, GnssFix, WifiObs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="indoor_shift", help="firmware_sim scenario")
    ap.add_argument("--seconds", type=float, default=60.0, help="wall seconds to run (default 60)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed")
    args = ap.parse_args(argv)
    from firmware_sim import simulate

    run = simulate(args.scenario, seed=args.seed, duration_s=args.seconds + 5.0)
    obs = list(run.observations)
    rss0_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    tracker = Tracker(run.site)
    t_first = obs[0].t
    wall0 = time.monotonic()
    cpu0 = time.process_time()
    tracker_cpu = 0.0
    kinds: Counter[str] = Counter()
    n_est = 0
    for o in obs:
        due = wall0 + (o.t - t_first)
        if due - wall0 > args.seconds:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        c0 = time.thread_time()
        n_est += len(tracker.process(o))
        tracker_cpu += time.thread_time() - c0
        kinds["wifi" if isinstance(o, WifiObs) else "ble" if isinstance(o, BleObs)
              else "gnss" if isinstance(o, GnssFix) else "other"] += 1
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"scenario {args.scenario}, {wall:.1f} s wall, estimates {n_est}")
    print("fed per second: " + ", ".join(f"{k} {v / wall:.1f}" for k, v in sorted(kinds.items())))
    print(f"tracker CPU: {tracker_cpu:.3f} s = {100 * tracker_cpu / wall:.2f} % of one core")
    print(f"process CPU (feeder included): {cpu:.3f} s = {100 * cpu / wall:.2f} % of one core")
    print(f"peak RSS: {rss_mb:.0f} MB (before the tracker started: {rss0_mb:.0f} MB, "
          "includes the simulated run held in memory)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
