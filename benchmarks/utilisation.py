"""Utilisation heatmaps against firmware_sim truth: dwell-map TV distance, moving share, distance.

    .venv/bin/python benchmarks/utilisation.py [--seeds 0,1] [--duration 1800] [--scenarios a,b]
                                               [--variants] [--cell-m 2]

Per scenario and seed: the tracker runs on SimRun.observations, its estimates go through the
WindowAccumulator (60 s windows, merged), and the merged heatmap is scored against the 10 Hz truth:
TV distance of the dwell maps (both on a 1 m grid, blurred with a 3 m Gaussian), moving share error
(percentage points), distance error (%), next to the tracker's position RMSE. --variants also
scores the heatmap design choices (spread or one cell, midpoint or held position, distance from
positions or from speed) on the same estimates, and times the payload encodings.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from edge_agent.estimate import Estimate
from edge_agent.fusion.tracker import Tracker
from edge_agent.heatmap.accumulator import WindowAccumulator
from edge_agent.heatmap.codec import encode_window, payload_json
from edge_agent.heatmap.window import Window, merge_windows
from edge_agent.site import Site

BLUR_SIGMA_M = 3.0  # issue 5: both maps blurred with a 3 m Gaussian on a 1 m grid
FINE_M = 1.0
TARGET_TV = 0.15
TARGET_MOVING_PTS = 3.0
TARGET_DISTANCE_PCT = 10.0

VARIANTS: dict[str, dict[str, Any]] = {
    "chosen": {},
    "one cell always": {"spread": False},
    "no route mass (Gaussian spread / snap)": {"use_mass": False},
    "spread always": {"spread_min_sigma_m": 0.0},
    "spread always x0.5": {"spread_min_sigma_m": 0.0, "spread_scale": 0.5},
    "spread if sigma>3": {"spread_min_sigma_m": 3.0},
    "held position": {"midpoint": False},
    "no aisle snap": {"snap_to_aisles": False},
    "aisle snap if sigma>3": {"snap_min_sigma_m": 3.0},
    "distance per step": {"distance_chord_s": 1.0},
    "distance chord 3 s": {"distance_chord_s": 3.0},
    "distance chord 8 s": {"distance_chord_s": 8.0},
    "distance=speed*dt": {"distance_from_speed": True},
}


@dataclass
class Row:
    scenario: str
    seed: int
    variant: str
    tv: float
    moving_pts: float
    distance_pct: float
    rmse_m: float
    share_true: float
    share_est: float
    dist_true_m: float
    dist_est_m: float
    cells_per_window: float
    wire_bytes: float


def truth_map(site: Site, t: np.ndarray, x: np.ndarray, y: np.ndarray, t0: float,
              t1: float) -> np.ndarray:
    """Seconds per 1 m cell from the 10 Hz truth over [t0, t1)."""
    b = site.bounds
    nx, ny = math.ceil((b.xmax - b.xmin) / FINE_M), math.ceil((b.ymax - b.ymin) / FINE_M)
    sel = (t >= t0) & (t < t1)
    ix = np.clip(np.floor((x[sel] - b.xmin) / FINE_M).astype(int), 0, nx - 1)
    iy = np.clip(np.floor((y[sel] - b.ymin) / FINE_M).astype(int), 0, ny - 1)
    m = np.zeros((nx, ny))
    np.add.at(m, (ix, iy), 0.1)
    return m


def agent_map(site: Site, w: Window) -> np.ndarray:
    """The heatmap's dwell on the 1 m grid: each cell's dwell spread evenly over its area."""
    b = site.bounds
    nx, ny = math.ceil((b.xmax - b.xmin) / FINE_M), math.ceil((b.ymax - b.ymin) / FINE_M)
    m = np.zeros((nx, ny))
    for (ix, iy), (d, _) in w.cells.items():
        x0 = w.x0 + ix * w.cell_m - b.xmin
        y0 = w.y0 + iy * w.cell_m - b.ymin
        fx0, fx1 = round(x0 / FINE_M), round((x0 + w.cell_m) / FINE_M)
        fy0, fy1 = round(y0 / FINE_M), round((y0 + w.cell_m) / FINE_M)
        fx1, fy1 = min(max(fx1, fx0 + 1), nx), min(max(fy1, fy0 + 1), ny)
        fx0, fy0 = min(fx0, nx - 1), min(fy0, ny - 1)
        area = (fx1 - fx0) * (fy1 - fy0)
        m[fx0:fx1, fy0:fy1] += d / area
    return m


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    pa = gaussian_filter(a, BLUR_SIGMA_M / FINE_M, mode="constant")
    pb = gaussian_filter(b, BLUR_SIGMA_M / FINE_M, mode="constant")
    if pa.sum() <= 0 or pb.sum() <= 0:
        return 1.0
    return float(0.5 * np.abs(pa / pa.sum() - pb / pb.sum()).sum())


def heatmap(site: Site, estimates: list[Estimate], cell_m: float,
            **kw: Any) -> tuple[Window, list[Window]]:
    acc = WindowAccumulator(site, "bench", cell_m, 60.0, **kw)
    ws: list[Window] = []
    for e in estimates:
        ws += acc.add(e)
    ws += acc.flush()
    return merge_windows(ws), ws


def score(name: str, seed: int, variant: str, site: Site, truth: Any, est: list[Estimate],
          merged: Window, windows: list[Window]) -> Row:
    valid = [e for e in est if e.valid]
    t0, t1 = merged.start, merged.end
    tt, tx, ty = truth.t, truth.x, truth.y
    # time the agent covers: from its first to its last estimate (+1 step)
    lo, hi = (valid[0].t, valid[-1].t + 1.0) if valid else (t0, t1)
    tv = tv_distance(agent_map(site, merged), truth_map(site, tt, tx, ty, lo, hi))
    sel = (tt >= lo) & (tt < hi)
    share_true = float(np.mean(truth.moving[sel])) if sel.any() else 0.0
    share_est = merged.moving_s / merged.dwell_s if merged.dwell_s > 0 else 0.0
    dist_true = float(np.sum(np.hypot(np.diff(tx[sel]), np.diff(ty[sel]))))
    te = np.array([e.t for e in valid])
    ex = np.array([e.x_m for e in valid])
    ey = np.array([e.y_m for e in valid])
    rx, ry = np.interp(te, tt, tx), np.interp(te, tt, ty)
    rmse = float(np.sqrt(np.mean((ex - rx) ** 2 + (ey - ry) ** 2))) if len(te) else math.nan
    full = [w for w in windows if w.dwell_s >= 55.0]
    cells = float(np.mean([len(w.cells) for w in full])) if full else 0.0
    wire = float(np.mean([len(encode_window(w)) for w in full])) if full else 0.0
    return Row(name, seed, variant, tv, 100.0 * (share_est - share_true),
               100.0 * (merged.distance_m - dist_true) / dist_true if dist_true > 0 else math.nan,
               rmse, share_true, share_est, dist_true, merged.distance_m, cells, wire)


def oracle_estimates(truth: Any, sigma_m: float, seed: int) -> list[Estimate]:
    """1 Hz estimates from the truth with calibrated Gaussian noise (what a perfect tracker with
    that uncertainty would say): the heatmap's own error, separated from the tracker's."""
    rng = np.random.default_rng(seed)
    t = truth.t
    out = []
    for k in range(0, len(t), 10):
        ex, ey = rng.normal(0.0, sigma_m, 2) if sigma_m > 0 else (0.0, 0.0)
        out.append(Estimate(float(t[k]), float(truth.x[k] + ex), float(truth.y[k] + ey),
                            (sigma_m**2, 0.0, sigma_m**2), float(truth.speed[k]),
                            bool(truth.moving[k])))
    return out


def encodings(windows: list[Window]) -> dict[str, float]:
    """Mean size (bytes) of a full window under each candidate encoding."""
    full = [w for w in windows if w.dwell_s >= 55.0] or windows
    sizes: dict[str, list[int]] = {"json": [], "zlib(json)": [], "packed": [],
                                   "zlib(packed)": []}
    for w in full:
        js = payload_json(w)
        sizes["json"].append(len(js))
        sizes["zlib(json)"].append(len(zlib.compress(js, 9)))
        packed = _packed(w)
        sizes["packed"].append(len(packed))
        sizes["zlib(packed)"].append(len(zlib.compress(packed, 9)))
    return {k: float(np.mean(v)) for k, v in sizes.items()}


def _packed(w: Window) -> bytes:
    """A hand-packed binary candidate: JSON header without cells + (u16 ix, u16 iy, u32 ms x2)."""
    head = w.to_payload()
    head.pop("cells")
    hb = json.dumps(head, separators=(",", ":")).encode()
    body = b"".join(struct.pack("<HHII", ix, iy, round(d * 1000), round(m * 1000))
                    for (ix, iy), (d, m) in sorted(w.cells.items()))
    return struct.pack("<H", len(hb)) + hb + body


def main(argv: list[str] | None = None) -> int:
    # the repo root first: an editable install made before firmware_sim/__init__.py existed maps
    # firmware_sim to a namespace package (pip install -e . again fixes that for good)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import firmware_sim
    from firmware_sim.plans import PLANS, plan_site

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--scenarios", default=",".join(firmware_sim.SCENARIOS),
                    help="comma-separated scenario names (default: all)")
    ap.add_argument("--cell-m", type=float, default=2.0)
    ap.add_argument("--variants", action="store_true", help="also score the design variants")
    ap.add_argument("--oracle", type=float, default=None, metavar="SIGMA_M",
                    help="replace the tracker by truth + N(0, SIGMA_M) with that sigma and the "
                         "true moving flag: isolates the heatmap's own error")
    ap.add_argument("--plan", choices=PLANS, default="full",
                    help="the aisles the agent's site.json gives (firmware_sim/plans.py)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n for n in args.scenarios.split(",") if n]
    rows: list[Row] = []
    enc: list[dict[str, float]] = []
    t_acc = 0.0
    n_est = 0
    print(f"{'scenario':22} {'seed':>4} {'variant':18} {'TV':>6} {'mov pts':>8} "
          f"{'dist %':>7} {'RMSE m':>7} {'share t/e':>11} {'dist t/e m':>15} {'cells':>6} "
          f"{'wire B':>6}")
    for name in names:
        for seed in seeds:
            run = firmware_sim.simulate(name, seed, args.duration)
            site = plan_site(run.site, args.plan)  # what the agent knows
            if args.oracle is not None:
                est = oracle_estimates(run.truth, args.oracle, seed)
            else:
                tr = Tracker(site)
                est = []
                for o in run.observations:
                    est += tr.process(o)
                est += tr.finish()
            for variant, kw in VARIANTS.items() if args.variants else [("chosen", {})]:
                c0 = time.perf_counter()
                merged, ws = heatmap(site, est, args.cell_m, **kw)
                if variant == "chosen":
                    t_acc += time.perf_counter() - c0
                    n_est += len(est)
                    enc.append(encodings(ws))
                r = score(name, seed, variant, run.site, run.truth, est, merged, ws)
                rows.append(r)
                print(f"{r.scenario:22} {r.seed:>4} {r.variant:18} {r.tv:6.3f} "
                      f"{r.moving_pts:+8.1f} {r.distance_pct:+7.1f} {r.rmse_m:7.2f} "
                      f"{r.share_true:5.2f}/{r.share_est:5.2f} "
                      f"{r.dist_true_m:7.0f}/{r.dist_est_m:7.0f} {r.cells_per_window:6.1f} "
                      f"{r.wire_bytes:6.0f}", flush=True)
    print()
    chosen = [r for r in rows if r.variant == "chosen"]
    print(f"chosen, all runs: TV mean {np.mean([r.tv for r in chosen]):.3f} "
          f"(target <= {TARGET_TV}), |moving| mean "
          f"{np.mean([abs(r.moving_pts) for r in chosen]):.1f} pts (target <= "
          f"{TARGET_MOVING_PTS}), |distance| mean "
          f"{np.mean([abs(r.distance_pct) for r in chosen]):.1f} % (target <= "
          f"{TARGET_DISTANCE_PCT}), RMSE mean {np.mean([r.rmse_m for r in chosen]):.2f} m")
    if args.variants:
        for v in VARIANTS:
            vr = [r for r in rows if r.variant == v]
            print(f"  {v:18} TV mean {np.mean([r.tv for r in vr]):.3f}  |distance| mean "
                  f"{np.mean([abs(r.distance_pct) for r in vr]):5.1f} %  cells/window "
                  f"{np.mean([r.cells_per_window for r in vr]):5.1f}  wire "
                  f"{np.mean([r.wire_bytes for r in vr]):5.0f} B")
    sizes = {k: float(np.mean([e[k] for e in enc])) for k in enc[0]} if enc else {}
    print("payload of a full 60 s window (mean bytes): " +
          ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()))
    if n_est:
        print(f"accumulator: {1e6 * t_acc / n_est:.1f} us per estimate (noisy: shared 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
