"""The route filter's distribution as mass points, and the heatmap booking dwell over them:
RouteFilter.mass_points, Estimate.mass, WindowAccumulator._weights (use_mass on and off)."""

from __future__ import annotations

import numpy as np
import pytest
from support.route import CROSS, peak_loglik, route_filter

from edge_agent.estimate import Estimate
from edge_agent.fusion.route_filter import RouteFilter
from edge_agent.heatmap.accumulator import WindowAccumulator
from edge_agent.heatmap.window import Window
from edge_agent.site import Site, site_from_dict

T0 = 1_794_999_600.0  # a multiple of 60


def _peaked(f: RouteFilter, x_m: float, y_m: float, sigma_m: float) -> None:
    f.update(peak_loglik(f, x_m, y_m, sigma_m), None)


def test_peaked_distribution_gives_few_points_covering_most_of_it() -> None:
    f = route_filter(CROSS)
    _peaked(f, 30.0, 20.0, 1.0)
    pts = f.mass_points(0.9, 64)
    assert 1 <= len(pts) <= 6
    assert sum(w for _, _, w in pts) == pytest.approx(1.0, abs=1e-9)
    ws = [w for _, _, w in pts]
    assert ws == sorted(ws, reverse=True)  # heaviest first
    assert all(abs(x - 30.0) <= 3.0 and y == pytest.approx(20.0) for x, y, _ in pts)
    # the points hold >= 90 % of the filter's own cell probabilities, before renormalising
    # and no more of them than needed
    pc = f.cell_probabilities()
    by_xy = {(round(float(x), 2), round(float(y), 2)): float(p)
             for p, x, y in zip(pc, f.g.cx, f.g.cy, strict=True)}
    held = [by_xy[(x, y)] for x, y, _ in pts]
    assert sum(held) >= 0.9
    assert sum(held[:-1]) < 0.9


def test_two_peaks_give_points_on_both_aisles_in_proportion() -> None:
    f = route_filter(CROSS)
    d1 = f.g.cell_distance_m(5.0, 20.0)[f.g.state_cell]
    d2 = f.g.cell_distance_m(20.0, 35.0)[f.g.state_cell]
    like = 0.75 * np.exp(-0.5 * (d1 / 0.7) ** 2) + 0.25 * np.exp(-0.5 * (d2 / 0.7) ** 2)
    f.update(np.log(like + 1e-300), None)
    pts = f.mass_points(0.9, 64)
    west = sum(w for x, y, w in pts if x < 12.0 and y == pytest.approx(20.0))
    north = sum(w for x, y, w in pts if y > 28.0 and x == pytest.approx(20.0))
    assert west + north == pytest.approx(1.0)
    assert west == pytest.approx(0.75, abs=0.05)
    assert north == pytest.approx(0.25, abs=0.05)


def test_flat_distribution_gives_no_points() -> None:
    f = route_filter(CROSS)  # uniform over ~80 cells: 64 of them hold ~80 % < 90 %
    assert f.g.n_cells > 64 / 0.9
    assert f.mass_points(0.9, 64) == ()
    # ... but a budget of every cell reaches any cover short of all of it
    assert len(f.mass_points(0.9, f.g.n_cells)) >= 0.9 * f.g.n_cells - 1


def test_broad_distribution_gives_no_points_with_a_small_budget() -> None:
    f = route_filter(CROSS)
    _peaked(f, 30.0, 20.0, 1.0)
    assert f.mass_points(0.9, 1) == ()  # one cell does not hold 90 % of a 1 m sigma
    assert f.mass_points(0.3, 1) != ()


# --- the heatmap ------------------------------------------------------------------------------


@pytest.fixture
def site() -> Site:
    """Two east-west aisles 20 m apart in a 100 m x 60 m hall."""
    return site_from_dict({
        "site": "plant-m", "origin": {"lat": 47.47, "lon": 6.81},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 60},
        "zones": [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]]}],
        "aisles": [{"from": [5, 10], "to": [95, 10], "width_m": 3.0},
                   {"from": [5, 30], "to": [95, 30], "width_m": 3.0}]})


MASS = ((20.5, 10.0, 0.5), (21.5, 10.0, 0.2), (20.5, 30.0, 0.3))
"""70 % on the southern aisle (two points in one 2 m cell), 30 % on the northern one."""


def _estimates(mass: tuple[tuple[float, float, float], ...]) -> list[Estimate]:
    # the mean between the aisles, sigma 2 m: the Gaussian path books it to one cell there
    return [Estimate(T0 + k, 21.0, 16.0, (4.0, 0.0, 4.0), 0.0, False, mass=mass)
            for k in range(10)]


def _run(acc: WindowAccumulator, estimates: list[Estimate]) -> list[Window]:
    out: list[Window] = []
    for e in estimates:
        out += acc.add(e)
    return out + acc.flush()


def test_dwell_is_split_over_the_mass_points_cells(site: Site) -> None:
    ws = _run(WindowAccumulator(site, "fl-01"), _estimates(MASS))
    assert len(ws) == 1
    w = ws[0]
    assert w.dwell_s == 10.0 and w.idle_s == 10.0
    assert w.cells == {(10, 5): (7.0, 0.0), (10, 15): (3.0, 0.0)}


def test_without_mass_use_the_same_estimates_go_to_one_cell(site: Site) -> None:
    for acc, est in ((WindowAccumulator(site, "fl-01", use_mass=False), _estimates(MASS)),
                     (WindowAccumulator(site, "fl-01"), _estimates(()))):
        ws = _run(acc, est)
        assert ws[0].dwell_s == 10.0
        assert ws[0].cells == {(10, 8): (10.0, 0.0)}  # (21, 16): between the aisles


def test_moving_dwell_follows_the_mass_too(site: Site) -> None:
    est = [Estimate(T0 + k, 21.0, 16.0, (4.0, 0.0, 4.0), 1.0, True, mass=MASS)
           for k in range(10)]
    w = _run(WindowAccumulator(site, "fl-01"), est)[0]
    assert w.cells == {(10, 5): (7.0, 7.0), (10, 15): (3.0, 3.0)}
    assert w.zones["hall"] == (10.0, 10.0, 0.0)
