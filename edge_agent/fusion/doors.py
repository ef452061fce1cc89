"""Doors in the exterior wall, inferred from the aisles, and how much wall a radio path crosses.

site.json has no doors, but trucks only leave the hall through them, and a drivable aisle that
crosses from an indoor zone into an outdoor one crosses the wall at a door. A radio path between
the hall and the yard that passes through such an opening loses far less than one through the
wall (the simulator's hall: 12 dB through the wall, 2 dB through an open dock door). Without
doors a truck standing in a doorway fits both sides of the wall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_agent.fusion.aisle_coverage import open_ground_zones, segment_distance_m
from edge_agent.fusion.models import Array, IntArray
from edge_agent.site import Site

DOOR_HEIGHT_M = 4.5
"""Dock and roller doors are 4-5 m tall: a path from a ceiling AP passes above the opening unless
the receiver is close to it."""
DOOR_WALL_SHARE = 0.5
"""Through a door's opening a path keeps this share of the wall's loss: an open door still has
its frame, and doors are closed part of the time (the simulator's open door: 2 of 12 dB). Mean
hall RMSE, 6 scenarios x 4 seeds x 20 min: 6.70 / 6.71 / 6.72 / 6.76 m for 0.2 / 0.35 / 0.5 /
0.7, each step near the noise; 3 seeds x 30 min, 0.2 against 0.5: 6.16 / 6.15 m, but the median
error 0.2 m worse in every hall scenario at 0.2 (indoor_shift 1.41 / 1.21 m) and heatmap TV
0.214 / 0.205."""
DOOR_CHUNK_CELLS = 2_000_000
"""Doors x receivers x emitters evaluated at once: each temporary holds at most this many
values (16 MB), unless one door's receivers x emitters alone are more."""
_SAMPLE_M = 0.5
"""Aisles are scanned for crossings at this step (a crossing is then bisected) ..."""
_BISECT_STEPS = 12  # 0.5 m / 2^12: the crossing to about 0.1 mm
_BEYOND_M = (1.0, 3.0)
"""... and a crossing is a door only if the aisles go on 1-3 m into a real outdoor zone on one
side and a real indoor zone on the other: an aisle drawn up to the wall, or to the edge of the
zoned area, ends there and is no door."""
_ON_AISLE_M = 1.0
"""An aisle whose centre line passes this close to a crossing runs through it."""
DOCK_REACH_M = 3.0
"""A dead-end aisle this close to the wall of open ground is a dock stub: it leads to a door
(the simulator's stubs end 2.5 m inside; its rack aisles end 5 m inside, on a cross aisle) ..."""
DOCK_MAX_ANGLE_DEG = 30.0
"""... if it points at the wall within this of square to it."""
_SAME_DOOR_M = 2.0
"""Crossings closer than this are one doorway (two aisles drawn through one door), kept at the
wider aisle's width."""


@dataclass(frozen=True)
class Door:
    """An opening where an aisle crosses the boundary between an indoor and an outdoor zone:
    centre on the wall, half width, the wall's direction there (unit vector), height."""

    x_m: float
    y_m: float
    half_width_m: float
    wall_dx: float = 1.0
    wall_dy: float = 0.0
    height_m: float = DOOR_HEIGHT_M


def _zone_kind(site: Site, x_m: float, y_m: float) -> int:
    """1 in an indoor zone, 0 in an outdoor one, -1 in none."""
    z = site.zone_at(x_m, y_m)
    return -1 if z is None else int(z.indoor)


def _wall_direction(site: Site, x_m: float, y_m: float) -> tuple[float, float]:
    """Unit vector along the indoor zones' polygon edge nearest (x, y)."""
    best = (np.inf, 1.0, 0.0)
    for z in site.zones:
        if not z.indoor:
            continue
        pts = z.polygon
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
            ex, ey = bx - ax, by - ay
            length2 = ex * ex + ey * ey
            if length2 <= 0.0:
                continue
            u = min(max(((x_m - ax) * ex + (y_m - ay) * ey) / length2, 0.0), 1.0)
            d = float(np.hypot(ax + u * ex - x_m, ay + u * ey - y_m))
            if d < best[0]:
                n = float(np.sqrt(length2)) * (-1.0 if ex < 0 or (ex == 0 and ey < 0) else 1.0)
                best = (d, ex / n, ey / n)  # (pointing east, or north: one sign per wall)
    return best[1], best[2]


def doors_from_aisles(site: Site) -> tuple[Door, ...]:
    """Every point where the aisles run on from an indoor zone into an outdoor one, as wide as the
    aisle (two aisles through one doorway give one door, the wider)."""
    samples: list[tuple[float, float, int, int]] = []  # centre lines: x, y, zone kind, aisle
    crossings: list[tuple[float, float, float]] = []
    for ai, a in enumerate(site.aisles):
        (x0, y0), (x1, y1) = a.start, a.end
        n = max(1, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / _SAMPLE_M)))
        pts = [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n + 1)]
        inside = [site.is_indoor(x, y) for x, y in pts]
        samples += [(x, y, _zone_kind(site, x, y), ai) for x, y in pts]
        for i in range(n):
            if inside[i] == inside[i + 1]:
                continue
            lo, hi = i / n, (i + 1) / n
            for _ in range(_BISECT_STEPS):
                mid = (lo + hi) / 2
                if site.is_indoor(x0 + (x1 - x0) * mid, y0 + (y1 - y0) * mid) == inside[i]:
                    lo = mid
                else:
                    hi = mid
            u = (lo + hi) / 2
            crossings.append((x0 + (x1 - x0) * u, y0 + (y1 - y0) * u, a.width_m / 2))
    docks = _dock_doors(site)
    if not crossings and not docks:
        return ()
    sx, sy, kind, aisle = (np.array(v) for v in zip(*samples, strict=True))
    doors: list[Door] = []
    for cx, cy, hw in crossings:
        # only aisles that run through the crossing: not a yard road along the outside of
        # the wall that an indoor aisle merely ends next to
        through = np.array([float(segment_distance_m(np.array(cx), np.array(cy), a))
                            <= _ON_AISLE_M for a in site.aisles])
        d = np.hypot(sx - cx, sy - cy)
        ring = (d >= _BEYOND_M[0]) & (d <= _BEYOND_M[1]) & through[aisle]
        if not ((ring & (kind == 1)).any() and (ring & (kind == 0)).any()):
            continue
        wx, wy = _wall_direction(site, cx, cy)
        _add_door(doors, Door(cx, cy, hw, wx, wy))
    for door in docks:
        _add_door(doors, door)
    return tuple(doors)


def _add_door(doors: list[Door], door: Door) -> None:
    """Append, or merge into a door within _SAME_DOOR_M (keeping the wider)."""
    near = [j for j, o in enumerate(doors)
            if np.hypot(o.x_m - door.x_m, o.y_m - door.y_m) < _SAME_DOOR_M]
    if not near:
        doors.append(door)
    elif door.half_width_m > doors[near[0]].half_width_m:
        doors[near[0]] = door


def _dock_doors(site: Site) -> list[Door]:
    """Doors onto open ground: an aisle that dead-ends indoors within DOCK_REACH_M of the wall
    of an outdoor zone the plan leaves to open ground (aisle_coverage.open_ground_zones), and
    points at that wall (within DOCK_MAX_ANGLE_DEG of square to it), leads to a door there: the
    dock stub of a plan that draws no yard aisles. (An aisle that ends on another one, or by a
    covered yard, or along the wall, makes none.)"""
    route, open_zones = open_ground_zones(site)
    if not route or not open_zones:
        return []
    out: list[Door] = []
    for ai, a in enumerate(site.aisles):
        for end, other in ((a.end, a.start), (a.start, a.end)):
            length = float(np.hypot(end[0] - other[0], end[1] - other[1]))
            if length <= _SAMPLE_M:
                continue
            ux, uy = (end[0] - other[0]) / length, (end[1] - other[1]) / length
            # half a metre back: an end drawn on the wall line (a zone's top and right edges
            # belong to the next zone) is still inside
            ex, ey = end[0] - ux * _SAMPLE_M, end[1] - uy * _SAMPLE_M
            if not site.is_indoor(ex, ey) or any(
                    float(segment_distance_m(np.array(end[0]), np.array(end[1]), b))
                    <= b.width_m / 2.0  # on it: a junction (as route_graph joins it)
                    for bi, b in enumerate(site.aisles) if bi != ai):
                continue
            prev = 0.0
            for step in np.arange(_SAMPLE_M, DOCK_REACH_M + _SAMPLE_M + 1e-9,
                                  _SAMPLE_M).tolist():
                z = site.zone_at(ex + ux * step, ey + uy * step)
                if z is not None and z.indoor:
                    prev = step
                    continue
                if z is not None and z.name in open_zones:
                    lo, hi = prev, step
                    for _ in range(_BISECT_STEPS):
                        mid = (lo + hi) / 2
                        if site.is_indoor(ex + ux * mid, ey + uy * mid):
                            lo = mid
                        else:
                            hi = mid
                    cx, cy = ex + ux * (lo + hi) / 2, ey + uy * (lo + hi) / 2
                    wx, wy = _wall_direction(site, cx, cy)
                    if abs(ux * wx + uy * wy) <= math.sin(math.radians(DOCK_MAX_ANGLE_DEG)):
                        out.append(Door(cx, cy, a.width_m / 2.0, wx, wy))
                break
    return out


class WallModel:
    """Where the exterior wall's loss applies: between each receiver position and each emitter."""

    def __init__(self, ex_m: Array, ey_m: Array, dz_m: Array, indoor_emitter: Array,
                 rx_height_m: float, doors: tuple[Door, ...] = (),
                 door_share: float = DOOR_WALL_SHARE) -> None:
        self.ex = ex_m
        self.ey = ey_m
        self.dz = dz_m  # emitter height above the receiver
        self.indoor_emitter = indoor_emitter
        self.rx_height_m = rx_height_m
        self.doors = doors
        self.door_share = door_share
        # the doors as (door, 1, 1) columns: one pass over every door at once
        self._door_x, self._door_y, self._door_wx, self._door_wy, self._door_hw, self._door_h = (
            np.array(v, dtype=np.float64).reshape(-1, 1, 1) for v in (
                [d.x_m for d in doors], [d.y_m for d in doors], [d.wall_dx for d in doors],
                [d.wall_dy for d in doors], [d.half_width_m for d in doors],
                [d.height_m for d in doors]))

    def door_distance_m(self, x_m: Array, y_m: Array) -> Array:
        """Distance from each point to the nearest door's opening (inf without doors)."""
        out: Array = np.full(np.shape(x_m), np.inf)
        for d in self.doors:
            out = np.minimum(out, np.maximum(np.hypot(x_m - d.x_m, y_m - d.y_m)
                                             - d.half_width_m, 0.0))
        return out

    def share(self, rx_x_m: Array, rx_y_m: Array, indoor_rx: Array,
              idx: IntArray | None = None) -> Array:
        """Share of the wall's loss, receivers x emitters (idx: only these emitters): 0 on
        one side, door_share through a door's opening, else 1."""
        sel = slice(None) if idx is None else idx
        ex, ey, dz = self.ex[sel], self.ey[sel], self.dz[sel]
        share: Array = np.where(
            np.asarray(indoor_rx)[:, None] != self.indoor_emitter[sel][None, :], 1.0, 0.0)
        if not self.doors or not share.any():
            return share
        rx = np.asarray(rx_x_m, dtype=np.float64)[:, None]
        ry = np.asarray(rx_y_m, dtype=np.float64)[:, None]
        # Where each path crosses each door's wall line: through the opening if there it is
        # within the door's half width of its centre and below its top. (door, M, K), a few
        # doors at a time (a plan with many doors must not need gigabytes).
        via = np.zeros(share.shape, dtype=bool)
        step = max(1, DOOR_CHUNK_CELLS // max(share.size, 1))
        for j in range(0, len(self.doors), step):
            c = slice(j, j + step)
            dx0, dy0 = self._door_x[c], self._door_y[c]
            wx, wy = self._door_wx[c], self._door_wy[c]
            side_rx = (rx - dx0) * wy - (ry - dy0) * wx  # signed distance from the wall line
            side_em = (ex[None, :] - dx0) * wy - (ey[None, :] - dy0) * wx
            crosses = side_rx * side_em < 0.0
            u = side_rx / np.where(crosses, side_rx - side_em, 1.0)
            along = (rx + u * (ex[None, :] - rx) - dx0) * wx + (ry + u * (ey[None, :] - ry)
                                                                - dy0) * wy
            via |= (crosses & (np.abs(along) <= self._door_hw[c])
                    & (self.rx_height_m + u * dz[None, :] <= self._door_h[c])).any(axis=0)
        out: Array = np.where((share > 0) & via, self.door_share, share)
        return out
