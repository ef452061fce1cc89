"""Doors in the exterior wall, inferred from the aisles, and how much wall a radio path crosses.

site.json has no doors, but trucks only leave the hall through them, and a drivable aisle that
crosses from an indoor zone into an outdoor one crosses the wall at a door. A radio path between
the hall and the yard that passes through such an opening loses far less than one through the
wall (the simulator's hall: 12 dB through the wall, 2 dB through an open dock door). Without
doors a truck standing in a doorway fits both sides of the wall, and the wall loss learnt from
the yard by the doors collapses towards the door's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_agent.fusion.models import Array, IntArray
from edge_agent.site import Site

DOOR_HEIGHT_M = 4.5
"""Dock and roller doors are 4-5 m tall: a path from a ceiling AP passes above the opening unless
the receiver is close to it."""
DOOR_WALL_SHARE = 0.5
"""Through a door's opening a path keeps this share of the wall's loss: doors are closed part of
the time, and an open one still has its frame and curtain (the simulator's open door: 2 of 12
dB). Mean hall RMSE, 6 scenarios x 4 seeds x 20 min: 6.85 / 6.81 / 6.79 m for 0.3 / 0.5 / 0.7;
0.2 let a truck standing in a doorway wander +-3 m across it."""
DOOR_CHUNK_CELLS = 2_000_000
"""Doors x receivers x emitters evaluated at once (16 MB per temporary at most)."""
_SAMPLE_M = 0.5
_BISECT_STEPS = 12  # 0.5 m / 2^12: the crossing to about 0.1 mm
_SAME_DOOR_M = 2.0


@dataclass(frozen=True)
class Door:
    """An opening where an aisle crosses the boundary between an indoor and an outdoor zone."""

    x_m: float
    y_m: float
    half_width_m: float
    height_m: float = DOOR_HEIGHT_M


def doors_from_aisles(site: Site) -> tuple[Door, ...]:
    """Every point where an aisle's centre line passes from indoors to outdoors, as wide as the
    aisle (two aisles meeting in one doorway give one door, the wider)."""
    doors: list[Door] = []
    for a in site.aisles:
        (x0, y0), (x1, y1) = a.start, a.end
        n = max(1, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / _SAMPLE_M)))
        inside = [site.is_indoor(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n)
                  for i in range(n + 1)]
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
            door = Door(x0 + (x1 - x0) * u, y0 + (y1 - y0) * u, a.width_m / 2)
            near = [j for j, d in enumerate(doors)
                    if np.hypot(d.x_m - door.x_m, d.y_m - door.y_m) < _SAME_DOOR_M]
            if not near:
                doors.append(door)
            elif door.half_width_m > doors[near[0]].half_width_m:
                doors[near[0]] = door
    return tuple(doors)


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
        self._door_x, self._door_y, self._door_hw2, self._door_h = (
            np.array(v, dtype=np.float64).reshape(-1, 1, 1) for v in (
                [d.x_m for d in doors], [d.y_m for d in doors],
                [d.half_width_m ** 2 for d in doors], [d.height_m for d in doors]))

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
        dx = ex[None, :] - rx
        dy = ey[None, :] - ry
        length2 = np.maximum(dx * dx + dy * dy, 1e-9)
        # where each path passes each door: the nearest point to the door's centre (door, M, K),
        # a few doors at a time (a plan with many doors must not need gigabytes)
        via = np.zeros(share.shape, dtype=bool)
        step = max(1, DOOR_CHUNK_CELLS // max(share.size, 1))
        for j in range(0, len(self.doors), step):
            door_x, door_y = self._door_x[j:j + step], self._door_y[j:j + step]
            u = np.clip(((door_x - rx) * dx + (door_y - ry) * dy) / length2, 0.0, 1.0)
            gx = rx + u * dx - door_x
            gy = ry + u * dy - door_y
            via |= ((gx * gx + gy * gy <= self._door_hw2[j:j + step])
                    & (self.rx_height_m + u * dz[None, :] <= self._door_h[j:j + step])).any(axis=0)
        out: Array = np.where((share > 0) & via, self.door_share, share)
        return out
