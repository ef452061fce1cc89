"""CPU share and memory of the tracker fed in real time (~150 Wi-Fi frames/s plus BLE and GNSS).

    .venv/bin/python benchmarks/live.py [--scenario indoor_shift] [--seconds 60] [--speed 4]

firmware_sim.live paces one simulated run's Wi-Fi, BLE and GNSS sources in real time (one thread
each, rebased to now, as live radios); a consumer thread hands every observation to
Tracker.process. --speed N plays N simulated seconds per wall second: the sim's indoor shift
gives about 35 Wi-Fi frames/s, so --speed 4 is the ~150 frames/s load of the target (and 4
estimates per wall second, more than a live agent makes). Prints the tracker's CPU share of one
core (thread CPU time inside process() over wall time), the whole process's share (pacing threads
included), the rates fed and the peak resident memory.
"""

from __future__ import annotations

import argparse
import queue
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's firmware_sim

from edge_agent.fusion.tracker import Tracker
from edge_agent.observations import Observation

_DONE = object()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="indoor_shift", help="firmware_sim scenario")
    ap.add_argument("--seconds", type=float, default=60.0, help="wall seconds to run (default 60)")
    ap.add_argument("--speed", type=float, default=4.0,
                    help="simulated seconds per wall second (default 4: ~150 Wi-Fi frames/s)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed")
    args = ap.parse_args(argv)
    from firmware_sim import simulate
    from firmware_sim.live import live_sources

    run = simulate(args.scenario, seed=args.seed, duration_s=args.seconds * args.speed + 5.0)
    rss0_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sources = live_sources(run, speed=args.speed, rebase=True)
    q: queue.Queue[object] = queue.Queue()

    def pump(src: object) -> None:
        for o in src:  # type: ignore[attr-defined]
            q.put(o)
        q.put(_DONE)

    tracker = Tracker(run.site)
    threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in sources]
    kinds: Counter[str] = Counter()
    n_est = 0
    tracker_cpu = 0.0
    wall0 = time.monotonic()
    cpu0 = time.process_time()
    for th in threads:
        th.start()
    done = 0
    while done < len(threads) and time.monotonic() - wall0 < args.seconds:
        try:
            item = q.get(timeout=0.5)
        except queue.Empty:
            continue
        if item is _DONE:
            done += 1
            continue
        o: Observation = item  # type: ignore[assignment]
        c0 = time.thread_time()
        n_est += len(tracker.process(o))
        tracker_cpu += time.thread_time() - c0
        kinds[type(o).__name__] += 1
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    for s in sources:
        s.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"scenario {args.scenario} x{args.speed:g}, {wall:.1f} s wall, {n_est} estimates, "
          f"{tracker.stats['late']} late observations")
    print("fed per wall second: " + ", ".join(f"{k} {v / wall:.1f}"
                                              for k, v in sorted(kinds.items())))
    print(f"tracker CPU: {tracker_cpu:.3f} s = {100 * tracker_cpu / wall:.2f} % of one core")
    print(f"process CPU (pacing threads included): {cpu:.3f} s = {100 * cpu / wall:.2f} %")
    print(f"peak RSS: {rss_mb:.0f} MB (before the tracker: {rss0_mb:.0f} MB, the simulated "
          "run and numpy included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
