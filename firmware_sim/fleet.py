"""Fleet mode: N trucks in the same plant (same APs, fields and survey), each with its own shift.

Each truck is `simulate(name, seed, truck=i)`: the world streams are keyed by the seed only, the
motion and receiver streams also by the truck, so truck 1 of a fleet is the single run.
"""

from __future__ import annotations

from pathlib import Path

from firmware_sim.run import SimRun, simulate


def agent_id(index: int) -> str:
    """Agent ids of a fleet: fl-01, fl-02, ..."""
    return f"fl-{index + 1:02d}"


def simulate_fleet(name: str, n_trucks: int, seed: int = 0,
                   duration_s: float | None = None) -> list[SimRun]:
    return [simulate(name, seed, duration_s, truck=i) for i in range(n_trucks)]


def write_fleet(name: str, n_trucks: int, seed: int, out_dir: str | Path,
                duration_s: float | None = None) -> list[Path]:
    """One bundle per truck in out_dir/fl-01, out_dir/fl-02, ...; returns their paths."""
    out = Path(out_dir)
    paths = []
    for i in range(n_trucks):
        run = simulate(name, seed, duration_s, truck=i)
        paths.append(run.write_bundle(out / agent_id(i)))
    return paths
