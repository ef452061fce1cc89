"""The site grid of a heatmap and the spread of one position estimate over its cells.

A position with uncertainty sigma is spread over neighbouring cells as a Gaussian integrated over
each cell (truncated, renormalised so the dwell it carries is kept exactly); see docs/heatmap.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.site import Site

SPREAD_TRUNCATE_SIGMA = 2.5
"""Beyond 2.5 sigma a cell would get < 1 % of the dwell: not worth a payload entry."""
SPREAD_MAX_CELLS = 3
"""At most this many cells each side: a very uncertain estimate is not smeared over the plant."""
SPREAD_MIN_SIGMA_CELLS = 0.15
"""A sigma below 0.15 cell puts > 99 % in one cell at the centre: skip the integral."""
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class Grid:
    """Cells of `cell_m` from (x0, y0), nx by ny, covering the site's bounds."""

    x0: float
    y0: float
    cell_m: float
    nx: int
    ny: int

    @classmethod
    def for_site(cls, site: Site, cell_m: float = 2.0) -> Grid:
        if not cell_m > 0:
            raise ValueError(f"cell_m must be positive, got {cell_m}")
        b = site.bounds
        return cls(b.xmin, b.ymin, cell_m, max(1, math.ceil((b.xmax - b.xmin) / cell_m)),
                   max(1, math.ceil((b.ymax - b.ymin) / cell_m)))

    def index(self, x_m: float, y_m: float) -> tuple[int, int]:
        """The cell holding (x, y), clamped to the grid (off the site edge counts at the edge)."""
        ix = math.floor((x_m - self.x0) / self.cell_m)
        iy = math.floor((y_m - self.y0) / self.cell_m)
        return min(max(ix, 0), self.nx - 1), min(max(iy, 0), self.ny - 1)

    def spread(self, x_m: float, y_m: float, sigma_x_m: float,
               sigma_y_m: float) -> list[tuple[tuple[int, int], float]]:
        """Weights (summing to 1) of the cells around (x, y) for an axis-aligned Gaussian."""
        wx = self._axis(x_m, self.x0, self.nx, sigma_x_m)
        wy = self._axis(y_m, self.y0, self.ny, sigma_y_m)
        return [((ix, iy), px * py) for ix, px in wx for iy, py in wy]

    def _axis(self, v_m: float, v0: float, n: int, sigma_m: float) -> list[tuple[int, float]]:
        u = (v_m - v0) / self.cell_m  # position in cell units
        centre = min(max(math.floor(u), 0), n - 1)
        s = sigma_m / self.cell_m
        if not s > SPREAD_MIN_SIGMA_CELLS or not math.isfinite(s):
            return [(centre, 1.0)]
        u = min(max(u, 0.0), float(n))
        reach = min(SPREAD_MAX_CELLS, math.ceil(SPREAD_TRUNCATE_SIGMA * s))
        lo, hi = max(0, centre - reach), min(n - 1, centre + reach)
        cdf = [0.5 * (1.0 + math.erf((k - u) / (s * _SQRT2))) for k in range(lo, hi + 2)]
        out = [(k, cdf[k - lo + 1] - cdf[k - lo]) for k in range(lo, hi + 1)]
        total = sum(w for _, w in out)
        if total <= 0.0:
            return [(centre, 1.0)]
        return [(k, w / total) for k, w in out if w > 0.0]
