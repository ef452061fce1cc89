"""RouteFilter on hand-made likelihoods: mass, idle hold, pull, speed, junction split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.route import CROSS, peak_loglik, route_filter

from edge_agent.fusion import route_filter as route_filter_module
from edge_agent.fusion.route_filter import RouteFilter
from edge_agent.site import Aisle

STRAIGHT = (Aisle((0.0, 0.0), (60.0, 0.0), 3.0),)
T_NORTH = (Aisle((0.0, 20.0), (40.0, 20.0), 3.0), Aisle((20.0, 20.0), (20.0, 40.0), 3.0))


def test_mass_stays_normalised() -> None:
    f = route_filter(CROSS)
    rng = np.random.default_rng(1)
    for _ in range(20):
        f.predict(1.0)
        assert abs(f.p.sum() - 1.0) < 1e-9
        f.update(rng.normal(0.0, 3.0, f.g.n_states), bool(rng.integers(2)))
        assert abs(f.p.sum() - 1.0) < 1e-12
        assert np.all(f.p >= 0)


def test_standing_truck_without_measurements_does_not_move() -> None:
    # 3 m east of a T-junction whose only other ways are west and north: mass leaking through
    # the junction would pull the mean west and north
    f = route_filter(T_NORTH)
    for _ in range(5):
        f.update(peak_loglik(f, 23.0, 20.0), False)
        f.predict(1.0)
    x0, y0, _ = f.mean_cov()
    assert abs(x0 - 23.0) < 0.5 and abs(y0 - 20.0) < 0.5
    flat = np.zeros(f.g.n_states)
    for _ in range(60):
        f.predict(1.0)
        f.update(flat, False)
    x1, y1, _ = f.mean_cov()
    assert abs(x1 - x0) < 1.0 and abs(y1 - y0) < 1.0
    assert f.mean_speed_mps() < 0.5


def test_peaked_likelihood_pulls_the_mean_there() -> None:
    f = route_filter(CROSS)
    f.update(peak_loglik(f, 33.0, 20.0), None)
    x, y, c = f.mean_cov()
    assert abs(x - 33.0) < 1.0 and abs(y - 20.0) < 0.5
    assert np.trace(c) < 4.0


def test_follows_a_truck_at_two_cells_per_second() -> None:
    f = route_filter(STRAIGHT)
    errs = []
    for t in range(25):
        if t:
            f.predict(1.0)
        truth_x = 5.5 + 2.0 * t
        f.update(peak_loglik(f, truth_x, 0.0, 2.0), True)
        x, _, _ = f.mean_cov()
        errs.append(x - truth_x)
    assert abs(f.mean_speed_mps() - 2.0) < 0.4
    assert max(abs(e) for e in errs[10:]) < 1.5  # lag after a 10 s start


def test_mass_at_a_junction_splits_into_three_ways_out() -> None:
    f = route_filter(CROSS)
    # a truck heading east at 2 cells/s, 4 m before the junction
    s = np.where((np.cos(f.g.heading_rad) > 0.5)
                 & (np.abs(f.g.cx[f.g.state_cell] - 16.5) < 1e-9))[0]
    f.p[:] = 0.0
    f.p[2, s] = 1.0
    f.turn_p = 0.0
    f.escape_p = 0.0
    f.speed_t = np.eye(f.n_speeds)  # keep the speed: only the graph moves the mass
    for _ in range(4):
        f.predict(1.0)
    pc = f.cell_probabilities()
    east = pc[(f.g.cx > 20.5) & (np.abs(f.g.cy - 20.0) < 1e-9)].sum()
    north = pc[(f.g.cy > 20.5) & (np.abs(f.g.cx - 20.0) < 1e-9)].sum()
    south = pc[(f.g.cy < 19.5) & (np.abs(f.g.cx - 20.0) < 1e-9)].sum()
    west = pc[(f.g.cx < 19.5) & (np.abs(f.g.cy - 20.0) < 1e-9)].sum()
    np.testing.assert_allclose([east, north, south], 1.0 / 3.0, atol=1e-9)
    assert west < 1e-12


def test_follows_a_truck_turning_at_a_junction() -> None:
    # east along y = 20 at 1.5 m/s, then north at the junction: the mass must take the turn
    f = route_filter(T_NORTH)
    truth = [(5.0 + 1.5 * t, 20.0) for t in range(11)]
    truth += [(20.0, 20.0 + 1.5 * t) for t in range(1, 13)]
    errs = []
    for t, (tx, ty) in enumerate(truth):
        if t:
            f.predict(1.0)
        f.update(peak_loglik(f, tx, ty, 3.0), True)
        x, y, _ = f.mean_cov()
        errs.append(math.hypot(x - tx, y - ty))
    assert max(errs) < 1.5  # no lag at the turn (a stem not joined to the aisle: 7.5 m)
    pc = f.cell_probabilities()
    assert pc[f.g.cy > 21.0].sum() > 0.95  # on the north arm, not past the junction eastwards


def test_truck_crosses_a_gap_the_drawing_left(monkeypatch: pytest.MonkeyPatch) -> None:
    # the stem ends 3 m short of the main aisle: no junction joins them, yet the truck drives
    # from the stem onto the main aisle; gap hops let the filter follow within seconds
    gapped = (Aisle((0.0, 0.0), (40.0, 0.0), 3.0), Aisle((20.0, 3.0), (20.0, 30.0), 3.0))

    def seconds_to_cross() -> int:
        f = route_filter(gapped)
        for _ in range(10):
            f.update(peak_loglik(f, 20.0, 10.0, 4.0), True)
            f.predict(1.0)
        for s in range(1, 60):
            f.update(peak_loglik(f, 24.0, 0.0, 4.0), True)
            x, y, _ = f.mean_cov()
            if math.hypot(x - 24.0, y) < 2.0:
                return s
            f.predict(1.0)
        return 99

    assert seconds_to_cross() <= 6  # measured 4
    monkeypatch.setattr(route_filter_module, "GAP_HOP_P", 0.0)
    assert seconds_to_cross() > 30  # only the even escape mass: not within a minute


def _aisle_and_yard() -> RouteFilter:
    """A 40 m aisle along y = 0 ending at x = 40, and 60 m x 40 m of open ground east of its
    end (x > 42)."""
    gx, gy = np.meshgrid(np.arange(43.0, 100.0, 2.0), np.arange(-19.0, 20.0, 2.0))
    return route_filter((Aisle((0.0, 0.0), (40.0, 0.0), 3.0),), gx.ravel(), gy.ravel())


def test_mass_stays_normalised_with_open_ground() -> None:
    f = _aisle_and_yard()
    rng = np.random.default_rng(2)
    for _ in range(20):
        f.predict(1.0)
        assert abs(f.p.sum() - 1.0) < 1e-9
        f.update(rng.normal(0.0, 3.0, f.g.n_states), bool(rng.integers(2)))
        assert np.all(f.p >= 0)


def test_follows_a_truck_turning_on_open_ground_without_lag() -> None:
    # 3 m/s around a 15 m circle centred at (70, 0), fixes 1.5 m sharp: the ring model keeps
    # up (a random walk from the last place lagged 5-7 m behind a truck at 3.5 m/s in the yard)
    f = _aisle_and_yard()
    errs = []
    for t in range(60):
        if t:
            f.predict(1.0)
        a = 3.0 * t / 15.0
        tx, ty = 70.0 + 15.0 * math.cos(a), 15.0 * math.sin(a)
        f.update(peak_loglik(f, tx, ty, 1.5), True)
        x, y, _ = f.mean_cov()
        errs.append(math.hypot(x - tx, y - ty))
    assert float(np.sqrt(np.mean(np.square(errs[10:])))) < 1.5
    assert abs(f.mean_speed_mps() - 3.0) < 1.0


def test_truck_drives_off_the_aisle_onto_open_ground_and_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def worst(path: list[tuple[float, float]]) -> float:
        f = _aisle_and_yard()
        errs = []
        for t, (tx, ty) in enumerate(path):
            if t:
                f.predict(1.0)
            f.update(peak_loglik(f, tx, ty, 6.0), True)  # blunt, as RSSI indoors
            x, y, _ = f.mean_cov()
            errs.append(math.hypot(x - tx, y - ty))
        return max(errs)

    out = [(10.0 + 2.0 * t, 0.0) for t in range(16)]  # to the aisle's end (40, 0) ...
    out += [(40.0 + 2.0 * t, 2.0 * t) for t in range(1, 11)]  # ... then north-east across
    back = out[::-1]
    assert worst(out) < 12.0 and worst(back) < 8.0  # measured 10.8 and 5.9
    monkeypatch.setattr(route_filter_module, "OPEN_ENTER_P", 0.0)
    monkeypatch.setattr(route_filter_module, "OPEN_LEAVE_P", 0.0)
    # only the even escape mass gets across: 16.4 and 13.3
    assert worst(out) > 14.0 and worst(back) > 11.0


def test_open_ground_moves_only_the_cells_that_hold_mass() -> None:
    f = _aisle_and_yard()
    g = f.g
    rng = np.random.default_rng(4)
    na, nc = g.n_aisle_cells, g.n_cells
    p = 0.5 + rng.random(f.p.shape)  # every other cell well above the escape floor
    p[:, nc + na:] = 0.0  # (the filter keeps open mass on the forward states)
    p /= p.sum()
    tiny = na + 5  # one open cell at the escape floor in every bin
    p[:, tiny] = 1e-12
    # reference: every ring pair applied (RouteGraph.moves), the tiny cell's mass kept in place
    want = np.zeros_like(p)
    for k in range(1, f.n_speeds):
        src, dst, w = g.moves(k)
        sel = src != tiny
        want[k] += np.bincount(dst[sel], weights=p[k][src[sel]] * w[sel], minlength=g.n_states)
        want[k, tiny] += p[k, tiny]
    got = np.zeros_like(p)
    f._move_open(p, got)
    # _move_open adds the open cells' part only; the aisle part is the steps' bincount
    for k in range(1, f.n_speeds):
        src, dst, w = g.steps(k)
        got[k] += np.bincount(dst, weights=p[k][src] * w, minlength=g.n_states)
    np.testing.assert_allclose(got[1:], want[1:], rtol=1e-12, atol=1e-15)


def test_reseed_puts_mass_by_a_fix_on_the_outdoor_cells_only() -> None:
    f = _aisle_and_yard()
    for _ in range(5):  # a track held on the aisle, 60 m from the fix below
        f.update(peak_loglik(f, 10.0, 0.0), False)
        f.predict(1.0)
    assert f.outdoor_mass_near(70.0, 0.0, 2.0) < 1e-3
    assert f.reseed_outdoors(70.0, 0.0, 2.0, 0.01)
    assert 0.0099 < f.outdoor_mass_near(70.0, 0.0, 2.0) < 0.0111
    assert abs(float(f.p.sum()) - 1.0) < 1e-12
    seeded = f.cell_probabilities()
    far = np.hypot(f.g.cx - 70.0, f.g.cy) > 6.0
    assert float(seeded[far & f.g.is_open].sum()) < 1e-3  # only within 3 sigma
    # by the aisle, 33 m from open ground: no outdoor cell there, nothing seeded
    before = f.p.copy()
    assert not f.reseed_outdoors(10.0, 0.0, 2.0, 0.01)
    np.testing.assert_array_equal(f.p, before)
