"""Do the surveyed aisles cover where a truck can be? The route filter's precondition.

The spec says a truck is on the aisles "except in open areas that the plan does not cover". The
route filter can only place the truck on an aisle, so it is used only where the aisles reach
every sizeable zone: share of each zone (sampled on a 2 m raster) within half an aisle's width +
REACH_M of its centre line. The simulator's plants: hall 0.95-0.99, yard 0.82-0.89; the spec's
example site (one 10 m aisle in a 100 m x 90 m plant): 0.02.
"""

from __future__ import annotations

import math

import numpy as np

from edge_agent.fusion.models import Array
from edge_agent.site import Aisle, Site

REACH_M = 5.0
"""A place counts as covered within 5 m of an aisle's edge (a truck leaves the centre line to
reach a rack face or a dock, and position errors are of this order anyway)."""
SAMPLE_M = 2.0
MAX_SAMPLES = 20_000
"""A huge site is sampled more coarsely (zone tests are Python: 20 000 points take ~0.1 s)."""
MIN_INDOOR_COVERAGE = 0.75
MIN_OUTDOOR_COVERAGE = 0.5
"""Each zone that matters must be this much covered: three quarters indoors, where nothing would
notice a truck driving an open area the plan leaves out; half outdoors, where confident GNSS far
from every aisle switches the tracker to 2-D (tracker.py, `left_aisles`) ..."""
MIN_ZONE_SHARE = 0.15
"""... where it matters = at least 15 % of the zoned area (an office or a plant room the plan
lists but no truck enters does not count)."""
MAX_OPEN_CELLS = 6_000
"""Budget of the open-area raster: a larger uncovered area gets coarser cells."""


def zone_coverage(site: Site) -> dict[str, tuple[float, int, bool]]:
    """Per zone (by name; the site's bounds as "(site)" without zones): the share near an aisle,
    the number of raster samples it was measured on (its area in SAMPLE_M squares), indoor."""
    out: dict[str, tuple[float, int, bool]] = {}
    indoor = {z.name: z.indoor for z in site.zones}
    for name, (x, y) in _zone_samples(site).items():
        if x.size == 0:
            out[name] = (0.0, 0, indoor.get(name, False))
            continue
        d = np.full(x.shape, np.inf)
        for a in site.aisles:
            d = np.minimum(d, segment_distance_m(x, y, a) - a.width_m / 2.0)
        out[name] = (round(float(np.mean(d <= REACH_M)), 3), int(x.size),
                     indoor.get(name, False))
    return out


def aisles_cover_site(site: Site) -> tuple[bool, dict[str, float]]:
    """Whether the route filter may be used, and the coverage per zone behind the decision."""
    if not site.aisles:
        return False, {}
    cov = zone_coverage(site)
    total = sum(n for _, n, _ in cov.values()) or 1
    ok = all(c >= (MIN_INDOOR_COVERAGE if indoor else MIN_OUTDOOR_COVERAGE)
             for c, n, indoor in cov.values() if n / total >= MIN_ZONE_SHARE)
    return ok, {k: c for k, (c, _, _) in cov.items()}


def open_ground_zones(site: Site) -> tuple[bool, list[str]]:
    """Whether the route filter may run and the zones it takes as open ground.

    It runs where the aisles cover the site (`aisles_cover_site`), and also where every zone they
    leave uncovered is outdoors (a yard without aisles): GNSS places a truck there, so those
    zones become open ground (`open_area_cells`). An uncovered indoor zone leaves the site to the
    2-D tracker: measured, open ground without GNSS tracks worse than the 2-D stages (hall RMSE
    with one aisle in the plant, 3 scenarios x 2 seeds x 20 min: 10.7 against 9.1 m).
    """
    if not site.aisles:
        return False, []
    cov = zone_coverage(site)
    total = sum(n for _, n, _ in cov.values()) or 1
    short = {name: indoor for name, (c, n, indoor) in cov.items()
             if c < (MIN_INDOOR_COVERAGE if indoor else MIN_OUTDOOR_COVERAGE)}
    vetoing = [name for name, indoor in short.items() if cov[name][1] / total >= MIN_ZONE_SHARE]
    if not vetoing:
        return True, []
    if not site.zones or any(short[name] for name in vetoing):
        return False, []
    return True, [name for name, indoor in short.items() if not indoor]


def open_area_cells(site: Site, zones: list[str], cell_m: float
                    ) -> tuple[Array, Array, float]:
    """Where a truck may drive off the aisles: centres of raster cells (x, y) and their size.

    Open ground lies in the given zones (`open_ground_zones`): there, the places farther than
    REACH_M from every aisle's edge, grown back by REACH_M towards the aisles so that they meet
    them (a truck drives off an aisle into a yard), minus the aisles themselves. Elsewhere the
    aisles say where trucks are (the pockets between a wall and the last rack aisle are not
    driven). Empty without aisles or zones.
    """
    b = site.bounds
    open_zones = set(zones)
    polys = [z.polygon for z in site.zones if z.name in open_zones]
    if not polys or not site.aisles:
        return np.zeros(0), np.zeros(0), cell_m
    # the raster covers the open zones (grown by REACH_M, clipped to the bounds): its budget is
    # theirs, not the site's
    x0 = max(b.xmin, min(px for poly in polys for px, _ in poly) - REACH_M)
    x1 = min(b.xmax, max(px for poly in polys for px, _ in poly) + REACH_M)
    y0 = max(b.ymin, min(py for poly in polys for _, py in poly) - REACH_M)
    y1 = min(b.ymax, max(py for poly in polys for _, py in poly) + REACH_M)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(0), np.zeros(0), cell_m
    step = max(cell_m, math.sqrt((x1 - x0) * (y1 - y0) / MAX_OPEN_CELLS))
    x0 = b.xmin + math.floor((x0 - b.xmin) / step) * step  # on the site's own raster
    y0 = b.ymin + math.floor((y0 - b.ymin) / step) * step
    xs = np.arange(x0 + step / 2, x1, step)
    ys = np.arange(y0 + step / 2, y1, step)
    gx, gy = np.meshgrid(xs, ys)
    x, y = gx.ravel(), gy.ravel()
    d = np.full(x.shape, np.inf)
    for a in site.aisles:
        d = np.minimum(d, segment_distance_m(x, y, a) - a.width_m / 2.0)
    zone = [site.zone_at(float(px), float(py)) for px, py in zip(x, y, strict=True)]
    zoned = np.array([z is not None for z in zone], dtype=bool)
    in_open = np.array([z is not None and z.name in open_zones for z in zone], dtype=bool)
    far = (zoned & (d > REACH_M)).reshape(gx.shape)
    grown = np.zeros_like(far)
    r = max(1, int(REACH_M // step))  # (coarse cells: at least the neighbours)
    reach_m = max(REACH_M, step)
    ny, nx = far.shape
    for di in range(-r, r + 1):
        for dj in range(-r, r + 1):
            if (di * di + dj * dj) * step * step > reach_m * reach_m:
                continue
            src = far[max(0, -di):ny - max(0, di), max(0, -dj):nx - max(0, dj)]
            grown[max(0, di):ny - max(0, -di), max(0, dj):nx - max(0, -dj)] |= src
    keep = grown.ravel() & in_open & (d > 0.0)
    return x[keep], y[keep], step


def segment_distance_m(x_m: Array, y_m: Array, a: Aisle) -> Array:
    """Distance from points to the aisle's centre line (a segment)."""
    (ax, ay), (bx, by) = a.start, a.end
    dx, dy = bx - ax, by - ay
    length2 = max(dx * dx + dy * dy, 1e-12)
    t = np.clip(((x_m - ax) * dx + (y_m - ay) * dy) / length2, 0.0, 1.0)
    out: Array = np.hypot(x_m - (ax + t * dx), y_m - (ay + t * dy))
    return out


def _zone_samples(site: Site) -> dict[str, tuple[Array, Array]]:
    b = site.bounds
    step = max(SAMPLE_M, math.sqrt((b.xmax - b.xmin) * (b.ymax - b.ymin) / MAX_SAMPLES))
    gx, gy = np.meshgrid(np.arange(b.xmin + step / 2, b.xmax, step),
                         np.arange(b.ymin + step / 2, b.ymax, step))
    x, y = gx.ravel(), gy.ravel()
    if not site.zones:
        return {"(site)": (x, y)}
    out: dict[str, tuple[Array, Array]] = {}
    for z in site.zones:
        inside = np.array([z.contains(float(px), float(py)) for px, py in zip(x, y, strict=True)],
                          dtype=bool)
        out[z.name] = (x[inside], y[inside])
    return out
