"""A forward filter (HMM) on the aisle graph: where along the aisles, which way, how fast.

Where site.json gives the aisles, a truck is on them: its position has one degree of freedom
between junctions, and its motion is smooth along it. The state is (speed bin, directed cell):
each second the speed changes by at most one bin, the mass moves that many cells ahead (splitting
at junctions), a standing truck may turn round; then the likelihoods of the second's RSSI and
GNSS and the motion cue weigh it. Exact on the discretised state space: no particles, no
randomness, so a replay gives the same output every time.
"""

from __future__ import annotations

import numpy as np

from edge_agent.fusion.models import Array, IntArray
from edge_agent.fusion.route_graph import RouteGraph
from edge_agent.fusion.rssi_table import CellRssiModel

MAX_SPEED_MPS = 4.0
"""Speed bins are whole cells per second from standing up to this (plant limits: 3-3.5 m/s)."""
SPEED_KEEP_P = 0.6
"""Per second a moving truck keeps its speed bin with this probability, else goes one up or down
(0.7-1.2 m/s^2 of acceleration: one 1 m/s bin in about a second)."""
START_P = 0.1
"""A standing truck starts off within a given second with this probability ..."""
TURN_P = 0.05
"""... and turns round (reverses) with this one."""
ESCAPE_P = 1e-4
"""Mass spread evenly over all states each second: the filter can always find a lost truck."""
MAX_STEPS_PER_PREDICT = 30
"""A gap longer than this many seconds moves the mass no further (it is spread enough by then)."""
GAP_HOP_M = 5.0
GAP_HOP_P = 0.1
"""Where two aisles' cells lie within 5 m without their edges meeting (a drawing gap), a tenth
of the mass there crosses each second (a truck drives across; the plan just does not say)."""
RING_ACTIVE_FLOORS = 20.0
"""An open cell holding less than this many times the even escape mass a state gets each second
is not moved (its mass stays in place): with the truck in the hall that is nearly all of them."""
OPEN_ENTER_P = 0.005
"""Per second, the share of the mass on an aisle cell beside open ground that drives off onto
it (split over the open cells beside it) ..."""
OPEN_LEAVE_P = 0.1
"""... and the share of an open cell beside an aisle that drives onto it (hall-only plans, 4
scenarios x 2 seeds x 20 min, mean hall RMSE: entering at 0.5 / 2.5 / 10 % 7.01 / 7.15 / 7.35 m
(the last on an earlier ring); leaving at 10 / 2.5 % 7.10 / 7.18 m, docs/fusion.md)."""
CUE_MISMATCH = 0.15
"""Likelihood ratio of the motion cue (frame-to-frame fading) against the speed it contradicts."""


class RouteFilter:
    """P(speed bin, directed cell) as an (n_speeds, n_states) array, renormalised each second."""

    def __init__(self, graph: RouteGraph, model: CellRssiModel, *, keep_p: float = SPEED_KEEP_P,
                 start_p: float = START_P, turn_p: float = TURN_P, escape_p: float = ESCAPE_P,
                 cue_mismatch: float = CUE_MISMATCH, body_pattern_db: float = 0.0,
                 ex_m: Array | None = None, ey_m: Array | None = None) -> None:
        self.g = graph
        self.model = model
        self.n_speeds = max(2, round(MAX_SPEED_MPS / graph.cell_m) + 1)
        # The body pattern: mast and load shade the antenna from the front, so an emitter ahead
        # reads body/2 dB low and one behind body/2 dB high. Each directed state knows its
        # heading; the table is kept by (emitter, cell) for the forward states only: a backward
        # state heads the other way, so its shift is the forward one negated (cos(a - pi) =
        # -cos(a)), and one pass over the cells serves both directions.
        self._fwd_shift_t: Array | None = None
        if body_pattern_db > 0 and ex_m is not None and ey_m is not None:
            fwd = graph.heading_rad[:graph.n_cells]
            bearing = np.arctan2(ey_m[:, None] - graph.cy[None, :],
                                 ex_m[:, None] - graph.cx[None, :])
            self._fwd_shift_t = np.ascontiguousarray(  # (open cells: no heading, no shift)
                -0.5 * body_pattern_db * np.cos(bearing - fwd[None, :]) * ~graph.is_open,
                dtype=np.float32)
        self.turn_p = turn_p
        self.escape_p = escape_p
        self.cue_mismatch = cue_mismatch
        v = self.n_speeds
        t = np.zeros((v, v))
        t[0, 0] = 1.0 - start_p
        t[0, 1] = start_p
        for i in range(1, v):
            lo, hi = i - 1, min(i + 1, v - 1)
            t[i, i] = keep_p
            t[i, lo] += (1.0 - keep_p) / 2.0
            t[i, hi] += (1.0 - keep_p) / 2.0
        self.speed_t = t  # rows: from, columns: to
        self._moves = [graph.steps(k) for k in range(v)]
        # all moving bins' moves along the aisles as one gather and one bincount on the
        # flattened (speed, state)
        n = graph.n_states
        self._move_src = np.concatenate([k * n + self._moves[k][0] for k in range(1, v)])
        self._move_dst = np.concatenate([k * n + self._moves[k][1] for k in range(1, v)])
        self._move_w = np.concatenate([self._moves[k][2] for k in range(1, v)])
        # open ground's ring moves per moving bin, by source cell (local index, and each
        # source's first entry): applied only from the cells that hold mass (see predict)
        na = graph.n_aisle_cells
        self._ring_active = RING_ACTIVE_FLOORS * escape_p / (v * n)
        self._rings: list[tuple[IntArray, IntArray, Array, IntArray]] = []
        for k in range(1, v):
            rs, rd, rw = graph.ring(k)
            local = rs - na
            ptr = np.searchsorted(local, np.arange(graph.n_cells - na + 1)).astype(np.intp)
            self._rings.append((local, rd, rw, ptr))
        # hops, each weighted by its probability per second: drawing gaps, and off the aisles
        # onto open ground (both directions of the aisle cell to both of the open cell)
        hs, hd, hw = graph.gap_hops(GAP_HOP_M)
        link_a, link_o = graph.open_links()
        hw = hw * GAP_HOP_P
        if link_a.size:
            nc = graph.n_cells
            # each directed state of a linked aisle cell sends OPEN_ENTER_P, split over its
            # links, to the open cells' forward states; each open state OPEN_LEAVE_P, split over
            # its links and the aisle cell's two directions
            lw = OPEN_ENTER_P / np.bincount(link_a, minlength=nc)[link_a]
            ow = OPEN_LEAVE_P / np.bincount(link_o, minlength=nc)[link_o] / 2.0
            hs = np.concatenate([hs, link_a, link_a + nc,
                                 link_o, link_o, link_o + nc, link_o + nc])
            hd = np.concatenate([hd, link_o, link_o, link_a, link_a + nc, link_a, link_a + nc])
            hw = np.concatenate([hw, lw, lw, ow, ow, ow, ow])
        self._hop_src = np.concatenate([k * n + hs for k in range(v)])
        self._hop_dst = np.concatenate([k * n + hd for k in range(v)])
        self._hop_w = np.tile(hw, v)
        # the share of each state that hops away per second
        self._hop_keep = 1.0 - np.bincount(self._hop_src, weights=self._hop_w, minlength=v * n)
        # per cell, its centre rounded as mass_points hands it out (Python floats, built once)
        self._cx_out = [round(float(x), 2) for x in graph.cx]
        self._cy_out = [round(float(y), 2) for y in graph.cy]
        self._extent = graph.cell_size_m ** 2 / 12.0  # per cell: its own spread
        self._outdoor = ~np.asarray(model.indoor, dtype=bool)  # where a yard fix may reseed
        self.p = np.full((v, graph.n_states), 1.0 / (v * graph.n_states))
        self._version = 0  # bumped whenever predict, update or reset replace p
        self._pc_cache: tuple[int, int, Array] | None = None
        self.started = False

    def reset(self) -> None:
        self.p[:] = 1.0 / self.p.size
        self._version += 1
        self.started = False

    def predict(self, dt_s: float) -> None:
        """Advance by dt seconds: speeds change, the mass moves, standing trucks may turn."""
        n = self.g.n_states
        na, nc = self.g.n_aisle_cells, self.g.n_cells
        for _ in range(max(0, min(round(dt_s), MAX_STEPS_PER_PREDICT))):
            p = self.speed_t.T @ self.p
            if nc > na:  # an open cell's two directed states are one place: one moves for both
                p[:, na:nc] += p[:, nc + na:]
                p[:, nc + na:] = 0.0
            moved = np.asarray(np.bincount(self._move_dst, weights=p.reshape(-1)[self._move_src]
                                           * self._move_w, minlength=p.size), dtype=np.float64)
            moved[:n] = (1.0 - self.turn_p) * p[0] + self.turn_p * p[0][self.g.reverse]
            if nc > na:
                self._move_open(p, moved.reshape(p.shape))
            if self._hop_src.size:
                hop = np.bincount(self._hop_dst, weights=moved[self._hop_src] * self._hop_w,
                                  minlength=moved.size)
                moved *= self._hop_keep
                moved += hop
            p = moved.reshape(p.shape)
            p *= 1.0 - self.escape_p
            p += self.escape_p / p.size
            self.p = p
            self._version += 1

    def _move_open(self, p: Array, moved: Array) -> None:
        """Open ground's ring moves into `moved`, per moving bin, from the open cells holding
        more than RING_ACTIVE_FLOORS escape floors; the others keep their mass in place. With
        the truck in the hall that skips nearly all of the ~70 000 ring pairs a second."""
        na, nc = self.g.n_aisle_cells, self.g.n_cells
        for k, (local, dst, w, ptr) in enumerate(self._rings, start=1):
            m = p[k, na:nc]
            act = np.flatnonzero(m > self._ring_active)
            moved[k, na:nc] += m
            if not act.size:
                continue
            moved[k, na + act] -= m[act]
            starts = ptr[act]
            lens = ptr[act + 1] - starts
            ends = np.cumsum(lens)
            idx = np.repeat(starts - ends + lens, lens) + np.arange(int(ends[-1]))
            moved[k] += np.bincount(dst[idx], weights=m[local[idx]] * w[idx],
                                    minlength=moved.shape[1])

    def _outdoor_near(self, x_m: float, y_m: float, sigma_m: float) -> Array:
        """Gaussian weights (sigma) of the outdoor cells within 3 sigma of (x, y), else 0."""
        d2 = (self.g.cx - x_m) ** 2 + (self.g.cy - y_m) ** 2
        w: Array = np.where(self._outdoor & (d2 <= 9.0 * sigma_m * sigma_m),
                            np.exp(-0.5 * d2 / (sigma_m * sigma_m)), 0.0)
        return w

    def outdoor_mass_near(self, x_m: float, y_m: float, sigma_m: float) -> float:
        """The posterior's probability on the outdoor cells within 3 sigma of (x, y)."""
        return float(self.cell_probabilities()[self._outdoor_near(x_m, y_m, sigma_m) > 0].sum())

    def reseed_outdoors(self, x_m: float, y_m: float, sigma_m: float, share: float) -> bool:
        """Mix `share` of the mass into the outdoor cells around (x, y) (Gaussian weights of
        sigma, within 3 sigma), evenly over speeds and directions; False when no outdoor cell
        lies there."""
        w = self._outdoor_near(x_m, y_m, sigma_m)
        total = float(w.sum())
        if total <= 0.0:
            return False
        seed = (w / total)[self.g.state_cell] / 2.0  # both directed states of each cell
        self.p = (1.0 - share) * self.p + (share / self.n_speeds) * seed[None, :]
        self._version += 1
        return True

    def update(self, loglik: Array, moving: bool | None) -> None:
        """Weigh by a log-likelihood per directed state and the motion cue (None: no cue). A
        second whose likelihood is not finite everywhere (a NaN from bad input) is skipped."""
        peak = float(loglik.max())
        if not np.isfinite(peak) or not np.isfinite(loglik).all():
            return
        like = np.exp(loglik - peak)
        p = self.p * like[None, :]
        if moving is not None:  # the cue weighs down the speeds it contradicts
            p[0 if moving else slice(1, None)] *= self.cue_mismatch
        s = float(p.sum())
        if not np.isfinite(s) or s <= 1e-300:
            p = np.repeat(like[None, :], self.n_speeds, axis=0).astype(np.float64)
            s = float(p.sum())
        p /= s
        self.p = p
        self._version += 1
        self.started = True

    def rssi_loglik(self, idx: IntArray, z_dbm: Array, missed: IntArray) -> Array:
        """Per directed state (forward states, then backward: the body pattern depends on the
        heading)."""
        if self._fwd_shift_t is None:
            out: Array = self.model.rssi_loglik(slice(None), idx, z_dbm, missed)[
                self.g.state_cell]
            return out
        out = self.model.rssi_loglik_two_ways(idx, z_dbm, missed, self._fwd_shift_t).reshape(-1)
        return out

    def gnss_loglik(self, x_m: float, y_m: float, sigma_m: float, by_door: bool = True
                    ) -> Array:
        """Per directed state (by_door: see CellRssiModel.gnss_loglik)."""
        out: Array = self.model.gnss_loglik(x_m, y_m, sigma_m, by_door)[self.g.state_cell]
        return out

    def cell_probabilities(self) -> Array:
        """P(cell), both directions and all speeds; cached until predict/update/reset (edit p
        in place only through them, or call this after one of them)."""
        c = self._pc_cache
        if c is not None and c[0] == self._version and c[1] == id(self.p):
            return c[2]
        out: Array = np.bincount(self.g.state_cell, weights=self.p.sum(axis=0),
                                 minlength=self.g.n_cells).astype(np.float64)
        self._pc_cache = (self._version, id(self.p), out)
        return out

    def mean_cov(self) -> tuple[float, float, Array]:
        """Posterior mean position and its covariance (with the cell's own extent)."""
        pc = self.cell_probabilities()
        cx, cy = self.g.cx, self.g.cy
        mx = float(pc @ cx)
        my = float(pc @ cy)
        dx = cx - mx
        dy = cy - my
        pdx = pc * dx
        sxy = float(pdx @ dy)
        extent = float(pc @ self._extent)
        c = np.array([[float(pdx @ dx) + extent, sxy], [sxy, float((pc * dy) @ dy) + extent]])
        return mx, my, c

    def mass_points(self, cover: float, max_points: int
                    ) -> tuple[tuple[float, float, float], ...]:
        """The heaviest cells until `cover` of the probability is reached, renormalised: where
        the truck may be, for the heatmap's dwell; empty when max_points cells do not reach it
        (a broad posterior: the heatmap then spreads the mean and covariance)."""
        pc = self.cell_probabilities()
        top = np.argpartition(pc, -max_points)[-max_points:] if pc.size > max_points \
            else np.arange(pc.size)
        top = top[np.argsort(pc[top])[::-1]]
        reach = np.searchsorted(np.cumsum(pc[top]), cover * float(pc.sum()))
        if reach >= top.size:
            return ()
        keep = top[:reach + 1]
        w = pc[keep] / pc[keep].sum()
        cx, cy = self._cx_out, self._cy_out
        return tuple((cx[i], cy[i], wi) for i, wi in zip(keep.tolist(), w.tolist(), strict=True))

    def mean_speed_mps(self) -> float:
        """Expected speed: speed bins are cells per second, and cells are as long as their edge
        divided evenly (1.0-1.25 m with 1 m cells)."""
        cells_per_s = np.arange(self.n_speeds, dtype=np.float64) @ self.p  # per state
        return float(cells_per_s @ self.g.cell_len_m)
