"""Per-emitter health: does each AP/beacon still hang where the survey says?

The offsets themselves are EKF states (see tracker.py). This module searches, per emitter, over
candidate positions on a coarse grid: for each it accumulates the residuals of the per-second RSSI
at the tracked truck position, with the emitter's offset profiled out (so a radio that is merely
weaker does not look moved). An emitter whose best candidate fits much better than its surveyed
position, and lies far from it, has been moved: it is reported and no longer used. A best spot on
the edge of the search area is not taken as a move: it means "further than anything", what an
emitter that fades faster than its survey says looks like (sim: false moves to the corners).
The tracker hands the search its learnt path-loss exponents as they improve (`n`); the sums
already taken keep the exponents of their time, and fade with the rest of the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.fusion.models import Array, IntArray

MIN_SAMPLES = 60
"""An emitter needs this many confident seconds of driving before it can be declared moved."""
FORGET_PER_SAMPLE = 0.998
"""Evidence fades with a time constant of about 500 samples (15-20 minutes of driving), so a
recent move is not outvoted by old evidence."""
MOVED_MIN_DISTANCE_M = 10.0
"""Closer than this to the survey, a better-fitting spot is shadowing, not a move."""
MOVED_LLR = 50.0
"""Log-likelihood ratio (best spot vs surveyed spot) that declares a move. Seconds are not
independent (shadowing is shared by neighbouring places), so this is far above a nominal 1e-9."""
RESIDUAL_CLIP_DB = 15.0
"""Beyond this a residual is an outlier (a truck parked in front of the AP), not geometry."""
RESCALE_BELOW = 1e-150
"""The forgetting scale is folded back into the sums before it underflows (after ~170 000 s)."""


@dataclass
class EmitterHealth:
    key: str
    samples: float = 0.0
    llr: float = 0.0
    best_xy: tuple[float, float] | None = None
    moved: bool = False
    moved_at_s: float | None = None


class ApMonitor:
    """Moved-emitter search on candidate positions; `usable` masks the emitters still trusted."""

    def __init__(self, keys: list[str], ex_m: Array, ey_m: Array, ez_m: Array, p1m_dbm: Array,
                 n: Array, cand_x_m: Array, cand_y_m: Array, rx_height_m: float,
                 allowed: npt.NDArray[np.bool_] | None = None,
                 edge: npt.NDArray[np.bool_] | None = None) -> None:
        """`allowed` (emitters x candidates): where each emitter may have been moved to (an AP
        in the hall stays in the hall); default everywhere."""
        self.emitters = [EmitterHealth(k) for k in keys]
        self.usable = np.ones(len(keys), dtype=bool)
        # candidate 0 of every emitter is its surveyed position
        self.cx = np.concatenate([ex_m[:, None], np.broadcast_to(cand_x_m, (len(keys),
                                                                           cand_x_m.size))], 1)
        self.cy = np.concatenate([ey_m[:, None], np.broadcast_to(cand_y_m, (len(keys),
                                                                           cand_y_m.size))], 1)
        self.allowed = np.ones(self.cx.shape, dtype=bool)
        if allowed is not None:
            self.allowed[:, 1:] = allowed
        self.edge = np.zeros(self.cx.shape[1], dtype=bool)
        if edge is not None:
            self.edge[1:] = edge
        self.dz2 = ((ez_m - rx_height_m) ** 2)[:, None]
        self.p1m = p1m_dbm
        self.n = n
        shape = self.cx.shape
        self.s1 = np.zeros(shape)
        self.s2 = np.zeros(shape)
        self.cnt = np.zeros(len(keys))
        self._scale = 1.0

    def observe(self, t_s: float, idx: IntArray, z_dbm: Array, wall_db: Array, x_m: float,
                y_m: float, sigma_db: Array) -> list[int]:
        """One confident second: heard emitters (idx), their mean RSSI and wall loss at the truck
        position (x, y). Returns the indices newly declared moved."""
        # Forgetting is a scale on the stored sums (true = stored x scale): multiplying every
        # candidate of every emitter each second cost more than the rest of the search.
        self._scale *= FORGET_PER_SAMPLE
        if self._scale < RESCALE_BELOW:
            for a in (self.s1, self.s2, self.cnt):
                a *= self._scale
            self._scale = 1.0
        keep = self.usable[idx]
        idx = idx[keep]
        if idx.size == 0:
            return []
        d2 = (self.cx[idx] - x_m) ** 2 + (self.cy[idx] - y_m) ** 2 + self.dz2[idx]
        pred = self.p1m[idx, None] - 5.0 * self.n[idx, None] * np.log10(np.maximum(d2, 1.0)) \
            - wall_db[keep, None]
        r = np.clip(z_dbm[keep, None] - pred, -RESIDUAL_CLIP_DB, RESIDUAL_CLIP_DB)
        g = self._scale
        self.s1[idx] += r / g
        self.s2[idx] += r * r / g
        self.cnt[idx] += 1.0 / g
        cnt = self.cnt[idx] * g
        for i, c in zip(idx.tolist(), cnt.tolist(), strict=True):
            self.emitters[i].samples = c
        ready = cnt >= MIN_SAMPLES
        if not ready.any():
            return []
        ii = idx[ready]
        s1 = self.s1[ii] * g
        # offset profiled out: SSE about the mean residual, per candidate
        sse = np.where(self.allowed[ii], self.s2[ii] * g - s1 * s1 / cnt[ready, None], np.inf)
        best = np.argmin(sse[:, 1:], axis=1) + 1
        rows = np.arange(ii.size)
        llr = (sse[rows, 0] - sse[rows, best]) / (2.0 * sigma_db[keep][ready] ** 2)
        bx = self.cx[ii, best]
        by = self.cy[ii, best]
        far = np.hypot(bx - self.cx[ii, 0], by - self.cy[ii, 0])
        newly: list[int] = []
        for j, i in enumerate(ii.tolist()):
            e = self.emitters[i]
            e.llr = float(llr[j])
            e.best_xy = (float(bx[j]), float(by[j]))
            if e.llr > MOVED_LLR and far[j] > MOVED_MIN_DISTANCE_M and not self.edge[best[j]]:
                e.moved = True
                e.moved_at_s = t_s
                self.usable[i] = False
                newly.append(i)
        return newly

    def moved_keys(self) -> list[str]:
        return [e.key for e in self.emitters if e.moved]
