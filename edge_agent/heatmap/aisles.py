"""Map-matching for the dwell map: a position near an aisle of site.json moves onto its centre line.

Trucks drive the aisles' centre lines (spec: "where aisles are given, a truck is on it"), so a
position a few metres off an aisle is most likely on it; positions far from every aisle (open
areas the plan does not cover) stay where they are.
"""

from __future__ import annotations

import numpy as np

from edge_agent.site import Site

AISLE_CAPTURE_M = 3.0
"""Snap when within half the aisle's width plus this: about one sigma of a good tracker."""


class AisleSnap:
    """Nearest-aisle projection over every segment at once (numpy, ~131 segments per plant)."""

    def __init__(self, site: Site, capture_m: float = AISLE_CAPTURE_M) -> None:
        a = site.aisles
        self.empty = not a
        self.x0 = np.array([s.start[0] for s in a], dtype=np.float64)
        self.y0 = np.array([s.start[1] for s in a], dtype=np.float64)
        dx = np.array([s.end[0] for s in a], dtype=np.float64) - self.x0
        dy = np.array([s.end[1] for s in a], dtype=np.float64) - self.y0
        self.length2 = np.maximum(dx * dx + dy * dy, 1e-12)
        self.dx, self.dy = dx, dy
        self.reach = np.array([s.width_m / 2.0 for s in a], dtype=np.float64) + capture_m

    def snap(self, x_m: float, y_m: float) -> tuple[float, float]:
        """(x, y) on the nearest aisle's centre line if within its reach, else unchanged."""
        if self.empty:
            return x_m, y_m
        u = np.clip(((x_m - self.x0) * self.dx + (y_m - self.y0) * self.dy) / self.length2,
                    0.0, 1.0)
        px = self.x0 + u * self.dx
        py = self.y0 + u * self.dy
        d = np.hypot(px - x_m, py - y_m)
        j = int(np.argmin(d - self.reach))
        if d[j] > self.reach[j]:
            return x_m, y_m
        return float(px[j]), float(py[j])
