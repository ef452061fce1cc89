"""Scoring of estimates against ground truth, shared by benchmarks/accuracy.py and the sim tests.

Errors are taken at each estimate's whole second against the 10 Hz truth; zones come from the true
position. The static CRB is evaluated per second at the true position from the emitters heard in
that second, with their true (not surveyed) parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_agent.estimate import Estimate
from edge_agent.fusion.crb import crb_rmse_m
from edge_agent.fusion.models import Array
from edge_agent.observations import BleObs, GnssFix, Observation, WifiObs
from edge_agent.site import Site

WARMUP_S = 15.0
"""Availability is counted after this warm-up, as the targets define it."""
RECEIVER_HEIGHT_M = 2.0
CHORD_S = 5
"""Distance as the heatmap accumulator counts it: mean speed along 5 s chords."""


@dataclass
class Truth:
    t: Array
    x: Array
    y: Array
    speed: Array
    moving: Array

    def at(self, t_s: Array) -> tuple[Array, Array, Array]:
        """Truth (x, y, moving) at the given times (nearest earlier 10 Hz sample)."""
        k = np.clip(np.searchsorted(self.t, t_s + 1e-6) - 1, 0, len(self.t) - 1)
        return self.x[k], self.y[k], self.moving[k].astype(bool)


@dataclass
class Score:
    n: int = 0
    rmse_m: float = float("nan")
    p50_m: float = float("nan")
    p95_m: float = float("nan")
    availability: float = float("nan")
    zones: dict[str, tuple[int, float, float, float]] = field(default_factory=dict)

    def as_row(self) -> tuple[float, float, float, float]:
        return (self.rmse_m, self.p50_m, self.p95_m, self.availability)


def _stats(err: Array) -> tuple[int, float, float, float]:
    if err.size == 0:
        return (0, float("nan"), float("nan"), float("nan"))
    return (int(err.size), float(np.sqrt(np.mean(err ** 2))), float(np.percentile(err, 50)),
            float(np.percentile(err, 95)))


def score(site: Site, truth: Truth, estimates: Sequence[Estimate],
          mask_t: Iterable[float] | None = None) -> Score:
    """RMSE, p50, p95 over valid estimates (optionally only at times in mask_t), per zone, and
    availability: the share of whole seconds after warm-up that have a valid estimate."""
    t0 = float(truth.t[0])
    t1 = float(truth.t[-1])
    est = [e for e in estimates if e.valid]
    allowed = set(mask_t) if mask_t is not None else None
    if allowed is not None:
        est = [e for e in est if e.t in allowed]
    s = Score()
    if est:
        te = np.array([e.t for e in est])
        tx, ty, _ = truth.at(te)
        err = np.hypot(np.array([e.x_m for e in est]) - tx, np.array([e.y_m for e in est]) - ty)
        s.n, s.rmse_m, s.p50_m, s.p95_m = _stats(err)
        names = [_zone_name(site, float(a), float(b)) for a, b in zip(tx, ty, strict=True)]
        for z in sorted(set(names)):
            sel = np.array([nm == z for nm in names])
            s.zones[z] = _stats(err[sel])
    seconds = [float(k) for k in range(math.ceil(t0 + WARMUP_S), math.floor(t1) + 1)]
    if allowed is not None:
        seconds = [k for k in seconds if k in allowed]
    have = {e.t for e in estimates if e.valid}
    s.availability = (sum(1 for k in seconds if k in have) / len(seconds)) if seconds else 1.0
    return s


def _zone_name(site: Site, x: float, y: float) -> str:
    z = site.zone_at(x, y)
    return z.name if z is not None else "(none)"


def gnss_seconds(observations: Iterable[Observation], site: Site, truth: Truth) -> set[float]:
    """Whole seconds outdoors whose epoch contains a GNSS fix (where 'GNSS is available')."""
    ks = {float(math.ceil(o.t)) for o in observations if isinstance(o, GnssFix)}
    out = set()
    for k in ks:
        x, y, _ = truth.at(np.array([k]))
        if not site.is_indoor(float(x[0]), float(y[0])):
            out.add(k)
    return out


def crb_per_second(true_site: Site, truth: Truth, observations: Iterable[Observation],
                   wifi_sigma_db: float, ble_sigma_db: float) -> dict[float, float]:
    """Static CRB (RMS metres) per whole second from the emitters heard in (t - 1, t]."""
    heard: dict[float, set[tuple[int, str]]] = {}
    for o in observations:
        if isinstance(o, WifiObs):
            heard.setdefault(float(math.ceil(o.t)), set()).add((0, o.bssid))
        elif isinstance(o, BleObs):
            heard.setdefault(float(math.ceil(o.t)), set()).add((1, o.beacon_id))
    wifi = {a.bssid: a for a in true_site.wifi_aps}
    ble = {b.beacon_id: b for b in true_site.ble_beacons}
    out: dict[float, float] = {}
    for k, keys in heard.items():
        rows = []
        for kind, key in keys:
            e = wifi.get(key) if kind == 0 else ble.get(key)
            if e is not None:
                rows.append((e.x, e.y, e.z - RECEIVER_HEIGHT_M, e.path_loss_exponent,
                             wifi_sigma_db if kind == 0 else ble_sigma_db))
        if not rows:
            continue
        a = np.array(rows)
        x, y, _ = truth.at(np.array([k]))
        out[k] = crb_rmse_m(float(x[0]), float(y[0]), a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])
    return out


def crb_rms(bounds: dict[float, float], times: Iterable[float] | None = None) -> float:
    """RMS of the per-second bounds (over the given times), ignoring unbounded seconds."""
    vals = [v for k, v in bounds.items() if (times is None or k in times) and math.isfinite(v)]
    return float(np.sqrt(np.mean(np.square(vals)))) if vals else float("nan")


def motion_figures(truth: Truth, estimates: Sequence[Estimate]) -> dict[str, float]:
    """Moving share (estimated vs true) and distance (estimated vs true) over valid seconds."""
    est = [e for e in estimates if e.valid]
    if len(est) < 2:
        return {}
    te = np.array([e.t for e in est])
    _, _, mv = truth.at(te)
    est_moving = np.array([e.moving for e in est])
    xs = np.array([e.x_m for e in est])
    ys = np.array([e.y_m for e in est])
    step = np.hypot(np.diff(xs), np.diff(ys))
    est_dist = float(np.sum(step[est_moving[1:]]))
    # as the heatmap counts it: mean speed over a 5 s chord (jitter averages out)
    c = CHORD_S
    chord = np.zeros_like(step)
    if len(xs) > c:
        chord[c - 1:] = np.hypot(xs[c:] - xs[:-c], ys[c:] - ys[:-c]) / c
        chord[:c - 1] = step[:c - 1]
    chord_dist = float(np.sum(chord[est_moving[1:]]))
    sel = (truth.t >= te[0]) & (truth.t <= te[-1])
    true_dist = float(np.sum(np.hypot(np.diff(truth.x[sel]), np.diff(truth.y[sel]))))
    return {"moving_share_true": float(mv.mean()), "moving_share_est": float(est_moving.mean()),
            "moving_agree": float((mv == est_moving).mean()), "distance_true_m": true_dist,
            "distance_est_m": est_dist, "distance_chord_m": chord_dist}
