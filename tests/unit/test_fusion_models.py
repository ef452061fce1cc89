"""Measurement models, Jacobians, censoring, the filterpy wrapper, the CRB and the centroid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from filterpy.kalman import ExtendedKalmanFilter

from edge_agent.fusion.baselines import weighted_centroid
from edge_agent.fusion.crb import crb_rmse_m
from edge_agent.fusion.kalman import Ekf
from edge_agent.fusion.models import (
    censored_mean,
    detection_probability,
    norm_cdf,
    rssi_dbm,
    rssi_gradient,
)
from edge_agent.observations import WifiObs
from edge_agent.site import site_from_dict

EX = np.array([0.0, 30.0, 10.0, 50.0])
EY = np.array([0.0, 5.0, 40.0, 45.0])
DZ = np.array([4.5, 4.5, 1.0, 0.0])
P1 = np.array([-40.0, -42.0, -59.0, -45.0])
N = np.array([2.5, 3.0, 2.0, 2.7])


def test_log_distance_matches_hand_computed_value() -> None:
    # 3-4-12 box: horizontal 3, 4 and height 12 -> distance 13 m
    r = rssi_dbm(3.0, 4.0, np.array([0.0]), np.array([0.0]), np.array([12.0]),
                 np.array([-40.0]), np.array([2.0]))
    assert r[0] == pytest.approx(-40.0 - 20.0 * math.log10(13.0))


def test_log_distance_is_flat_inside_one_metre() -> None:
    r = rssi_dbm(0.2, 0.1, np.array([0.0]), np.array([0.0]), np.array([0.0]),
                 np.array([-40.0]), np.array([2.5]))
    assert r[0] == pytest.approx(-40.0)
    gx, gy = rssi_gradient(0.2, 0.1, np.array([0.0]), np.array([0.0]), np.array([0.0]),
                           np.array([2.5]))
    assert gx[0] == 0.0 and gy[0] == 0.0


@pytest.mark.parametrize(("x", "y"), [(12.0, 17.0), (40.0, 30.0), (2.0, 1.0), (-20.0, 60.0)])
def test_rssi_gradient_matches_finite_differences(x: float, y: float) -> None:
    gx, gy = rssi_gradient(x, y, EX, EY, DZ, N)
    e = 1e-5
    fx = (rssi_dbm(x + e, y, EX, EY, DZ, P1, N) - rssi_dbm(x - e, y, EX, EY, DZ, P1, N)) / (2 * e)
    fy = (rssi_dbm(x, y + e, EX, EY, DZ, P1, N) - rssi_dbm(x, y - e, EX, EY, DZ, P1, N)) / (2 * e)
    np.testing.assert_allclose(gx, fx, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gy, fy, rtol=1e-5, atol=1e-7)


def test_norm_cdf_matches_erf() -> None:
    a = np.linspace(-6, 6, 49)
    ref = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in a])
    np.testing.assert_allclose(norm_cdf(a), ref, atol=2e-7)


def test_censored_mean_matches_monte_carlo_and_vanishes_far_above_floor() -> None:
    rng = np.random.default_rng(1)
    mu = np.array([-70.0, -88.0, -92.0, -97.0])
    mean, _ = censored_mean(mu, 3.0, -92.0)
    for m, got in zip(mu, mean, strict=True):
        r = rng.normal(m, 3.0, 400_000)
        assert got == pytest.approx(r[r > -92.0].mean(), abs=0.02)
    assert mean[0] == pytest.approx(-70.0, abs=1e-6)  # 7 sigma above the floor: no bias


def test_censored_mean_derivative_matches_finite_differences() -> None:
    mu = np.linspace(-110.0, -70.0, 41)
    _, d = censored_mean(mu, 3.0, -92.0)
    e = 1e-4
    fd = (censored_mean(mu + e, 3.0, -92.0)[0] - censored_mean(mu - e, 3.0, -92.0)[0]) / (2 * e)
    np.testing.assert_allclose(d, fd, atol=2e-3)
    assert np.all((d >= 0.0) & (d <= 1.0))


def test_detection_probability_is_one_half_at_the_floor() -> None:
    p = detection_probability(np.array([-92.0, -80.0]), 3.0, -92.0)
    assert p[0] == pytest.approx(0.5)
    assert p[1] > 0.9999


def _linear_kf(x: np.ndarray, p: np.ndarray, z: np.ndarray, h: np.ndarray,
               r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = h @ p @ h.T + r
    k = p @ h.T @ np.linalg.inv(s)
    return x + k @ (z - h @ x), (np.eye(len(x)) - k @ h) @ p


def test_ekf_wrapper_equals_textbook_update_for_any_measurement_size() -> None:
    rng = np.random.default_rng(3)
    x0 = np.array([1.0, 2.0, 0.5, -0.5])
    a = rng.normal(size=(4, 4))
    p0 = a @ a.T + np.eye(4)
    ekf = Ekf(x0, p0)
    for m in (1, 2, 5):
        h = rng.normal(size=(m, 4))
        z = rng.normal(size=m)
        r = np.eye(m) * 0.7
        xe, pe = _linear_kf(ekf.x.copy(), ekf.P.copy(), z, h, r)
        ekf.update(z, lambda xc, h=h: h @ xc[:, 0], lambda _xc, h=h: h, r)
        np.testing.assert_allclose(ekf.x, xe, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ekf.P, pe, rtol=1e-9, atol=1e-9)
        assert ekf.x.shape == (4,)


def test_raw_filterpy_broadcasts_a_flat_z_which_the_wrapper_avoids() -> None:
    """Pins the numpy-2 pitfall the wrapper exists for: a 1-D z against a column h(x)."""
    f = ExtendedKalmanFilter(dim_x=2, dim_z=2)
    f.x = np.array([[0.0], [0.0]])
    f.update(np.array([1.0, 2.0]), lambda _x: np.eye(2), lambda x: x, R=np.eye(2))
    assert f.y.shape == (2, 2)  # broadcast residual: wrong without the wrapper's reshape
    ekf = Ekf(np.zeros(2), np.eye(2))
    ekf.update(np.array([1.0, 2.0]), lambda xc: xc[:, 0], lambda _xc: np.eye(2), np.eye(2))
    np.testing.assert_allclose(ekf.x, [0.5, 1.0])


def test_ekf_predict_constant_velocity() -> None:
    ekf = Ekf(np.array([0.0, 0.0, 1.0, 2.0]), np.eye(4))
    f = np.eye(4)
    f[0, 2] = f[1, 3] = 2.0
    ekf.predict(f, np.zeros((4, 4)))
    np.testing.assert_allclose(ekf.x, [2.0, 4.0, 1.0, 2.0])
    assert ekf.P[0, 0] == pytest.approx(5.0)


def test_crb_of_symmetric_square_matches_closed_form() -> None:
    # Four emitters at distance 10 on the axes, no height: FIM = 2 * k^2 / (sigma^2 d^2) I
    ex = np.array([10.0, -10.0, 0.0, 0.0])
    ey = np.array([0.0, 0.0, 10.0, -10.0])
    n = np.full(4, 2.0)
    k = 10.0 * 2.0 / math.log(10.0)
    fim = 2.0 * k * k / (4.0 ** 2 * 10.0 ** 2)
    got = crb_rmse_m(0.0, 0.0, ex, ey, np.zeros(4), n, np.full(4, 4.0))
    assert got == pytest.approx(math.sqrt(2.0 / fim))


def test_crb_is_unbounded_with_collinear_or_single_emitters() -> None:
    assert math.isinf(crb_rmse_m(0.0, 0.0, np.array([5.0]), np.array([0.0]), np.zeros(1),
                                 np.full(1, 2.0), np.full(1, 4.0)))
    assert math.isinf(crb_rmse_m(0.0, 0.0, np.array([5.0, -5.0]), np.array([0.0, 0.0]),
                                 np.zeros(2), np.full(2, 2.0), np.full(2, 4.0)))


def _site(aps: list[tuple[str, float, float]]) -> object:
    return site_from_dict({
        "site": "t", "origin": {"lat": 47.0, "lon": 7.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 100},
        "wifi_aps": [{"bssid": b, "ssid": "s", "channel": 1, "x": x, "y": y, "z": 1.5,
                      "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.0} for b, x, y in aps],
    })


def test_centroid_weights_four_strongest_by_inverse_distance() -> None:
    site = _site([("02:00:00:00:00:01", 0.0, 0.0), ("02:00:00:00:00:02", 10.0, 0.0),
                  ("02:00:00:00:00:03", 0.0, 10.0), ("02:00:00:00:00:04", 10.0, 10.0),
                  ("02:00:00:00:00:05", 90.0, 90.0)])
    t0 = 1_795_000_000.0
    # distances 1, 10, 10, 10 (from -40 - 20 log10 d) and a far weak one that is dropped
    obs = [WifiObs(t0 + 0.1, "02:00:00:00:00:01", -40.0, 1),
           WifiObs(t0 + 0.2, "02:00:00:00:00:02", -60.0, 1),
           WifiObs(t0 + 0.3, "02:00:00:00:00:03", -60.0, 1),
           WifiObs(t0 + 0.4, "02:00:00:00:00:04", -60.0, 1),
           WifiObs(t0 + 0.5, "02:00:00:00:00:05", -80.0, 1),
           WifiObs(t0 + 2.5, "02:00:00:00:00:05", -80.0, 1)]
    est = weighted_centroid(site, obs)  # type: ignore[arg-type]
    assert [e.t for e in est] == [t0 + 1, t0 + 2, t0 + 3]
    assert est[0].x_m == pytest.approx(2.0 / 1.3)
    assert est[0].y_m == pytest.approx(2.0 / 1.3)
    assert (est[1].x_m, est[1].y_m) == (est[0].x_m, est[0].y_m)  # held through a silent second
    assert est[2].x_m == pytest.approx(90.0)
