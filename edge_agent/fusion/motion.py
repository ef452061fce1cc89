"""Moving / idle decision with hysteresis, from the filter's speed.

A forklift that stands still must not drift on the map, and one that moves must be seen moving:
the flag switches the motion model (idle freezes the position) and feeds the heatmap's moving_s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MotionDetector:
    """Moving when the smoothed speed exceeds `start_mps`, idle again below `stop_mps`."""

    start_mps: float
    stop_mps: float
    smoothing: float
    moving: bool = False
    speed_avg_mps: float = 0.0

    def update(self, speed_mps: float) -> bool:
        self.speed_avg_mps += self.smoothing * (speed_mps - self.speed_avg_mps)
        if self.moving and self.speed_avg_mps < self.stop_mps:
            self.moving = False
        elif not self.moving and self.speed_avg_mps > self.start_mps:
            self.moving = True
        return self.moving
