"""CellRssiModel: the fast two-way RSSI log-likelihood (float32, chunked, whole tables or gathered
rows) against the generic."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.fusion import rssi_table
from edge_agent.fusion.doors import Door, WallModel
from edge_agent.fusion.models import Array, IntArray
from edge_agent.fusion.rssi_table import CellRssiModel


def _model(rng: np.random.Generator, n_cells: int, k: int) -> CellRssiModel:
    cx = rng.uniform(0.0, 80.0, n_cells)
    cy = rng.uniform(0.0, 60.0, n_cells)
    indoor = np.array(cy < 45.0, dtype=bool)
    ex = rng.uniform(0.0, 80.0, k)
    ey = rng.uniform(0.0, 60.0, k)
    e_indoor = np.array(ey < 45.0, dtype=bool)
    dz = rng.uniform(1.0, 4.0, k)
    m = CellRssiModel(cx, cy, indoor, 1.0, 80.0 * 60.0, ex, ey, dz,
                      rng.uniform(-50.0, -35.0, k), rng.uniform(1.8, 3.2, k),
                      WallModel(ex, ey, dz, e_indoor, 2.0))
    m.set_calibration(rng.normal(0.0, 6.0, k), 8.0, rng.uniform(2.0, 6.0, k),
                      rng.normal(0.0, 0.2, k), -92.0, 4.0)
    return m


def _second(rng: np.random.Generator, m: CellRssiModel, n_heard: int
            ) -> tuple[IntArray, Array, IntArray, Array]:
    k = m.pred_dbm.shape[1]
    order = rng.permutation(k).astype(np.intp)
    idx, missed = order[:n_heard], np.sort(order[n_heard:])
    # RSSI around one cell's prediction, with some residuals far beyond the robust clip
    z = m.pred_dbm[int(rng.integers(m.cx.size)), idx] + rng.normal(0.0, 4.0, n_heard)
    z[rng.random(n_heard) < 0.2] += 30.0
    shift_t = rng.normal(0.0, 3.0, (k, m.cx.size))  # emitter x cell
    return idx, z, missed, shift_t


@pytest.mark.parametrize(("seed", "n_cells", "k", "n_heard"),
                         [(0, 300, 12, 8), (1, 12000, 40, 30), (2, 9000, 25, 25), (3, 500, 10, 1),
                          (4, 20000, 30, 10)])
def test_two_ways_equals_the_generic_loglik_shifted_both_ways(seed: int, n_cells: int, k: int,
                                                              n_heard: int) -> None:
    rng = np.random.default_rng(seed)
    m = _model(rng, n_cells, k)
    # 9000+ cells: more emitters than one chunk holds, the chunked loop runs; n_heard < k / 2:
    # the heard rows are gathered, else the whole tables are taken
    rows = k if 2 * n_heard >= k else n_heard
    chunks = -(-rows // max(1, rssi_table.SCRATCH_BYTES // (12 * n_cells)))
    assert chunks >= (3 if n_cells >= 9000 else 1)
    for _ in range(3):
        idx, z, missed, shift_t = _second(rng, m, n_heard)
        fwd, back = m.rssi_loglik_two_ways(idx, z, missed, shift_t)
        shift = shift_t[idx]
        want_fwd = m.rssi_loglik(slice(None), idx, z, missed, None, shift.T)
        want_back = m.rssi_loglik(slice(None), idx, z, missed, None, -shift.T)
        np.testing.assert_allclose(fwd, want_fwd, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(back, want_back, rtol=1e-6, atol=1e-4)
        # the two directions really differ: a sign mix-up would not pass the checks above
        assert np.max(np.abs(want_fwd - want_back)) > 1.0


def test_two_ways_tables_are_cached_until_the_next_calibration() -> None:
    rng = np.random.default_rng(7)
    m = _model(rng, 400, 12)
    idx, z, missed, shift_t = _second(rng, m, 9)
    first = m.rssi_loglik_two_ways(idx, z, missed, shift_t)
    np.testing.assert_array_equal(m.rssi_loglik_two_ways(idx, z, missed, shift_t), first)
    m.set_calibration(np.full(12, 5.0), 8.0, np.full(12, 4.0), None, -92.0, 4.0)
    second = m.rssi_loglik_two_ways(idx, z, missed, shift_t)  # the same shift array: rebuilt
    want = m.rssi_loglik(slice(None), idx, z, missed, None, shift_t[idx].T)
    np.testing.assert_allclose(second[0], want, rtol=1e-6, atol=1e-4)
    assert np.max(np.abs(second - first)) > 1.0


def test_a_non_finite_row_of_an_unheard_emitter_spoils_nothing() -> None:
    rng = np.random.default_rng(8)
    m = _model(rng, 400, 12)
    idx, z, missed, shift_t = _second(rng, m, 9)
    keep = idx != 3
    idx, z = idx[keep], z[keep]
    missed = missed[missed != 3]
    good = m.rssi_loglik_two_ways(idx, z, missed, shift_t)
    m.pred_dbm[:, 3] = np.nan  # emitter 3: neither heard nor missed
    m._by_emitter = None
    out = m.rssi_loglik_two_ways(idx, z, missed, shift_t)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, good, rtol=1e-6, atol=1e-4)


def test_two_ways_with_nothing_heard_is_the_misses_alone() -> None:
    rng = np.random.default_rng(5)
    m = _model(rng, 400, 9)
    idx = np.zeros(0, dtype=np.intp)
    missed = np.arange(9, dtype=np.intp)
    fwd, back = m.rssi_loglik_two_ways(idx, np.zeros(0), missed, np.zeros((9, 400)))
    want = m.rssi_loglik(slice(None), idx, np.zeros(0), missed)
    # the miss terms are summed in float32 (a matvec over the whole table)
    np.testing.assert_allclose(fwd, want, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(back, want, rtol=1e-6, atol=1e-5)
    assert np.ptp(want) > 0.1  # misses say something about the place


def test_generic_loglik_on_a_subset_of_cells_matches_the_full_one() -> None:
    rng = np.random.default_rng(6)
    m = _model(rng, 600, 15)
    idx, z, missed, shift_t = _second(rng, m, 10)
    shift = shift_t[idx]
    cells = rng.choice(600, 50, replace=False).astype(np.intp)
    full = m.rssi_loglik(slice(None), idx, z, missed, None, shift.T)
    part = m.rssi_loglik(cells, idx, z, missed, None, shift.T[cells])
    np.testing.assert_allclose(part, full[cells], rtol=1e-12)


def test_indoor_cells_by_a_door_take_gnss_and_a_gated_fix_does_not_reach_them() -> None:
    # a corridor of cells along x = 30 from deep in the hall (y 20) out into the yard (y 70);
    # the wall at y = 60 with a door at x = 30
    cy = np.arange(20.5, 70.0, 1.0)
    cx = np.full(cy.size, 30.0)
    indoor = np.array(cy < 60.0, dtype=bool)
    one = np.ones(1)
    walls = WallModel(10.0 * one, 10.0 * one, 4.0 * one, np.array([True]), 2.0,
                      (Door(30.0, 60.0, 2.0),))
    m = CellRssiModel(cx, cy, indoor, 1.0, 2000.0, 10.0 * one, 10.0 * one, 4.0 * one,
                      -40.0 * one, 2.5 * one, walls)
    by_door = cy == 58.5  # 1.5 m inside: within the opening's half width, depth 0
    deep = cy == 30.5
    plain = m.gnss_loglik(30.0, 58.5, 3.0)
    assert plain[by_door][0] - plain[deep][0] < 0.5  # indoors nearly flat (15 m, 28 m away)
    m.door_gnss_sigma_per_m = 5.0
    sharp = m.gnss_loglik(30.0, 58.5, 3.0)
    assert sharp[by_door][0] - sharp[deep][0] > 3.0  # by the door it places the truck
    assert np.array_equal(m.gnss_loglik(30.0, 58.5, 3.0, by_door=False), plain)
    # outdoor cells are unchanged
    assert np.array_equal(sharp[~indoor], plain[~indoor])
