"""A coarse point-mass (grid) filter over the whole site: the multi-hypothesis stage.

The EKF is precise but unimodal: at the hall/yard wall the wall's loss makes two places fit the
same signals and a Gaussian stays on the wrong one. This grid keeps every hypothesis (robust
likelihoods, non-detections, GNSS with a heavy tail), seeds the EKF and pulls it back when the EKF
sits where the grid sees almost no probability.
"""

from __future__ import annotations

import math

import numpy as np

from edge_agent.fusion.aisle_coverage import segment_distance_m
from edge_agent.fusion.doors import WallModel
from edge_agent.fusion.models import Array, IntArray
from edge_agent.fusion.rssi_table import CellRssiModel
from edge_agent.site import Site

MIN_LOG_P = -60.0
"""Cells are floored at this log-probability relative to the best, so a hypothesis can come back."""


class GridFilter:
    """Log-probability per cell centre; predict = diffusion, update = product of likelihoods."""

    def __init__(self, site: Site, cell_m: float, ex_m: Array, ey_m: Array, dz_m: Array,
                 p1m_dbm: Array, n: Array, walls: WallModel,
                 aisle_off_penalty: float = 0.0, max_cells: int = 12_000) -> None:
        b = site.bounds
        self.bounds = b
        # A huge site (or bounds drawn around a whole town) must not cost gigabytes: coarser
        # cells keep the tables (cells x emitters x 4 floats) within a few tens of MB.
        area = (b.xmax - b.xmin) * (b.ymax - b.ymin)
        cell_m = max(cell_m, math.sqrt(area / max_cells))
        self.cell_m = cell_m
        self.nx = max(1, math.ceil((b.xmax - b.xmin) / cell_m))
        self.ny = max(1, math.ceil((b.ymax - b.ymin) / cell_m))
        xs = b.xmin + (np.arange(self.nx) + 0.5) * (b.xmax - b.xmin) / self.nx
        ys = b.ymin + (np.arange(self.ny) + 0.5) * (b.ymax - b.ymin) / self.ny
        gx, gy = np.meshgrid(xs, ys)  # (ny, nx)
        self.cx = gx.ravel()
        self.cy = gy.ravel()
        self.indoor = np.array([site.is_indoor(float(x), float(y))
                                for x, y in zip(self.cx, self.cy, strict=True)], dtype=bool)
        self.model = CellRssiModel(self.cx, self.cy, self.indoor, cell_m,
                                   float(self.cx.shape[0]) * cell_m ** 2, ex_m, ey_m, dz_m,
                                   p1m_dbm, n, walls)
        self.aisle_logprior = np.zeros(self.cx.shape[0])
        if site.aisles and aisle_off_penalty > 0:
            on = np.zeros(self.cx.shape[0], dtype=bool)
            slack = cell_m / math.sqrt(2.0)  # a cell counts if any of it touches the aisle
            for a in site.aisles:
                on |= segment_distance_m(self.cx, self.cy, a) <= a.width_m / 2 + slack
            self.aisle_logprior = np.where(on, 0.0, -aisle_off_penalty)
        self.logp = np.zeros(self.cx.shape[0])
        self.last_ll = np.zeros(self.cx.shape[0])
        self._kernels: dict[float, tuple[Array, Array]] = {}

    def reset(self) -> None:
        self.logp[:] = 0.0

    def predict(self, spread_m: float) -> None:
        """Diffuse the probability by a Gaussian of `spread_m`: P <- Ky P Kx' on the 2-D grid."""
        s = spread_m / self.cell_m
        if s <= 1e-3:
            return
        key = round(s, 3)
        kk = self._kernels.get(key)
        if kk is None:
            kk = (_blur_matrix(self.ny, s), _blur_matrix(self.nx, s))
            self._kernels[key] = kk
        p = np.exp(self.logp - self.logp.max()).reshape(self.ny, self.nx)
        p = kk[0] @ p @ kk[1].T
        self.logp = np.log(np.maximum(p.ravel(), 1e-300)) + self.aisle_logprior
        self._floor()

    def set_calibration(self, offsets_db: Array, wall_loss_db: float, sigma_db: Array,
                        exponent_delta: Array | None, floor_dbm: Array | float,
                        miss_sigma_db: float,
                        common_var_db2: Array | None = None) -> None:
        """Refresh the model's tables (see `CellRssiModel.set_calibration`)."""
        self.model.set_calibration(offsets_db, wall_loss_db, sigma_db, exponent_delta,
                                   floor_dbm, miss_sigma_db, common_var_db2)

    def update_rssi(self, idx: IntArray, z_dbm: Array, missed: IntArray,
                    kinds: IntArray | None = None, weight: float = 1.0) -> None:
        """Heard emitters (indices idx, mean RSSI z) and missed ones (indices `missed`), with the
        tables of the last `set_calibration`; `weight` < 1 when the second repeats earlier
        shadowing (standing still)."""
        ll = self._loglik(slice(None), idx, z_dbm, missed, kinds)
        self.last_ll = ll
        self.logp += ll * weight
        self._floor()

    def _loglik(self, cells: slice | IntArray, idx: IntArray, z_dbm: Array, missed: IntArray,
                kinds: IntArray | None) -> Array:
        return self.model.rssi_loglik(cells, idx, z_dbm, missed, kinds)

    def window(self, x_m: float, y_m: float, radius_m: float) -> IntArray:
        """Indices of the cells within radius of (x, y), from the grid's bounding box."""
        b = self.bounds
        sx = (b.xmax - b.xmin) / self.nx
        sy = (b.ymax - b.ymin) / self.ny
        i0 = max(0, int((x_m - radius_m - b.xmin) / sx))
        i1 = min(self.nx, int((x_m + radius_m - b.xmin) / sx) + 1)
        j0 = max(0, int((y_m - radius_m - b.ymin) / sy))
        j1 = min(self.ny, int((y_m + radius_m - b.ymin) / sy) + 1)
        if i0 >= i1 or j0 >= j1:
            return np.zeros(0, dtype=np.intp)
        jj, ii = np.meshgrid(np.arange(j0, j1), np.arange(i0, i1), indexing="ij")
        cells = (jj * self.nx + ii).ravel()
        near = (self.cx[cells] - x_m) ** 2 + (self.cy[cells] - y_m) ** 2 <= radius_m ** 2
        out: IntArray = cells[near]
        return out

    def local_fix(self, x_m: float, y_m: float, radius_m: float, idx: IntArray, z_dbm: Array,
                  missed: IntArray, kinds: IntArray | None = None
                  ) -> tuple[float, float, Array] | None:
        """This second's RSSI likelihood alone, over the cells within radius of (x, y) only,
        summarised as a Gaussian position fix (mean, covariance): a measurement for the EKF
        that carries the non-linear model, the non-detections and the robust tails with it."""
        cells = self.window(x_m, y_m, radius_m)
        if cells.size == 0:
            return None
        ll = self._loglik(cells, idx, z_dbm, missed, kinds) + self.aisle_logprior[cells]
        return self._summary(cells, ll)

    def _summary(self, cells: IntArray, ll: Array) -> tuple[float, float, Array]:
        w = np.exp(ll - ll.max())
        w /= w.sum()
        cx = self.cx[cells]
        cy = self.cy[cells]
        mx = float(w @ cx)
        my = float(w @ cy)
        dx = cx - mx
        dy = cy - my
        c = np.array([[w @ (dx * dx), w @ (dx * dy)], [w @ (dx * dy), w @ (dy * dy)]])
        c += np.eye(2) * self.cell_m ** 2 / 12.0
        return mx, my, c

    def update_gnss(self, x_m: float, y_m: float, sigma_m: float) -> None:
        """A fix is a sharp likelihood around outdoor cells but nearly flat over indoor ones:
        indoors the receiver reports confident fixes that can be 30 m off."""
        self.logp += self.model.gnss_loglik(x_m, y_m, sigma_m)
        self._floor()

    def _floor(self) -> None:
        self.logp -= self.logp.max()
        np.maximum(self.logp, MIN_LOG_P, out=self.logp)

    def probabilities(self) -> Array:
        p = np.exp(self.logp)
        out: Array = p / p.sum()
        return out

    def mean_cov(self, around: tuple[float, float] | None = None,
                 radius_m: float = 0.0) -> tuple[float, float, Array]:
        """Posterior mean and covariance, over all cells or only those within radius of `around`."""
        p = self.probabilities()
        if around is not None:
            p = np.where((self.cx - around[0]) ** 2 + (self.cy - around[1]) ** 2
                         <= radius_m ** 2, p, 0.0)
            s = p.sum()
            if s <= 0:
                return around[0], around[1], np.eye(2) * radius_m ** 2
            p = p / s
        mx = float(p @ self.cx)
        my = float(p @ self.cy)
        dx = self.cx - mx
        dy = self.cy - my
        c = np.array([[p @ (dx * dx), p @ (dx * dy)], [p @ (dx * dy), p @ (dy * dy)]])
        c += np.eye(2) * self.cell_m ** 2 / 12.0
        return mx, my, c

    def mode(self) -> tuple[float, float]:
        i = int(np.argmax(self.logp))
        return float(self.cx[i]), float(self.cy[i])

    def mass_within(self, x_m: float, y_m: float, radius_m: float) -> float:
        p = self.probabilities()
        near = (self.cx - x_m) ** 2 + (self.cy - y_m) ** 2 <= radius_m ** 2
        return float(p[near].sum())


def _blur_matrix(n: int, s: float) -> Array:
    """n x n Gaussian blur (sigma s cells), rows renormalised so no mass leaves the site."""
    i = np.arange(n)
    k = np.exp(-0.5 * ((i[:, None] - i[None, :]) / s) ** 2)
    out: Array = k / k.sum(axis=1, keepdims=True)
    return out
