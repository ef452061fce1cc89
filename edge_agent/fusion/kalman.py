"""The one EKF: filterpy's ExtendedKalmanFilter equations in plain numpy, any measurement size.

The default backend is numpy only: filterpy imports scipy.stats at module level (0.7 s and ~70 MB
of start-up here, seconds on a Raspberry Pi), so filterpy is kept as a reference backend
(`backend="filterpy"`, imported lazily) that tests compare against. The equations are filterpy's:
x = Fx, P = FPF' + Q; K = PH'S^-1 with S = HPH' + R, Joseph-form P = (I-KH)P(I-KH)' + KRK'.
State is kept as a column (n, 1): a 1-D z minus a column h(x) would broadcast to a matrix on
numpy 2, so z is always reshaped here (tests pin this). filterpy's batch_filter is not used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Backend = Literal["numpy", "filterpy"]


class Ekf:
    """State x (n,), covariance P (n, n); predict with F and Q, update with any (z, h, H, R)."""

    def __init__(self, x0: Array, p0: Array, backend: Backend = "numpy") -> None:
        n = int(x0.shape[0])
        self.n = n
        self.backend: Backend = backend
        self._x: Array = np.asarray(x0, dtype=np.float64).reshape(n, 1).copy()
        self._p: Array = np.asarray(p0, dtype=np.float64).copy()
        self._eye: Array = np.eye(n)
        self._ref: Any = None
        if backend == "filterpy":
            from filterpy.kalman import ExtendedKalmanFilter  # reference only: pulls in scipy

            self._ref = ExtendedKalmanFilter(dim_x=n, dim_z=1)
            self._ref.x = self._x
            self._ref.P = self._p
        elif backend != "numpy":
            raise ValueError(f"Ekf backend: {backend!r} is not 'numpy' or 'filterpy'")

    @property
    def x(self) -> Array:
        """The state as a 1-D view (n,)."""
        xc: Array = self._ref.x if self._ref is not None else self._x
        out: Array = xc[:, 0]
        return out

    @property
    def P(self) -> Array:
        out: Array = self._ref.P if self._ref is not None else self._p
        return out

    def set_state(self, x: Array, p: Array | None = None) -> None:
        xc = np.asarray(x, dtype=np.float64).reshape(self.n, 1).copy()
        pc = None if p is None else np.asarray(p, dtype=np.float64).copy()
        if self._ref is not None:
            self._ref.x = xc
            if pc is not None:
                self._ref.P = pc
            return
        self._x = xc
        if pc is not None:
            self._p = pc

    def predict(self, f: Array, q: Array) -> None:
        if self._ref is not None:
            self._ref.F = f
            self._ref.Q = q
            self._ref.predict()
            return
        self._x = f @ self._x
        self._p = (f @ self._p) @ f.T + q

    def update(self, z: Array, hx: Callable[[Array], Array], jac: Callable[[Array], Array],
               r: Array) -> None:
        """One EKF update; hx and jac take the state column (n, 1) and return (m,) / (m, n)."""
        m = int(np.asarray(z).size)
        if m == 0:
            return
        zc = np.asarray(z, dtype=np.float64).reshape(m, 1)
        rm = np.asarray(r, dtype=np.float64).reshape(m, m)

        def h_col(xc: Array) -> Array:
            return np.asarray(hx(xc), dtype=np.float64).reshape(m, 1)

        if self._ref is not None:
            self._ref.update(zc, jac, h_col, R=rm)
            return
        # Same order of operations as filterpy.kalman.ExtendedKalmanFilter.update.
        p = self._p
        h = np.asarray(jac(self._x), dtype=np.float64).reshape(m, self.n)
        pht = p @ h.T
        s = h @ pht + rm
        k = pht @ np.linalg.inv(s)
        y = zc - h_col(self._x)
        self._x = self._x + k @ y
        i_kh = self._eye - k @ h
        self._p = (i_kh @ p) @ i_kh.T + (k @ rm) @ k.T

    @staticmethod
    def innovation(z: Array, h: Array, hj: Array, p: Array, r: Array) -> tuple[Array, Array]:
        """Innovation y = z - h and its covariance S = H P H' + R (for gating before updating)."""
        y = np.asarray(z, dtype=np.float64) - np.asarray(h, dtype=np.float64)
        s: Array = hj @ p @ hj.T + r
        return y, s
