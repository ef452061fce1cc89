"""RSSI and GNSS likelihoods at a fixed set of candidate positions, from precomputed tables.

The 2-D grids and the aisle (route) filter evaluate the same models at their own cell centres:
log-distance path loss with the learnt offsets, exponent corrections and wall loss, a robust
(clipped) residual, non-detections, and a GNSS fix that is sharp outdoors and nearly flat indoors.
"""

from __future__ import annotations

import math

import numpy as np

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
CHUNK_BYTES = 100_000
"""Temporaries of the two-way RSSI loglik stay below this: larger ones are mmapped afresh by the
allocator each call, and the page faults cost more than the arithmetic."""
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
        self._by_emitter: tuple[Array, Array, Array, Array] | None = None

    def _tables_by_emitter(self) -> tuple[Array, Array, Array, Array]:
        """The tables transposed to (emitter, cell), built once per calibration: gathering the
        heard emitters' rows is then a few contiguous copies instead of a fancy index. The
        residual tables are float32 (1e-5 dB is far below any RSSI noise; half the memory
        traffic)."""
        if self._by_emitter is None:
            self._by_emitter = (np.ascontiguousarray(self.pred_dbm.T, dtype=np.float32),
                                np.ascontiguousarray(self.inv_var.T, dtype=np.float32),
                                np.ascontiguousarray(self.half_log_var.T),
                                np.ascontiguousarray(self.log_miss.T))
        return self._by_emitter

    def rssi_loglik_two_ways(self, idx: IntArray, z_dbm: Array, missed: IntArray,
                             shift_db: Array) -> tuple[Array, Array]:
        """Log-likelihood at every cell with the predictions shifted by +shift_db and by
        -shift_db (shift_db: heard emitter x cell; the body pattern heading one way along the
        aisle, then the other); one gather serves both, the shift-free terms are summed once."""
        pred_t, inv_var_t, half_log_var_t, log_miss_t = self._tables_by_emitter()
        n_cells = pred_t.shape[1]
        base = np.zeros(n_cells)
        if missed.size:
            base -= 2.0 * log_miss_t[missed].sum(axis=0)
        if not idx.size:
            base *= -0.5
            return base, base.copy()
        base += 2.0 * half_log_var_t[idx].sum(axis=0)
        fwd = base.copy()
        back = base
        z32 = z_dbm.astype(np.float32)
        shift32 = shift_db.astype(np.float32, copy=False)
        rows = max(1, CHUNK_BYTES // (4 * n_cells))
        for i in range(0, idx.size, rows):
            ii = idx[i:i + rows]
            res = pred_t[ii]
            np.subtract(z32[i:i + rows, None], res, out=res)  # the unshifted residual
            w = inv_var_t[ii]
            b = shift32[i:i + rows]
            ones = np.ones(ii.size, dtype=np.float32)  # a BLAS matvec sums faster than .sum
            for out, op in ((fwd, np.subtract), (back, np.add)):
                r2 = op(res, b)
                r2 *= r2
                r2 *= w
                np.minimum(r2, np.float32(ROBUST_CLIP_SIGMA2), out=r2)
                out += ones @ r2
        fwd *= -0.5
        back *= -0.5
        return fwd, back

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
