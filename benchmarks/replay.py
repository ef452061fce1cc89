"""End-to-end `edge-agent replay` of firmware_sim bundles: wall, CPU, peak RSS against the targets.

    .venv/bin/python benchmarks/replay.py [--scenarios a,b] [--seed 1] [--repeat 3] [--work DIR]

Per scenario (30-minute bundles, made once into --work): the replay command in a subprocess (its own
rusage through os.wait4: user+sys CPU and peak RSS), next to a start-up baseline - a subprocess that
only imports the modules that replay loads (interpreter, numpy, pynmea2, edge_agent; filterpy and
the scipy it pulls in are shown for reference: replay no longer loads them) - so the processing
figure is visible apart from the start-up cost. Medians of --repeat runs. Targets (issue 4):
1.8 s on one core (>= 1000x real time), peak RSS <= 120 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SCENARIOS = ("indoor_shift", "yard_trips", "sparse_aps", "stale_survey", "dense_ble", "high_bay")
TARGET_S = 1.8
TARGET_MB = 120.0
DURATION_S = 1800.0
# What the replay process imports, listed by a replay run itself (so the baseline stays honest when
# the imports change); the stage baselines show where the start-up goes.
_LIST_MODULES = (
    "import sys\n"
    "from edge_agent.cli import main\n"
    "sys.argv = ['edge-agent', 'replay', sys.argv[1], '--out', sys.argv[2]]\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print(' '.join(sorted(m for m in sys.modules if m.startswith('edge_agent'))))\n"
)
STAGES = (("python alone", "pass"), ("+ numpy", "import numpy"))
REFERENCE = ("(not loaded) numpy + filterpy.kalman (scipy)", "import numpy, filterpy.kalman")


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    rss_mb: float


AS_INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The measured processes run as on an installed agent, from cached bytecode: a development
shell with PYTHONDONTWRITEBYTECODE set recompiles every edge_agent module at each start (~45 ms
here). main() runs one unmeasured replay first so the caches exist."""


def measure(cmd: list[str]) -> Run:
    """Run cmd to completion; its own CPU and peak RSS from wait4 (not the other children's)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                         env=AS_INSTALLED_ENV)
    _pid, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {err.strip()}")
    return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0)


def median(runs: list[Run]) -> Run:
    return Run(statistics.median(r.wall_s for r in runs), statistics.median(r.cpu_s for r in runs),
               statistics.median(r.rss_mb for r in runs))


def make_bundle(scenario: str, seed: int, work: Path) -> Path:
    out = work / f"{scenario}-s{seed}"
    if not (out / "site.json").is_file():
        subprocess.run([sys.executable, "-m", "firmware_sim", scenario, "--seed", str(seed),
                        "--out", str(out)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--seed", type=int, default=1, help="firmware_sim seed")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edge-agent-bench-replay"),
                    help="where bundles and outputs go (bundles are reused)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    edge_agent = str(VENV_BIN / "edge-agent")
    scenarios = [s for s in args.scenarios.split(",") if s]
    bundles = {s: make_bundle(s, args.seed, args.work) for s in scenarios}

    first = bundles[scenarios[0]]
    measure([edge_agent, "replay", str(first), "--out", str(args.work / "out-warm-up")])
    listed = subprocess.run([sys.executable, "-c", _LIST_MODULES, str(first),
                             str(args.work / "out-list")], check=True, cwd=ROOT,
                            capture_output=True, text=True).stdout.split()
    imports = "import " + ", ".join(listed)
    print(f"start-up baselines (median of {args.repeat}; CPU = user+sys):")
    print(f"  {'what':44} {'wall s':>7} {'CPU s':>6} {'RSS MB':>7}")
    ref = median([measure([sys.executable, "-c", REFERENCE[1]]) for _ in range(args.repeat)])
    print(f"  {REFERENCE[0]:44} {ref.wall_s:7.2f} {ref.cpu_s:6.2f} {ref.rss_mb:7.1f}")
    base = Run(0, 0, 0)
    for label, code in (*STAGES, (f"+ the {len(listed)} edge_agent modules replay loads",
                                  imports)):
        base = median([measure([sys.executable, "-c", code]) for _ in range(args.repeat)])
        print(f"  {label:44} {base.wall_s:7.2f} {base.cpu_s:6.2f} {base.rss_mb:7.1f}")
    print(f"\nedge-agent replay, 30-minute bundles (seed {args.seed}); processing = replay - "
          f"start-up; targets {TARGET_S} s, {TARGET_MB:.0f} MB")
    print(f"  {'scenario':14} {'obs':>7} {'wall s':>7} {'CPU s':>6} {'proc. s':>7} "
          f"{'x real':>7} {'CPU/target':>10} {'RSS MB':>7} {'proc. MB':>8} {'RSS/target':>10}")
    for s in scenarios:
        out = args.work / f"out-{s}"
        runs = [measure([edge_agent, "replay", str(bundles[s]), "--out", str(out)])
                for _ in range(args.repeat)]
        r = median(runs)
        obs = json.loads((out / "summary.json").read_text())["observations"]
        print(f"  {s:14} {obs:7d} {r.wall_s:7.2f} {r.cpu_s:6.2f} {r.cpu_s - base.cpu_s:7.2f} "
              f"{DURATION_S / r.cpu_s:6.0f}x {r.cpu_s / TARGET_S:9.2f}x {r.rss_mb:7.1f} "
              f"{r.rss_mb - base.rss_mb:8.1f} {r.rss_mb / TARGET_MB:9.2f}x")
    print(f"\n(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: "
          "shared machine, figures are noisy)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
