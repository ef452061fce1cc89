"""Per-emitter health: how well each AP/beacon fits its survey, and which ones have moved.

The offsets themselves are EKF states (see tracker.py); this monitor watches each emitter's
normalised innovations over a sliding horizon. An emitter that was moved after the survey keeps
disagreeing by many sigma in a way no constant offset explains: it is declared moved and no
longer used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_agent.fusion.models import Array, IntArray

NIS_HORIZON_S = 90.0
"""Averaging time of the normalised innovation: long enough to dilute a passing obstruction."""
MIN_SAMPLES = 60
"""An emitter needs this many seconds of evidence before it can be declared moved."""


@dataclass
class EmitterHealth:
    key: str
    samples: int = 0
    nis_avg: float = 1.0
    moved: bool = False
    moved_at_s: float | None = None


class ApMonitor:
    """Exponentially averaged NIS per emitter; `moved` when it stays above a threshold."""

    def __init__(self, keys: list[str], moved_nis: float) -> None:
        self.emitters = [EmitterHealth(k) for k in keys]
        self.moved_nis = moved_nis
        self.alpha = 1.0 / NIS_HORIZON_S
        self.usable = np.ones(len(keys), dtype=bool)

    def observe(self, t_s: float, idx: IntArray, nis: Array, confident: bool) -> list[int]:
        """Feed this second's NIS of the heard emitters; returns indices newly declared moved.

        Only seconds where the position is confident count, so that a lost track does not make
        every AP look moved.
        """
        newly: list[int] = []
        if not confident:
            return newly
        for i, v in zip(idx.tolist(), nis.tolist(), strict=True):
            e = self.emitters[i]
            if e.moved:
                continue
            e.samples += 1
            a = max(self.alpha, 1.0 / e.samples)
            e.nis_avg += a * (min(v, 50.0) - e.nis_avg)
            if e.samples >= MIN_SAMPLES and e.nis_avg > self.moved_nis:
                e.moved = True
                e.moved_at_s = t_s
                self.usable[i] = False
                newly.append(i)
        return newly

    def moved_keys(self) -> list[str]:
        return [e.key for e in self.emitters if e.moved]
