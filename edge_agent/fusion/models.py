"""Measurement models: RSSI by log-distance path loss (with its censored mean), GNSS position.

Pure numpy functions with their analytic Jacobians, vectorised over emitters, so the tracker
evaluates one second of Wi-Fi + BLE in a handful of array operations.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

LN10 = math.log(10.0)
MIN_DISTANCE_M = 1.0
"""Log-distance is only valid in the far field; closer than 1 m it would predict unbounded power."""

CF_FROM_SIGMA = 2.5
CF_TERMS = 20
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def distance_3d_m(x_m: float, y_m: float, ex_m: Array, ey_m: Array, dz_m: Array) -> Array:
    """3-D distance from a receiver at (x, y) to emitters at (ex, ey), dz above it."""
    d: Array = np.sqrt((x_m - ex_m) ** 2 + (y_m - ey_m) ** 2 + dz_m ** 2)
    return np.maximum(d, MIN_DISTANCE_M)


def rssi_dbm(x_m: float, y_m: float, ex_m: Array, ey_m: Array, dz_m: Array, p1m_dbm: Array,
             n: Array) -> Array:
    """Log-distance path loss: P(d) = P(1 m) - 10 n log10(d), d the 3-D distance."""
    d = distance_3d_m(x_m, y_m, ex_m, ey_m, dz_m)
    out: Array = p1m_dbm - 10.0 * n * np.log10(d)
    return out


def rssi_gradient(x_m: float, y_m: float, ex_m: Array, ey_m: Array, dz_m: Array,
                  n: Array) -> tuple[Array, Array]:
    """d rssi / d x and d rssi / d y (dB per metre) of `rssi_dbm`; zero inside MIN_DISTANCE_M."""
    dx = x_m - ex_m
    dy = y_m - ey_m
    d2 = dx * dx + dy * dy + dz_m * dz_m
    k = np.where(d2 > MIN_DISTANCE_M ** 2, -10.0 * n / LN10 / np.maximum(d2, 1e-12), 0.0)
    return k * dx, k * dy


def norm_cdf(a: Array) -> Array:
    """Standard normal CDF, vectorised (numpy has no erf; scipy is not a runtime dependency)."""
    return np.asarray(0.5 * (1.0 + _erf(a / _SQRT2)), dtype=np.float64)


def norm_pdf(a: Array) -> Array:
    return np.asarray(_INV_SQRT_2PI * np.exp(-0.5 * a * a), dtype=np.float64)


def _erf(x: Array) -> Array:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for likelihoods and censoring."""
    s = np.sign(x)
    ax = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * ax)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                           + t * 1.061405429))))
    return np.asarray(s * (1.0 - poly * np.exp(-ax * ax)), dtype=np.float64)


def censored_mean(mu_dbm: Array, sigma_db: Array | float,
                  floor_dbm: Array | float) -> tuple[Array, Array]:
    """Mean of the frames that survive a receiver floor, and its derivative with respect to mu.

    Frames below `floor_dbm` are never heard, so the mean of the heard ones of a far emitter is
    biased up: E[r | r > s] = mu + sigma * lambda(a), a = (s - mu) / sigma, lambda the inverse Mills
    ratio; d/dmu = 1 - lambda (lambda - a). Returns (mean, derivative).
    """
    sig = np.asarray(sigma_db, dtype=np.float64)
    a = np.asarray((floor_dbm - mu_dbm) / sig, dtype=np.float64)
    a_lo = np.minimum(a, CF_FROM_SIGMA)
    lam = norm_pdf(a_lo) / np.maximum(1.0 - norm_cdf(a_lo), 1e-300)
    tail = a > CF_FROM_SIGMA
    if tail.any():
        # In the tail 1 - CDF loses relative precision: Laplace's continued fraction for the
        # Mills ratio, 20 terms, is within 3e-8 of the exact value from 2.5 sigma on.
        at = a[tail]
        v = at.copy()
        for k in range(CF_TERMS, 0, -1):
            v = at + k / v
        lam = lam.copy()
        lam[tail] = v
    mean = mu_dbm + sig * lam
    deriv = np.clip(1.0 - lam * (lam - a), 0.0, 1.0)
    return np.asarray(mean, dtype=np.float64), np.asarray(deriv, dtype=np.float64)


def detection_probability(mu_dbm: Array, sigma_db: float, floor_dbm: float) -> Array:
    """Probability that one frame with mean mu is heard above the floor."""
    return norm_cdf((mu_dbm - floor_dbm) / sigma_db)


def gnss_h(state: Array) -> Array:
    """GNSS position measurement: the state's (x, y)."""
    return np.asarray(state[:2], dtype=np.float64)


def gnss_jacobian(dim_x: int) -> Array:
    h = np.zeros((2, dim_x))
    h[0, 0] = 1.0
    h[1, 1] = 1.0
    return h
