"""RSSI and GNSS likelihoods at a fixed set of candidate positions, from precomputed tables.

The 2-D grids and the aisle (route) filter evaluate the same models at their own cell centres:
log-distance path loss with the learnt offsets, exponent corrections and wall loss, a robust
(clipped) residual, non-detections, and a GNSS fix that is sharp outdoors and nearly flat indoors.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from edge_agent.fusion.doors import WallModel
from edge_agent.fusion.models import LN10, MIN_DISTANCE_M, Array, IntArray, norm_cdf

ROBUST_CLIP_SIGMA2 = 9.0
"""Residuals beyond 3 sigma count as 3 sigma: a moved AP or a body in the way cannot veto a cell."""
MISS_FLOOR_P = 0.5
"""Probability that an emitter in range is missed for a whole second anyway (channel hopping,
collisions): non-detections only veto cells where the emitter would be far above the floor."""
GNSS_OUTLIER_P = 0.05
"""Share of outdoor GNSS fixes that may be wild (multipath near the building)."""
INDOOR_GNSS_FIT_P = 0.3
"""Indoors a fix is mostly noise: 30 % of fixes within INDOOR_GNSS_SIGMA_M, the rest anywhere."""
INDOOR_GNSS_SIGMA_M = 15.0
DOOR_GNSS_DECAY_M = 4.0
MAX_OFFSET_DB = 10.0
"""A radio more than 10 dB off its survey is a survey error to fix, not something to learn: the
calibration is bounded by it and the tables never trust more (a lost track must not corrupt
them)."""
SCRATCH_BYTES = 1_000_000
"""The two-way RSSI loglik's kept temporaries stay below this (in L2): a site with more
cells x heard emitters is taken in chunks of emitters."""
F32Array = NDArray[np.float32]
CELL_SMEAR = 0.3
"""RSSI varies within a cell: its spread is about 0.3 cell x the slope of the path loss."""


class CellRssiModel:
    """Per cell and emitter: predicted RSSI, its inverse variance and log P(missed a second)."""

    def __init__(self, cx_m: Array, cy_m: Array, indoor: Array, cell_m: float | Array,
                 area_m2: float,
                 ex_m: Array, ey_m: Array, dz_m: Array, p1m_dbm: Array, n: Array,
                 walls: WallModel, door_gnss_sigma_per_m: float = 0.0) -> None:
        """cell_m: the cells' side, one for all or one per cell; door_gnss_sigma_per_m > 0:
        indoor cells by a door take GNSS (see gnss_loglik)."""
        self.cx = cx_m
        self.cy = cy_m
        self.indoor = indoor
        self.cell_m: Array = np.broadcast_to(np.asarray(cell_m, dtype=np.float64), cx_m.shape)
        self.area_m2 = area_m2  # what a GNSS outlier is spread over
        d = np.sqrt((cx_m[:, None] - ex_m[None, :]) ** 2
                    + (cy_m[:, None] - ey_m[None, :]) ** 2 + dz_m[None, :] ** 2)
        d = np.maximum(d, MIN_DISTANCE_M)
        self.log10_d = np.log10(d)
        self.nominal_dbm = p1m_dbm[None, :] - 10.0 * n[None, :] * self.log10_d  # (M, K)
        self.wall = walls.share(cx_m, cy_m, indoor)  # (M, K): 0 / through a door / 1
        self.door_depth_m = np.where(indoor, walls.door_distance_m(cx_m, cy_m), np.inf)
        self.door_gnss_sigma_per_m = door_gnss_sigma_per_m
        self.slope_db_per_m = 10.0 * n[None, :] / LN10 / d  # |d rssi / d r|, for cell smearing
        self.common_inv_var: Array | None = None
        self._scratch_bufs: tuple[F32Array, F32Array] | None = None
        self.set_calibration(np.zeros(len(ex_m)), 0.0, np.full(len(ex_m), 5.0), None, -95.0, 5.0)

    def set_calibration(self, offsets_db: Array, wall_loss_db: float, sigma_db: Array,
                        exponent_delta: Array | None, floor_dbm: Array | float,
                        miss_sigma_db: float,
                        common_var_db2: Array | None = None) -> None:
        """Precompute per cell and emitter the predicted RSSI, its variance and log P(missed).

        Offsets and the wall loss change slowly, so the tracker refreshes these tables now and
        then instead of evaluating the model (and an erf) for every cell every second.
        """
        self.pred_dbm = self.nominal_dbm + np.clip(offsets_db, -MAX_OFFSET_DB, MAX_OFFSET_DB)[
            None, :] - wall_loss_db * self.wall
        if exponent_delta is not None:
            self.pred_dbm -= 10.0 * exponent_delta[None, :] * self.log10_d
        self.inv_var = 1.0 / (sigma_db[None, :] ** 2
                              + (CELL_SMEAR * self.cell_m[:, None] * self.slope_db_per_m) ** 2)
        self.half_log_var = -0.5 * np.log(self.inv_var)
        self.common_inv_var = (1.0 / np.maximum(common_var_db2, 1e-6)
                               if common_var_db2 is not None else None)
        p_heard = norm_cdf((self.pred_dbm - floor_dbm) / miss_sigma_db)
        self.log_miss = np.log(MISS_FLOOR_P + (1.0 - MISS_FLOOR_P) * (1.0 - p_heard))
        self._by_emitter: tuple[Array, F32Array, F32Array, F32Array, F32Array] | None = None

    def _scaled_tables(self, fwd_shift_t: Array
                       ) -> tuple[F32Array, F32Array, F32Array, F32Array]:
        """Built once per calibration, by emitter (rows) and cell, float32 (1e-5 dB is far below
        any RSSI noise): s = sqrt(inv_var), the prediction and the body shift times s, so a
        clipped squared residual is (z s - p s -+ b s)^2 with no variance pass per second; and
        the half-log-variance and -log-miss rows, summed by one matvec."""
        tables = self._by_emitter
        if tables is None or tables[0] is not fwd_shift_t:
            scale: F32Array = np.ascontiguousarray(np.sqrt(self.inv_var.T), dtype=np.float32)
            k = scale.shape[0]
            terms: F32Array = np.empty((2 * k, scale.shape[1]), dtype=np.float32)
            terms[:k] = self.half_log_var.T
            np.negative(self.log_miss.T, out=terms[k:])
            pred_s: F32Array = np.multiply(self.pred_dbm.T, scale, dtype=np.float32, order="C")
            shift_s: F32Array = np.multiply(fwd_shift_t, scale, dtype=np.float32, order="C")
            for t in (scale, terms, pred_s, shift_s):  # unheard rows are read with weight 0:
                np.nan_to_num(t, copy=False, nan=0.0, posinf=0.0, neginf=0.0)  # 0 x NaN is NaN
            tables = self._by_emitter = (fwd_shift_t, scale, pred_s, shift_s, terms)
        return tables[1:]

    def _scratch(self, rows: int, n_cells: int) -> tuple[F32Array, F32Array]:
        """The two-way loglik's temporaries, kept between seconds: fresh ones this large are
        mmapped by the allocator at each call, and the page faults cost more than the
        arithmetic."""
        buf = self._scratch_bufs
        if buf is None or buf[0].shape[0] < rows or buf[0].shape[1] != n_cells:
            buf = self._scratch_bufs = (np.empty((rows, n_cells), dtype=np.float32),
                                        np.empty((2, rows, n_cells), dtype=np.float32))
        return buf

    def rssi_loglik_two_ways(self, idx: IntArray, z_dbm: Array, missed: IntArray,
                             fwd_shift_t: Array) -> Array:
        """Log-likelihood at every cell with the predictions shifted by +fwd_shift_t and by
        -fwd_shift_t (emitter x cell: the body pattern heading one way along the aisle, then the
        other), as one (2, cells) array. When half the emitters or more are heard, the whole
        tables are used with the unheard ones weighted 0: no gathers; the shift-free terms are
        one matvec. The tables are cold in cache each second, so bytes read count most
        (dense_ble, 40 of 52 heard: 172 -> 126 us a second in a replay). `idx` and `missed` hold
        each emitter once (the tracker's flatnonzero); `fwd_shift_t` is the caller's fixed table:
        the scaled tables are cached on its identity until the next set_calibration, so it must
        not be changed in place."""
        scale_t, pred_s_t, shift_s_t, terms_t = self._scaled_tables(fwd_shift_t)
        k, n_cells = scale_t.shape
        w = np.zeros(2 * k, dtype=np.float32)
        w[idx] = 2.0
        w[k + missed] = 2.0
        total = np.empty((2, n_cells))
        total[:] = w @ terms_t
        if idx.size:
            if 2 * idx.size >= k:
                rows: IntArray | None = None
                zk = np.zeros((k, 1), dtype=np.float32)
                zk[idx, 0] = z_dbm
                heard = np.zeros(k, dtype=np.float32)
                heard[idx] = 1.0
            else:
                rows = idx
                zk = z_dbm.astype(np.float32)[:, None]
                heard = np.ones(idx.size, dtype=np.float32)
            n_rows = k if rows is None else rows.size
            step = max(1, SCRATCH_BYTES // (12 * n_cells))
            res_buf, r2_buf = self._scratch(min(step, n_rows), n_cells)
            for i in range(0, n_rows, step):
                part = slice(i, i + step)
                sel = part if rows is None else rows[part]
                n = min(step, n_rows - i)
                res = np.multiply(zk[part], scale_t[sel], out=res_buf[:n])
                res -= pred_s_t[sel]
                r2 = r2_buf[:, :n]
                np.subtract(res, shift_s_t[sel], out=r2[0])
                np.add(res, shift_s_t[sel], out=r2[1])
                np.square(r2, out=r2)
                np.minimum(r2, np.float32(ROBUST_CLIP_SIGMA2), out=r2)
                total += heard[part] @ r2
        total *= -0.5
        return total

    def rssi_loglik(self, cells: slice | IntArray, idx: IntArray, z_dbm: Array,
                    missed: IntArray, kinds: IntArray | None = None,
                    shift_db: Array | None = None) -> Array:
        """Log-likelihood of one second's RSSI (heard emitters idx with mean z, missed ones)
        at the given cells; `shift_db` (cells x heard) is added to the predictions (the body
        pattern, which depends on the heading as well as the place)."""
        n_cells = self.cx.shape[0] if isinstance(cells, slice) else cells.shape[0]
        ll = np.zeros(n_cells)
        k = self.pred_dbm.shape[1]
        rows = (np.arange(n_cells) if isinstance(cells, slice) else cells) * k
        if idx.size:
            fi = rows[:, None] + idx[None, :]
            res = z_dbm[None, :] - self.pred_dbm.reshape(-1)[fi]
            if shift_db is not None:
                res -= shift_db
            w = self.inv_var.reshape(-1)[fi]
            if self.common_inv_var is not None and kinds is not None:
                # A shift common to all emitters of one kind is not evidence about the place:
                # profile it out per cell (shrunk to the offsets learnt so far).
                for kd in np.unique(kinds):
                    cols = kinds == kd
                    rw = res[:, cols] * w[:, cols]
                    c = rw.sum(axis=1) / (w[:, cols].sum(axis=1) + self.common_inv_var[kd])
                    res[:, cols] -= c[:, None]
            r2 = res * res * w
            np.minimum(r2, ROBUST_CLIP_SIGMA2, out=r2)
            r2 *= 0.5
            r2 += self.half_log_var.reshape(-1)[fi]
            ll -= r2.sum(axis=1)
        if missed.size:
            ll += self.log_miss.reshape(-1)[rows[:, None] + missed[None, :]].sum(axis=1)
        return ll

    def gnss_loglik(self, x_m: float, y_m: float, sigma_m: float, by_door: bool = True
                    ) -> Array:
        """A fix is a sharp likelihood around outdoor cells but nearly flat over indoor ones:
        indoors the receiver reports confident fixes that can be 30 m off. With
        door_gnss_sigma_per_m set and `by_door`, indoor cells by a door take it nearly as
        outdoor ones (the caller passes by_door=False for a fix that fails its gate)."""
        var = sigma_m ** 2 + self.cell_m ** 2 / 12.0
        d2 = (self.cx - x_m) ** 2 + (self.cy - y_m) ** 2
        sharp = np.exp(-0.5 * d2 / var) / (2.0 * math.pi * var)
        var_in = var + INDOOR_GNSS_SIGMA_M ** 2
        broad = np.exp(-0.5 * d2 / var_in) / (2.0 * math.pi * var_in)
        inside = INDOOR_GNSS_FIT_P * broad + (1.0 - INDOOR_GNSS_FIT_P) / self.area_m2
        if self.door_gnss_sigma_per_m > 0 and by_door:
            # Just inside a door the receiver still sees sky through the opening: its fixes
            # follow the truck, blunter the deeper it is (else a fix by the door always favours
            # the yard cells, whose model is the sharper one).
            depth = self.door_depth_m
            var_d = var + (self.door_gnss_sigma_per_m * depth) ** 2
            near = np.exp(-0.5 * d2 / var_d) / (2.0 * math.pi * var_d)
            w = np.exp(-depth / DOOR_GNSS_DECAY_M)
            inside = w * ((1.0 - GNSS_OUTLIER_P) * near + GNSS_OUTLIER_P / self.area_m2) + (
                1.0 - w) * inside
        like = np.where(self.indoor, inside,
                        (1.0 - GNSS_OUTLIER_P) * sharp + GNSS_OUTLIER_P / self.area_m2)
        out: Array = np.log(like)
        return out
