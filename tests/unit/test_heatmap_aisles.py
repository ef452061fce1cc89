"""Aisle snapping of the dwell map: onto the nearest centre line within reach, else unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.estimate import Estimate
from edge_agent.heatmap.accumulator import WindowAccumulator
from edge_agent.heatmap.aisles import AISLE_CAPTURE_M, AisleSnap
from edge_agent.heatmap.window import merge_windows
from edge_agent.site import Site, site_from_dict

T0 = 1_794_999_600.0


@pytest.fixture
def site() -> Site:
    return site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "aisles": [{"from": [10, 10], "to": [90, 10], "width_m": 4},
                   {"from": [50, 10], "to": [50, 60], "width_m": 4}]})


def test_positions_near_an_aisle_go_onto_its_centre_line(site: Site) -> None:
    snap = AisleSnap(site)
    assert snap.snap(30.0, 13.5) == (30.0, 10.0)  # 3.5 m off, reach 2 + 3 m
    assert snap.snap(52.0, 40.0) == (50.0, 40.0)
    assert snap.snap(95.0, 10.0) == (90.0, 10.0)  # past the end: onto the end point
    assert snap.snap(30.0, 30.0) == (30.0, 30.0)  # 20 m from any aisle: open area, unchanged


def test_no_aisles_changes_nothing() -> None:
    bare = site_from_dict({"site": "s", "origin": {"lat": 0, "lon": 0},
                           "bounds": {"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10}})
    assert AisleSnap(bare).snap(3.3, 4.4) == (3.3, 4.4)


def test_accumulator_snaps_by_default_and_keeps_dwell(site: Site) -> None:
    seq = [Estimate(T0 + k, 30.0, 13.5, (1.0, 0.0, 1.0), 0.0, False) for k in range(20)]

    def cells(**kw: bool) -> dict[tuple[int, int], tuple[float, float]]:
        acc = WindowAccumulator(site, "fl-01", **kw)
        out = [w for e in seq for w in acc.add(e)] + acc.flush()
        return merge_windows(out).cells

    assert cells() == {(15, 5): (20.0, 0.0)}
    assert cells(snap_to_aisles=False) == {(15, 6): (20.0, 0.0)}


def _snap_reference(site: Site, x_m: float, y_m: float) -> tuple[float, float]:
    """The former numpy implementation over every aisle (the binned lookup must agree)."""
    a = site.aisles
    x0 = np.array([s.start[0] for s in a], dtype=np.float64)
    y0 = np.array([s.start[1] for s in a], dtype=np.float64)
    dx = np.array([s.end[0] for s in a], dtype=np.float64) - x0
    dy = np.array([s.end[1] for s in a], dtype=np.float64) - y0
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    reach = np.array([s.width_m / 2.0 for s in a], dtype=np.float64) + AISLE_CAPTURE_M
    u = np.clip(((x_m - x0) * dx + (y_m - y0) * dy) / length2, 0.0, 1.0)
    px, py = x0 + u * dx, y0 + u * dy
    d = np.hypot(px - x_m, py - y_m)
    j = int(np.argmin(d - reach))
    if d[j] > reach[j]:
        return x_m, y_m
    return float(px[j]), float(py[j])


def test_binned_snap_matches_the_reference_over_every_aisle() -> None:
    """A plant of many crossing aisles (firmware_sim's dense_ble), random points over and
    beyond it, and points exactly on junctions and aisle ends (ties)."""
    from firmware_sim import simulate

    site = simulate("dense_ble", seed=0, duration_s=5).site
    snap = AisleSnap(site)
    rng = np.random.default_rng(4)
    b = site.bounds
    xs = rng.uniform(b.xmin - 10, b.xmax + 10, 20000).tolist()
    ys = rng.uniform(b.ymin - 10, b.ymax + 10, 20000).tolist()
    points = list(zip(xs, ys, strict=True))
    for a in site.aisles:
        points += [a.start, a.end, ((a.start[0] + a.end[0]) / 2, (a.start[1] + a.end[1]) / 2)]
        points += [(a.start[0] + 0.5, a.start[1] - 4.99), (a.end[0] - 5.0, a.end[1] + 5.0)]
    for x, y in points:
        assert snap.snap(float(x), float(y)) == _snap_reference(site, float(x), float(y)), (x, y)
    assert snap.snap(math.nan, 1.0)[1] == 1.0
    assert snap.snap(math.inf, 1.0) == (math.inf, 1.0)
