"""The numpy EKF against filterpy's ExtendedKalmanFilter (reference backend), and its imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edge_agent.fusion.kalman import Ekf


def _spd(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return a @ a.T + 0.1 * np.eye(n)


@pytest.mark.parametrize("seed", range(5))
def test_numpy_backend_matches_filterpy_on_random_sequences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    x0 = rng.normal(size=n)
    p0 = _spd(rng, n)
    ours, ref = Ekf(x0, p0), Ekf(x0, p0, backend="filterpy")
    for step in range(60):
        if rng.random() < 0.4:
            f = np.eye(n) + 0.1 * rng.normal(size=(n, n))
            q = 0.01 * _spd(rng, n)
            ours.predict(f, q)
            ref.predict(f, q)
        else:
            m = int(rng.integers(1, 7))  # measurement size changes from call to call
            w = rng.normal(size=(m, n))
            z = rng.normal(size=m)
            r = _spd(rng, m)

            def hx(xc: np.ndarray, w: np.ndarray = w) -> np.ndarray:
                return np.tanh(w @ xc[:, 0])  # non-linear: Jacobian depends on the state

            def jac(xc: np.ndarray, w: np.ndarray = w) -> np.ndarray:
                return (1.0 - np.tanh(w @ xc[:, 0]) ** 2)[:, None] * w

            ours.update(z, hx, jac, r)
            ref.update(z, hx, jac, r)
        if step == 30:
            xs, ps = rng.normal(size=n), _spd(rng, n)
            ours.set_state(xs, ps)
            ref.set_state(xs, ps)
        assert ours.x.shape == ref.x.shape == (n,)
        assert ours.P.shape == ref.P.shape == (n, n)
        np.testing.assert_allclose(ours.x, ref.x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours.P, ref.P, rtol=1e-9, atol=1e-9)


def test_empty_measurement_is_a_no_op_on_both_backends() -> None:
    for backend in ("numpy", "filterpy"):
        ekf = Ekf(np.array([1.0, 2.0]), np.eye(2), backend=backend)  # type: ignore[arg-type]
        ekf.update(np.zeros(0), lambda xc: xc[:0, 0], lambda _xc: np.zeros((0, 2)),
                   np.zeros((0, 0)))
        np.testing.assert_array_equal(ekf.x, [1.0, 2.0])


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        Ekf(np.zeros(2), np.eye(2), backend="scipy")  # type: ignore[arg-type]


def test_default_backend_imports_neither_filterpy_nor_scipy() -> None:
    code = ("import sys, numpy as np, edge_agent.fusion.tracker\n"
            "from edge_agent.fusion.kalman import Ekf\n"
            "e = Ekf(np.zeros(2), np.eye(2)); e.predict(np.eye(2), np.eye(2))\n"
            "e.update(np.ones(1), lambda xc: xc[:1, 0], lambda _xc: np.eye(1, 2), np.eye(1))\n"
            "print('scipy' in sys.modules, 'filterpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["False", "False"]
