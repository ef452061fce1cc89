"""The one module that touches filterpy: an EKF whose measurement size changes from call to call.

filterpy's ExtendedKalmanFilter fixes dim_z at construction; passing z as a column and R explicitly
lets one filter serve Wi-Fi, BLE and GNSS. Column shapes matter on numpy 2: a 1-D z minus a column
h(x) would broadcast to a matrix, so z is always reshaped here (tests pin this). batch_filter is not
used (it breaks on 1-D measurements in filterpy 2.0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from filterpy.kalman import ExtendedKalmanFilter

Array = npt.NDArray[np.float64]


class Ekf:
    """State x (n,), covariance P (n, n); predict with F and Q, update with any (z, h, H, R)."""

    def __init__(self, x0: Array, p0: Array) -> None:
        n = int(x0.shape[0])
        self._f = ExtendedKalmanFilter(dim_x=n, dim_z=1)
        self._f.x = np.asarray(x0, dtype=np.float64).reshape(n, 1).copy()
        self._f.P = np.asarray(p0, dtype=np.float64).copy()
        self.n = n

    @property
    def x(self) -> Array:
        """The state as a 1-D view (n,)."""
        out: Array = self._f.x[:, 0]
        return out

    @property
    def P(self) -> Array:
        out: Array = self._f.P
        return out

    def set_state(self, x: Array, p: Array | None = None) -> None:
        self._f.x = np.asarray(x, dtype=np.float64).reshape(self.n, 1).copy()
        if p is not None:
            self._f.P = np.asarray(p, dtype=np.float64).copy()

    def predict(self, f: Array, q: Array) -> None:
        self._f.F = f
        self._f.Q = q
        self._f.predict()

    def update(self, z: Array, hx: Callable[[Array], Array], jac: Callable[[Array], Array],
               r: Array) -> None:
        """One EKF update; hx and jac take the state column (n, 1) and return (m,) / (m, n)."""
        m = int(np.asarray(z).size)
        if m == 0:
            return
        zc = np.asarray(z, dtype=np.float64).reshape(m, 1)

        def h_col(xc: Array) -> Array:
            return np.asarray(hx(xc), dtype=np.float64).reshape(m, 1)

        self._f.update(zc, jac, h_col, R=np.asarray(r, dtype=np.float64).reshape(m, m))

    @staticmethod
    def innovation(z: Array, h: Array, hj: Array, p: Array, r: Array) -> tuple[Array, Array]:
        """Innovation y = z - h and its covariance S = H P H' + R (for gating before updating)."""
        y = np.asarray(z, dtype=np.float64) - np.asarray(h, dtype=np.float64)
        s: Array = hj @ p @ hj.T + r
        return y, s
