"""The tracker through the aisle (route) filter on a seeded indoor shift, and without aisles.

Bounds sit above what this run gave when written (route: RMSE 4.56 m, p95 9.26 m, 97.0 % of
seconds within half width + 2 m of an aisle; 2-D path: RMSE 6.98 m; wild fixes moved it 0.03 m).
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache

import numpy as np
import pytest

from edge_agent.estimate import Estimate
from edge_agent.fusion.evaluate import Truth, score
from edge_agent.fusion.tracker import Tracker
from edge_agent.observations import GnssFix, Observation
from edge_agent.site import Aisle, Site

firmware_sim = pytest.importorskip("firmware_sim")


@cache
def _run() -> object:
    return firmware_sim.simulate("indoor_shift", seed=3, duration_s=600)


def _truth(run: object) -> Truth:
    tr = run.truth  # type: ignore[attr-defined]

    def get(k: str) -> object:
        return getattr(tr, k) if hasattr(tr, "t") else tr[k]

    return Truth(*(np.asarray(get(k), dtype=np.float64) for k in ("t", "x", "y", "speed",
                                                                   "moving")))


def _track(site: Site, observations: list[Observation]) -> tuple[list[Estimate], Tracker]:
    tr = Tracker(site)
    out: list[Estimate] = []
    for o in observations:
        out.extend(tr.process(o))
    out.extend(tr.finish())
    return out, tr


@cache
def _route_track() -> tuple[list[Estimate], Tracker]:
    run = _run()
    return _track(run.site, list(run.observations))  # type: ignore[attr-defined]


def _off_aisle_m(x: float, y: float, aisles: tuple[Aisle, ...]) -> float:
    """How far outside the nearest aisle's drivable width a point lies (negative: inside)."""
    best = math.inf
    for a in aisles:
        (ax, ay), (bx, by) = a.start, a.end
        dx, dy = bx - ax, by - ay
        u = min(1.0, max(0.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(x - ax - u * dx, y - ay - u * dy) - a.width_m / 2.0)
    return best


def test_route_estimates_stay_on_the_aisles_and_track() -> None:
    run = _run()
    site: Site = run.site  # type: ignore[attr-defined]
    assert site.aisles
    est, tr = _route_track()
    assert tr.route is not None
    off = np.array([_off_aisle_m(e.x_m, e.y_m, site.aisles) for e in est])
    assert np.mean(off <= 2.0) >= 0.95
    s = score(site, _truth(run), est)
    assert s.rmse_m < 6.0
    assert s.p95_m < 12.0
    assert s.availability >= 0.99


def test_site_without_aisles_goes_through_the_2d_path() -> None:
    run = _run()
    site = dataclasses.replace(run.site, aisles=())  # type: ignore[attr-defined]
    est, tr = _track(site, list(run.observations))  # type: ignore[attr-defined]
    assert tr.route is None
    s = score(site, _truth(run), est)
    assert s.rmse_m < 9.0
    assert s.availability >= 0.99


def test_wild_indoor_fix_does_not_move_the_route_estimate() -> None:
    run = _run()
    truth = _truth(run)
    obs = list(run.observations)  # type: ignore[attr-defined]
    t0 = float(truth.t[0])
    wild = []
    for k in range(5):
        t = t0 + 300.5 + k
        x, y, _ = truth.at(np.array([t]))
        wild.append(GnssFix(t, float(x[0]) + 30.0, float(y[0]), 1.5, 0.8, 1))
    clean, _ = _route_track()
    dirty, tr = _track(run.site, sorted([*obs, *wild], key=lambda o: o.t))  # type: ignore[attr-defined]
    assert tr.route is not None
    by_t = {e.t: e for e in clean}
    worst = max(math.hypot(e.x_m - by_t[e.t].x_m, e.y_m - by_t[e.t].y_m)
                for e in dirty if 300 <= e.t - t0 <= 320)
    assert worst < 3.0
