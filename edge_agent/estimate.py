"""The fusion stage's output: a causal position estimate with its uncertainty and motion state."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Estimate:
    """Position at time `t` (UTC s) using only data up to `t`.

    `cov_m2` is the 2x2 position covariance as (var_x, cov_xy, var_y) in m².
    `valid` is False while the tracker has no position (warm-up, long silence): such estimates
    count as no-position time in the heatmap.
    `mass` is set where the position's distribution is not one Gaussian (the route filter: its
    probability on the aisles): points (x_m, y_m, weight), weights summing to 1; the heatmap
    spreads dwell over them. Empty otherwise.
    """

    t: float
    x_m: float
    y_m: float
    cov_m2: tuple[float, float, float]
    speed_mps: float
    moving: bool
    valid: bool = True
    mass: tuple[tuple[float, float, float], ...] = ()

    @property
    def sigma_m(self) -> float:
        """RMS 1-sigma of the two axes, in metres."""
        return float(((self.cov_m2[0] + self.cov_m2[2]) / 2.0) ** 0.5)
