"""Forklift motion: tasks along the route graph with acceleration limits, slow turns and stops.

A truck alternates picking at rack locations, dropping at docks (and, in yard scenarios, trips
through a door to the yard), with short yields on the way, dwell times at each stop and the
occasional break at the parking bay. Output is a dense set of knots (t, x, y, speed).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from firmware_sim.plant import Plant

Array = npt.NDArray[np.float64]

TRUTH_HZ = 10.0
MOVING_SPEED_MPS = 0.2  # truth "moving": faster than creeping into a rack face
MAX_SPEED_MPS = 3.5  # plant speed rule for forklifts (about 12 km/h), whatever the driver


@dataclass(frozen=True)
class MotionParams:
    """Driving style and task timing. Values: typical counterbalance/reach trucks in a plant."""

    accel_mps2: float = 0.7  # loaded trucks accelerate gently (0.5-1.0 m/s^2)
    decel_mps2: float = 1.2  # normal braking, well below emergency braking
    lateral_accel_mps2: float = 0.7  # tip-over stability limits cornering speed
    turn_radius_m: float = 2.5  # a forklift turns on a tight radius
    step_m: float = 0.25  # spacing of the knots along a drive
    stop_spread_m: float = 0.3  # where a truck stops at a place varies by this (1 sigma, per axis)
    lateral_sway_m: float = 0.3  # how far off the aisle's centre line a leg may run (1 sigma)
    loaded_speed_factor: float = 0.85  # carrying a load: drivers go slower
    yield_prob_per_node: float = 0.04  # stop at a junction for a pedestrian or another truck
    yield_s: tuple[float, float] = (2.0, 8.0)
    rack_dwell_median_s: float = 30.0  # fork positioning, lifting, checking
    dock_dwell_median_s: float = 45.0
    yard_dwell_median_s: float = 60.0
    dwell_sigma: float = 0.6  # lognormal spread of dwell times
    dock_wait_prob: float = 0.15  # waiting for a trailer
    dock_wait_s: tuple[float, float] = (60.0, 240.0)
    break_every_s: float = 3600.0  # mean time between breaks
    break_s: tuple[float, float] = (300.0, 900.0)
    yard_trip_prob: float = 0.0  # share of tasks that go out to the yard


@dataclass
class Track:
    """Knots of the truck's path: piecewise linear in time between knots."""

    t: Array
    x: Array
    y: Array
    v: Array
    _heading: Array | None = field(default=None, init=False, repr=False, compare=False)

    def heading_at(self, t_s: Array) -> Array:
        """Direction of travel (radians from +x) at t; kept while the truck stands."""
        if self._heading is None:
            dx, dy = np.diff(self.x), np.diff(self.y)
            moving = np.hypot(dx, dy) > 1e-9
            h = np.where(moving, np.arctan2(dy, dx), np.nan)
            idx = np.where(moving, np.arange(len(h)), 0)
            np.maximum.accumulate(idx, out=idx)
            h = h[idx]
            self._heading = np.nan_to_num(np.append(h, h[-1:] if len(h) else [0.0]), nan=0.0)
        i = np.clip(np.searchsorted(self.t, t_s, side="right") - 1, 0, len(self.t) - 1)
        out: Array = self._heading[i]
        return out

    def at(self, t_s: Array) -> tuple[Array, Array, Array]:
        """Position and speed at arbitrary times (clamped to the track's ends)."""
        return (np.interp(t_s, self.t, self.x), np.interp(t_s, self.t, self.y),
                np.interp(t_s, self.t, self.v))


@dataclass(frozen=True)
class Truth:
    """Ground truth at 10 Hz: what truth.csv holds."""

    t: Array
    x: Array
    y: Array
    speed: Array
    moving: npt.NDArray[np.bool_]


class _Builder:
    def __init__(self, t0: float, p: tuple[float, float]) -> None:
        self.ts: list[Array] = [np.array([t0])]
        self.xs: list[Array] = [np.array([p[0]])]
        self.ys: list[Array] = [np.array([p[1]])]
        self.vs: list[Array] = [np.array([0.0])]
        self.t = t0
        self.p = p

    def stop(self, dur_s: float) -> None:
        self.t += dur_s
        self._add(np.array([self.t]), np.array([self.p[0]]), np.array([self.p[1]]),
                  np.array([0.0]))

    def _add(self, t: Array, x: Array, y: Array, v: Array) -> None:
        self.ts.append(t)
        self.xs.append(x)
        self.ys.append(y)
        self.vs.append(v)

    def drive(self, pts: list[tuple[float, float]], speeds: list[float], mp: MotionParams,
              end_offset: tuple[float, float] = (0.0, 0.0), wobble_m: float = 0.0) -> None:
        """Drive the node polyline pts, from where the truck really is (self.p, possibly off
        the node) to pts[-1] + end_offset, swaying wobble_m across the line mid-leg: drivers
        neither follow the paint nor stop on the same spot twice."""
        t, x, y, v = drive_profile(pts, speeds, mp)
        if len(t) > 1:
            s = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))))
            u = s / s[-1] if s[-1] > 0 else np.zeros(len(s))
            nx, ny = -np.gradient(y), np.gradient(x)
            norm = np.maximum(np.hypot(nx, ny), 1e-12)
            d0 = (self.p[0] - pts[0][0], self.p[1] - pts[0][1])
            sway = wobble_m * np.sin(np.pi * u)
            x = x + d0[0] * (1 - u) + end_offset[0] * u + sway * nx / norm
            y = y + d0[1] * (1 - u) + end_offset[1] * u + sway * ny / norm
            self._add(self.t + t[1:], x[1:], y[1:], v[1:])
            self.t += float(t[-1])
            self.p = (float(x[-1]), float(y[-1]))

    def track(self) -> Track:
        return Track(np.concatenate(self.ts), np.concatenate(self.xs), np.concatenate(self.ys),
                     np.concatenate(self.vs))


def _straight(a: tuple[float, float], b: tuple[float, float], v: float,
              step_m: float) -> tuple[Array, Array, Array]:
    n = max(1, math.ceil(math.dist(a, b) / step_m))
    u = np.arange(n) / n
    return a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]), np.full(n, v)


def drive_profile(pts: list[tuple[float, float]], speeds: list[float],
                  mp: MotionParams) -> tuple[Array, Array, Array, Array]:
    """Time, position and speed along a polyline from rest to rest (relative time from 0).

    Corners are rounded with an arc (the truck's turning radius, shortened where segments are
    short) driven no faster than the lateral-acceleration limit allows.
    """
    pieces: list[tuple[Array, Array, Array]] = []
    cur = pts[0]
    for k in range(len(pts) - 1):
        a, b = np.asarray(cur), np.asarray(pts[k + 1])
        v_seg = speeds[k]
        if k + 2 < len(pts):
            u_in = np.subtract(pts[k + 1], pts[k])
            u_out = np.subtract(pts[k + 2], pts[k + 1])
            l_in, l_out = float(np.linalg.norm(u_in)), float(np.linalg.norm(u_out))
            u_in, u_out = u_in / l_in, u_out / l_out
            turn = math.acos(max(-1.0, min(1.0, float(np.dot(u_in, u_out)))))
            if turn > math.radians(15):
                tan_half = math.tan(turn / 2)
                lt = min(mp.turn_radius_m * tan_half, 0.45 * l_in, 0.45 * l_out)
                r = lt / tan_half
                t_in = b - lt * u_in
                t_out = b + lt * u_out
                side = 1.0 if u_in[0] * u_out[1] - u_in[1] * u_out[0] > 0 else -1.0
                centre = t_in + r * side * np.array([-u_in[1], u_in[0]])
                pieces.append(_straight((float(a[0]), float(a[1])),
                                        (float(t_in[0]), float(t_in[1])), v_seg, mp.step_m))
                m = max(2, math.ceil(r * turn / mp.step_m))
                phi0 = math.atan2(t_in[1] - centre[1], t_in[0] - centre[0])
                phi = phi0 + side * turn * np.arange(m) / m
                v_arc = min(v_seg, speeds[k + 1], math.sqrt(mp.lateral_accel_mps2 * r))
                pieces.append((centre[0] + r * np.cos(phi), centre[1] + r * np.sin(phi),
                               np.full(m, v_arc)))
                cur = (float(t_out[0]), float(t_out[1]))
                continue
        pieces.append(_straight((float(a[0]), float(a[1])), (float(b[0]), float(b[1])), v_seg,
                                mp.step_m))
        cur = pts[k + 1]
    x = np.concatenate([p[0] for p in pieces] + [np.array([pts[-1][0]])])
    y = np.concatenate([p[1] for p in pieces] + [np.array([pts[-1][1]])])
    vm = np.concatenate([p[2] for p in pieces] + [np.array([0.0])])
    ds = np.hypot(np.diff(x), np.diff(y))
    vm[0] = 0.0
    v = vm.copy()
    for i in range(1, len(v)):
        v[i] = min(v[i], math.sqrt(v[i - 1] ** 2 + 2 * mp.accel_mps2 * ds[i - 1]))
    for i in range(len(v) - 2, -1, -1):
        v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2 * mp.decel_mps2 * ds[i]))
    dt = 2 * ds / np.maximum(v[:-1] + v[1:], 1e-3)
    t = np.concatenate(([0.0], np.cumsum(dt)))
    return t, x, y, v


def plan_track(plant: Plant, mp: MotionParams, rng: np.random.Generator, t0: float,
               duration_s: float, speed_factor: float = 1.0,
               start_node: int | None = None) -> Track:
    """A shift of tasks from t0 for at least duration_s seconds."""
    g = plant.graph
    node = plant.park if start_node is None else start_node
    b = _Builder(t0, g.nodes[node])
    end = t0 + duration_s
    next_break = t0 + rng.uniform(0.3, 1.5) * mp.break_every_s
    b.stop(rng.uniform(5.0, 30.0))

    def dwell(median_s: float) -> float:
        return float(np.clip(median_s * math.exp(mp.dwell_sigma * rng.standard_normal()),
                             0.25 * median_s, 5 * median_s))

    def go(dst: int, loaded: bool) -> None:
        nonlocal node
        path = g.shortest_path(node, dst)
        factor = speed_factor * float(rng.normal(1.0, 0.04)) * (
            mp.loaded_speed_factor if loaded else 1.0)
        leg = [path[0]]
        for k in range(1, len(path)):
            leg.append(path[k])
            last = k == len(path) - 1
            if last or rng.random() < mp.yield_prob_per_node:
                pts = [g.nodes[i] for i in leg]
                speeds = [min(g.edge_speed(i, j) * factor, MAX_SPEED_MPS)
                          for i, j in itertools.pairwise(leg)]
                off = np.clip(rng.normal(0.0, mp.stop_spread_m, 2), -0.8, 0.8)
                sway = float(np.clip(rng.normal(0.0, mp.lateral_sway_m), -0.8, 0.8))
                b.drive(pts, speeds, mp, (float(off[0]), float(off[1])), sway)
                if not last:
                    b.stop(rng.uniform(*mp.yield_s))
                leg = [path[k]]
        node = dst

    while b.t < end:
        if b.t >= next_break:
            go(plant.park, False)
            b.stop(rng.uniform(*mp.break_s))
            next_break = b.t + rng.exponential(mp.break_every_s)
            continue
        if plant.yard_spots and rng.random() < mp.yard_trip_prob:
            go(int(rng.choice(plant.docks)), False)
            go(int(rng.choice(plant.yard_spots)), False)
            b.stop(dwell(mp.yard_dwell_median_s))
            go(int(rng.choice(plant.docks)), True)
            b.stop(dwell(mp.dock_dwell_median_s))
            continue
        go(int(rng.choice(plant.racks)), False)
        b.stop(dwell(mp.rack_dwell_median_s))
        if rng.random() < 0.25:  # relocation to another rack
            go(int(rng.choice(plant.racks)), True)
            b.stop(dwell(mp.rack_dwell_median_s))
            continue
        go(int(rng.choice(plant.docks)), True)
        if rng.random() < mp.dock_wait_prob:
            b.stop(rng.uniform(*mp.dock_wait_s))
        b.stop(dwell(mp.dock_dwell_median_s))
    return b.track()


def truth_at_10hz(track: Track, t0: float, duration_s: float) -> Truth:
    n = round(duration_s * TRUTH_HZ)
    t = t0 + np.arange(n) / TRUTH_HZ
    x, y, v = track.at(t)
    return Truth(t, x, y, v, v >= MOVING_SPEED_MPS)
