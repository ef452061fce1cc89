"""The static Cramér-Rao bound of RSSI positioning: one second, the heard emitters, no motion model.

With r_i = P_i - 10 n_i log10(d_i) + N(0, sigma_i^2), the Fisher information about (x, y) is
sum_i g_i g_i' / sigma_i^2 (g_i the model's gradient); the RMS error bound is sqrt(tr(FIM^-1)).
"""

from __future__ import annotations

import math

import numpy as np

from edge_agent.fusion.models import Array, rssi_gradient

UNBOUNDED_M = float("inf")


def crb_rmse_m(x_m: float, y_m: float, ex_m: Array, ey_m: Array, dz_m: Array, n: Array,
               sigma_db: Array) -> float:
    """sqrt(trace(FIM^-1)) at the true position for the given heard emitters; inf if singular."""
    if len(ex_m) < 2:
        return UNBOUNDED_M
    gx, gy = rssi_gradient(x_m, y_m, ex_m, ey_m, dz_m, n)
    w = 1.0 / np.asarray(sigma_db, dtype=np.float64) ** 2
    fxx = float(np.sum(w * gx * gx))
    fxy = float(np.sum(w * gx * gy))
    fyy = float(np.sum(w * gy * gy))
    det = fxx * fyy - fxy * fxy
    if det <= 1e-12 * max(fxx * fyy, 1e-300):
        return UNBOUNDED_M
    return math.sqrt((fxx + fyy) / det)
