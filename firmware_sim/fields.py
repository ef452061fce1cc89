"""Random fields of radio propagation: spatially correlated shadowing and multipath fading.

Shadowing is a Gaussian field with exponential autocorrelation exp(-d / L) (Gudmundson's model),
drawn as a sum of random Fourier features so it can be evaluated at any position, vectorised.
Fast fading is the Clarke/Jakes sum of plane waves (plus a line-of-sight part for Rician K),
evaluated at the receiver's position and time: it decorrelates over half a wavelength when the
truck moves and changes only slowly (people, other trucks) when it stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

SHADOW_FEATURES = 128
"""Random Fourier features per field: enough for the correlation to be right within a few %."""
FADING_WAVES = 12
"""Plane waves per fading field: Clarke's model converges to Rayleigh statistics by about 8."""
DYNAMIC_WAVES = 4
"""Of those, the ones scattered by moving things (people, trucks): they change in time."""
DYNAMIC_SHARE = 0.1
"""Share of the scattered power that moves: a standing receiver sees a temporal Rician K of
~15 dB (a dB or two of flutter), as measured in halls, not a new fade every second."""
SPEED_OF_LIGHT_MPS = 299_792_458.0


@dataclass(frozen=True)
class ShadowField:
    """s(x, y) ~ N(0, sigma_db^2) with corr(s(p), s(q)) = exp(-|p - q| / corr_m)."""

    sigma_db: float
    corr_m: float
    wx: Array
    wy: Array
    phase: Array

    @classmethod
    def draw(cls, rng: np.random.Generator, sigma_db: float, corr_m: float) -> ShadowField:
        # The spectral density of exp(-r/L) in 2-D is a bivariate Cauchy (Student t, 1 dof)
        # with scale 1/L: a Gaussian vector divided by |N(0,1)| and by L.
        g = rng.standard_normal((2, SHADOW_FEATURES))
        u = np.abs(rng.standard_normal(SHADOW_FEATURES)) + 1e-12
        w = g / (u * corr_m)
        return cls(sigma_db, corr_m, w[0], w[1], rng.uniform(0, 2 * math.pi, SHADOW_FEATURES))

    def __call__(self, x_m: Array, y_m: Array) -> Array:
        if self.sigma_db == 0.0:
            return np.zeros(np.shape(x_m))
        arg = np.multiply.outer(x_m, self.wx) + np.multiply.outer(y_m, self.wy) + self.phase
        out: Array = np.cos(arg).sum(axis=-1) * (self.sigma_db * math.sqrt(2.0 / SHADOW_FEATURES))
        return out


def rician_log_mean_db(k_factor_db: float) -> float:
    """E[10 log10 |h|^2] for unit-power Rician fading: subtracted so fading is zero-mean in dB."""
    rng = np.random.default_rng(12345)  # fixed: a constant of the model, not of a run
    k = 10 ** (k_factor_db / 10)
    n = 400_000
    los = math.sqrt(k / (k + 1))
    sc = math.sqrt(1 / (2 * (k + 1)))
    h = los + sc * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return float(np.mean(10 * np.log10(np.abs(h) ** 2)))


@dataclass(frozen=True)
class FadingField:
    """Rician multipath: |h(p, t)|^2 in dB with its log-mean removed.

    Scattered part: plane waves with random arrival angles and phases, a few of them (a small
    share of the power) with a slow Doppler from the moving environment; LOS part of power
    K/(K+1). One field per emitter and channel.
    """

    k_factor_db: float
    kx: Array
    ky: Array
    phase: Array
    env_hz: Array
    los_phase: float
    log_mean_db: float

    @classmethod
    def draw(cls, rng: np.random.Generator, freq_mhz: float, k_factor_db: float,
             env_doppler_hz: float, log_mean_db: float) -> FadingField:
        k_wave = 2 * math.pi * freq_mhz * 1e6 / SPEED_OF_LIGHT_MPS
        ang = rng.uniform(0, 2 * math.pi, FADING_WAVES)
        env = rng.uniform(-env_doppler_hz, env_doppler_hz, FADING_WAVES)
        env[DYNAMIC_WAVES:] = 0.0
        return cls(k_factor_db, k_wave * np.cos(ang), k_wave * np.sin(ang),
                   rng.uniform(0, 2 * math.pi, FADING_WAVES), env,
                   float(rng.uniform(0, 2 * math.pi)), log_mean_db)

    def __call__(self, x_m: Array, y_m: Array, t_s: Array) -> Array:
        k = 10 ** (self.k_factor_db / 10)
        arg = (np.multiply.outer(x_m, self.kx) + np.multiply.outer(y_m, self.ky)
               + np.multiply.outer(t_s, 2 * math.pi * self.env_hz) + self.phase)
        w = np.full(FADING_WAVES, math.sqrt((1 - DYNAMIC_SHARE) / (FADING_WAVES - DYNAMIC_WAVES)))
        w[:DYNAMIC_WAVES] = math.sqrt(DYNAMIC_SHARE / DYNAMIC_WAVES)
        re = np.cos(arg) @ w
        im = np.sin(arg) @ w
        scale = math.sqrt(1.0 / (k + 1))
        los = math.sqrt(k / (k + 1))
        p = (los * math.cos(self.los_phase) + scale * re) ** 2 \
            + (los * math.sin(self.los_phase) + scale * im) ** 2
        out: Array = 10 * np.log10(np.maximum(p, 1e-6)) - self.log_mean_db
        return out
