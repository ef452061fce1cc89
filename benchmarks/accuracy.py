"""Fusion accuracy on firmware_sim scenarios: tracker vs weighted centroid vs static CRB, and speed.

    .venv/bin/python benchmarks/accuracy.py [--seeds 3] [--duration 1800] [--scenarios a,b]

Per scenario (over the seeds) and zone: RMSE / p50 / p95 / availability of the tracker, the
centroid's RMSE and the static CRB (RMS and median over the seconds); then moving share and
distance against truth, tracker time on SimRun.observations (parsing excluded), the real-time
factor, and how many stops of 30 s or more the estimates wandered more than 3 m in. Stale-survey
cost is printed when both stale_survey and its control run.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's firmware_sim

from edge_agent.estimate import Estimate
from edge_agent.fusion.baselines import weighted_centroid
from edge_agent.fusion.evaluate import (
    Truth,
    crb_per_second,
    gnss_seconds,
    motion_figures,
    score,
)
from edge_agent.fusion.tracker import Tracker, TrackerParams
from edge_agent.site import Site


@dataclass
class Acc:
    """Per-scenario accumulation over seeds: concatenated errors per zone, and sums."""

    err: dict[str, list[float]] = field(default_factory=dict)
    cen: dict[str, list[float]] = field(default_factory=dict)
    crb: dict[str, list[float]] = field(default_factory=dict)
    avail: list[float] = field(default_factory=list)
    yard_gnss: list[float] = field(default_factory=list)
    tracker_s: float = 0.0
    sim_s: float = 0.0
    obs: int = 0
    peak_mb: float = 0.0
    motion: list[dict[str, float]] = field(default_factory=list)
    resets: int = 0
    stop_spreads: list[float] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    indoor_zones: set[str] = field(default_factory=set)


def run_tracker(site: Site, observations: list[Any], params: TrackerParams | None = None
                ) -> tuple[list[Estimate], float, Tracker]:
    tr = Tracker(site, params)
    out: list[Estimate] = []
    gc.collect()
    t0 = time.process_time()
    ext = out.extend
    proc = tr.process
    for o in observations:
        r = proc(o)
        if r:
            ext(r)
    out.extend(tr.finish())
    return out, time.process_time() - t0, tr


def errors_by_zone(site: Site, truth: Truth, est: list[Estimate],
                   keep: set[float] | None = None) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {}
    ev = [e for e in est if e.valid and (keep is None or e.t in keep)]
    if not ev:
        return res
    tx, ty, _ = truth.at(np.array([e.t for e in ev]))
    for e, x, y in zip(ev, tx, ty, strict=True):
        z = site.zone_at(float(x), float(y))
        name = z.name if z else "(none)"
        d = math.hypot(e.x_m - x, e.y_m - y)
        res.setdefault(name, []).append(d)
        res.setdefault("all", []).append(d)
    return res


def fmt(v: float) -> str:
    return f"{v:6.2f}" if math.isfinite(v) else "   n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per scenario (default 3)")
    ap.add_argument("--duration", type=float, default=None,
                    help="simulated seconds per run (default: the scenario's own)")
    ap.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    ap.add_argument("--memory", action="store_true",
                    help="also measure the tracker's peak Python memory (slower: tracemalloc)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a TrackerParams field for an A/B run (repeatable)")
    ap.add_argument("--plan", choices=("full", "hall", "one"), default="full",
                    help="the aisles site.json gives the tracker: all of them (full), the "
                         "indoor ones only (hall: the yard is open ground), the first one "
                         "only (one: 2-D tracking); the simulated truck drives as before")
    args = ap.parse_args(argv)
    params = _params(args.param)
    from firmware_sim import simulate
    from firmware_sim.plans import plan_site
    from firmware_sim.scenarios import SCENARIOS

    names = [s for s in args.scenarios.split(",") if s] or list(SCENARIOS)
    wifi_sigma, ble_sigma = 4.0, 5.0
    results: dict[str, Acc] = {}
    for name in names:
        acc = results.setdefault(name, Acc())
        for seed in range(args.seeds):
            t_sim = time.perf_counter()
            run = simulate(name, seed=seed, duration_s=args.duration)
            sim_s = time.perf_counter() - t_sim
            obs = list(run.observations)
            truth = Truth(*(np.asarray(getattr(run.truth, k), dtype=np.float64)
                            for k in ("t", "x", "y", "speed", "moving")))
            sigmas = _scenario_sigmas(run, wifi_sigma, ble_sigma)
            site = plan_site(run.site, args.plan)
            est, cpu_s, tr = run_tracker(site, obs, params)
            if args.memory:
                tracemalloc.start()
                run_tracker(site, obs, params)
                acc.peak_mb = max(acc.peak_mb, tracemalloc.get_traced_memory()[1] / 1e6)
                tracemalloc.stop()
            acc.indoor_zones |= {z.name for z in run.site.zones if z.indoor}
            acc.tracker_s += cpu_s
            acc.sim_s += float(truth.t[-1] - truth.t[0])
            acc.obs += len(obs)
            for k, v in errors_by_zone(run.site, truth, est).items():
                acc.err.setdefault(k, []).extend(v)
            for k, v in errors_by_zone(run.site, truth, weighted_centroid(run.site, obs)).items():
                acc.cen.setdefault(k, []).extend(v)
            bounds = crb_per_second(run.true_site, truth, obs, *sigmas)
            for k, v in _bounds_by_zone(run.site, truth, bounds).items():
                acc.crb.setdefault(k, []).extend(v)
            acc.avail.append(score(run.site, truth, est).availability)
            gs = gnss_seconds(obs, run.site, truth)
            if gs:
                acc.yard_gnss.extend(errors_by_zone(run.site, truth, est, gs).get("all", []))
            acc.motion.append(motion_figures(truth, est))
            acc.resets += int(tr.stats["grid_resets"])
            acc.stop_spreads.extend(stop_spreads_m(truth, est))
            acc.moved.extend(m for m in tr.monitor.moved_keys() if m not in acc.moved)
            print(f"  {name} seed {seed}: sim {sim_s:.1f}s, {len(obs)} obs, tracker {cpu_s:.2f}s "
                  f"({tr.mode})",
                  file=sys.stderr)
    _print(results)
    return 0


STOP_MIN_S = 30
"""Stops of at least this long are checked for drift ..."""
STOP_SETTLE_S = 8
"""... from this many seconds after the truck stopped (the motion cue needs a few seconds)."""
STOP_DRIFT_M = 3.0


def stop_spreads_m(truth: Truth, est: list[Estimate]) -> list[float]:
    """Per true stop of STOP_MIN_S or more: how far the estimates wander from their median
    (max distance, metres), from STOP_SETTLE_S in. A standing truck must not drift."""
    te = np.array([e.t for e in est])
    _, _, moving = truth.at(te)
    out: list[float] = []
    k = 0
    while k < len(est):
        j = k
        while j < len(est) and not moving[j]:
            j += 1
        if j > k and te[j - 1] - te[k] + 1.0 >= STOP_MIN_S:
            seg = [e for e in est[k:j] if e.valid and e.t - te[k] >= STOP_SETTLE_S]
            if seg:
                xs = np.array([e.x_m for e in seg])
                ys = np.array([e.y_m for e in seg])
                out.append(float(np.max(np.hypot(xs - np.median(xs), ys - np.median(ys)))))
        k = j + 1
    return out


def _params(pairs: list[str]) -> TrackerParams:
    """TrackerParams with NAME=VALUE overrides, each parsed as its field's default's type."""
    base = TrackerParams()
    kw: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not hasattr(base, name):
            raise SystemExit(f"--param: TrackerParams has no field {name!r}")
        kind = type(getattr(base, name))
        kw[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return replace(base, **kw)


def _scenario_sigmas(run: Any, wifi: float, ble: float) -> tuple[float, float]:
    """The simulator's shadowing sigmas (the CRB's noise), else the tracker's defaults."""
    sc = getattr(run, "scenario", None)
    w = getattr(getattr(getattr(sc, "wifi", None), "link", None), "shadow_sigma_db", wifi)
    b = getattr(getattr(getattr(sc, "ble", None), "link", None), "shadow_sigma_db", ble)
    return float(w), float(b)


def _bounds_by_zone(site: Site, truth: Truth, bounds: dict[float, float]
                    ) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {}
    for k, v in bounds.items():
        if not math.isfinite(v):
            continue
        x, y, _ = truth.at(np.array([k]))
        z = site.zone_at(float(x[0]), float(y[0]))
        res.setdefault(z.name if z else "(none)", []).append(v)
        res.setdefault("all", []).append(v)
    return res


def _rms(v: list[float]) -> float:
    return float(np.sqrt(np.mean(np.square(v)))) if v else float("nan")


def _pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q)) if v else float("nan")


def _print(results: dict[str, Acc]) -> None:
    print(f"{'scenario':14s} {'zone':8s} {'n':>6s} {'RMSE':>6s} {'p50':>6s} {'p95':>6s} "
          f"{'cent.':>6s} {'ratio':>6s} {'CRB':>6s} {'/CRB':>6s} {'CRB50':>6s} {'/CRB50':>6s}")
    for name, a in results.items():
        for zone in ["all", *sorted(k for k in a.err if k != "all")]:
            e = a.err.get(zone, [])
            r = _rms(e)
            c = _rms(a.cen.get(zone, []))
            # the bound is for RSSI alone: outdoors (GNSS) it says nothing
            bounded = zone in a.indoor_zones or (zone == "all" and len(a.err) <= 2)
            b = _rms(a.crb.get(zone, [])) if bounded else float("nan")
            # the median bound: a few seconds with two emitters heard make the RMS meaningless
            b50 = _pct(a.crb.get(zone, []), 50) if bounded else float("nan")
            print(f"{name:14s} {zone:8s} {len(e):6d} {fmt(r)} {fmt(_pct(e, 50))} "
                  f"{fmt(_pct(e, 95))} {fmt(c)} {fmt(r / c if c else float('nan'))} {fmt(b)} "
                  f"{fmt(r / b if b else float('nan'))} {fmt(b50)} "
                  f"{fmt(r / b50 if b50 else float('nan'))}")
    print()
    print(f"{'scenario':14s} {'avail':>6s} {'yardGNSS':>8s} {'mov.true':>8s} {'mov.est':>8s} "
          f"{'dist.err':>8s} {'chord':>6s} {'tracker':>8s} {'x realtime':>10s} {'obs/s':>8s} "
          f"{'per 30min':>9s} {'resets':>6s} {'stops>3m':>8s} moved")
    for name, a in results.items():
        mt = float(np.mean([m.get("moving_share_true", np.nan) for m in a.motion]))
        me = float(np.mean([m.get("moving_share_est", np.nan) for m in a.motion]))
        dt = sum(m.get("distance_true_m", 0.0) for m in a.motion)
        de = sum(m.get("distance_est_m", 0.0) for m in a.motion)
        dc = sum(m.get("distance_chord_m", 0.0) for m in a.motion)
        mem = f" peak {a.peak_mb:.0f} MB" if a.peak_mb else ""
        print(f"{name:14s} {min(a.avail):6.3f} {fmt(_rms(a.yard_gnss)):>8s} {mt * 100:7.1f}% "
              f"{me * 100:7.1f}% {(de / dt - 1) * 100 if dt else float('nan'):+7.1f}% "
              f"{(dc / dt - 1) * 100 if dt else float('nan'):+5.1f}% "
              f"{a.tracker_s:7.2f}s {a.sim_s / max(a.tracker_s, 1e-9):9.0f}x "
              f"{a.obs / max(a.tracker_s, 1e-9):8.0f} {a.tracker_s / a.sim_s * 1800:8.2f}s "
              f"{a.resets:6d} {_drifting(a.stop_spreads):>8s} {','.join(a.moved)}{mem}")
    spreads = [d for a in results.values() for d in a.stop_spreads]
    hall = [_rms(a.err.get("hall", [])) for a in results.values() if a.err.get("hall")]
    print(f"\nmean hall RMSE over the scenarios {float(np.mean(hall)) if hall else math.nan:.2f}"
          f" m; stops of "
          f"{STOP_MIN_S} s or more whose estimates spread more than {STOP_DRIFT_M:.0f} m: "
          f"{_drifting(spreads)}")
    if "stale_survey" in results:
        ctrl = [k for k in results if k.startswith("stale_survey_control")
                or k == "stale_control"]
        if ctrl:
            rs = _rms(results["stale_survey"].err.get("all", []))
            rc = _rms(results[ctrl[0]].err.get("all", []))
            print(f"\nstale survey cost: RMSE {rs:.2f} vs control {rc:.2f} m: "
                  f"{(rs / rc - 1) * 100:+.1f}%")


def _drifting(spreads: list[float]) -> str:
    return f"{sum(d > STOP_DRIFT_M for d in spreads)}/{len(spreads)}"


if __name__ == "__main__":
    raise SystemExit(main())
