"""Moving / idle from the signals themselves, independent of the position filter.

Primary cue, fast fading: multipath decorrelates over half a wavelength (6 cm at 2.4 GHz). Two
beacons of one AP 0.1 s apart differ by the full fading spread (tens of dB^2) on a truck moving at
walking pace, but by about 1 dB^2 on a standing one (only people around it move). The mean squared
difference of such pairs over the last seconds separates the two by an order of magnitude.
Fallback when too few pairs (BLE only, sparse APs, the yard): the receiver's speed over ground
when a confident GNSS fix gives it (Doppler: independent of the position error), else a two-window
drift test of the per-second means (and GNSS positions), against each channel's own scatter.
Being independent of the filter is what lets idle freeze the position without a feedback loop.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from edge_agent.fusion.models import Array, IntArray

FADING_WINDOW_S = 2
"""Seconds of frame pairs pooled per decision: one second can hold only a handful of pairs."""
MIN_PAIRS = 4
"""Fewer pairs than this in the window: fall back to the drift test."""
MIN_CHANNELS = 2
"""Fewer channels heard in both halves than this: no decision, keep the previous state."""
GNSS_SPEED_START_MPS = 0.8
GNSS_SPEED_STOP_MPS = 0.4
"""Speed over ground (mean of the last two fixes) to declare moving / idle. Standing receivers
report up to 0.6 m/s (tests/data/real-captures: bu353s4 0.59, rx210 0.35, the rest <= 0.3);
a forklift that moves does 1-3 m/s."""
GNSS_SPEED_MAX_AGE_S = 2
"""Seconds a speed counts for: a fix a second is the norm, GNSS is often lost indoors."""
MIN_SCATTER_DB = 0.7
"""Floor of a channel's per-second scatter: integer-dBm quantisation alone gives about 0.3 dB."""


class MotionDetector:
    """Two-window drift test with hysteresis; `update` once per second, returns moving."""

    def __init__(self, n_channels: int, half_s: int, start_stat: float, stop_stat: float,
                 fading_start_db2: float, fading_stop_db2: float) -> None:
        self.n = n_channels
        self.fading_start_db2 = fading_start_db2
        self.fading_stop_db2 = fading_stop_db2
        self.fading_db2 = 0.0
        self._pairs: deque[tuple[float, int]] = deque(maxlen=FADING_WINDOW_S)
        self.half_s = half_s
        self.start_stat = start_stat
        self.stop_stat = stop_stat
        self.moving = False
        self.stat = 0.0
        self._hist: deque[tuple[IntArray, Array, Array | None, float]] = deque(maxlen=2 * half_s)
        self._speeds: deque[float | None] = deque(maxlen=GNSS_SPEED_MAX_AGE_S)

    def update(self, idx: IntArray, z_dbm: Array, gnss_xy: Array | None,
               gnss_sigma_m: float, pair_sum_db2: float = 0.0, pairs: int = 0,
               gnss_speed_mps: float | None = None) -> bool:
        """Feed one second: heard channel indices with their mean RSSI, the GNSS position (or
        None) with its sigma, the sum of squared differences of `pairs` close frame pairs, and a
        confident fix's speed over ground (or None); returns the moving flag after hysteresis."""
        self._hist.append((idx, z_dbm, gnss_xy, gnss_sigma_m))
        self._pairs.append((pair_sum_db2, pairs))
        self._speeds.append(gnss_speed_mps)
        n_pairs = sum(p[1] for p in self._pairs)
        if n_pairs >= MIN_PAIRS:
            self.fading_db2 = sum(p[0] for p in self._pairs) / n_pairs
            if self.moving and self.fading_db2 < self.fading_stop_db2:
                self.moving = False
            elif not self.moving and self.fading_db2 > self.fading_start_db2:
                self.moving = True
            return self.moving
        speeds = [v for v in self._speeds if v is not None]
        if speeds:
            speed = sum(speeds) / len(speeds)
            if self.moving and speed < GNSS_SPEED_STOP_MPS:
                self.moving = False
            elif not self.moving and speed > GNSS_SPEED_START_MPS:
                self.moving = True
            return self.moving
        if len(self._hist) < 2 * self.half_s:
            return self.moving
        h = list(self._hist)
        a, b = h[:self.half_s], h[self.half_s:]
        stat = self._rssi_stat(a, b)
        g = self._gnss_stat(a, b)
        terms = [v for v in (stat, g) if v is not None]
        if not terms:
            return self.moving
        self.stat = max(terms)
        if self.moving and self.stat < self.stop_stat:
            self.moving = False
        elif not self.moving and self.stat > self.start_stat:
            self.moving = True
        return self.moving

    def _rssi_stat(self, a: list[tuple[IntArray, Array, Array | None, float]],
                   b: list[tuple[IntArray, Array, Array | None, float]]) -> float | None:
        sa, sa2, na = self._sums(a)
        sb, sb2, nb = self._sums(b)
        both = (na >= 2) & (nb >= 2)
        if int(both.sum()) < MIN_CHANNELS:
            return None
        ma, mb = sa[both] / na[both], sb[both] / nb[both]
        va = np.maximum(sa2[both] / na[both] - ma * ma, 0.0) * na[both] / (na[both] - 1)
        vb = np.maximum(sb2[both] / nb[both] - mb * mb, 0.0) * nb[both] / (nb[both] - 1)
        var = np.maximum((va + vb) / 2.0, MIN_SCATTER_DB ** 2)
        # Ratio of sums, not mean of ratios: 3-sample variances are too noisy to divide by alone.
        return float(np.sum((ma - mb) ** 2) / np.sum(var * (1.0 / na[both] + 1.0 / nb[both])))

    def _sums(self, rows: list[tuple[IntArray, Array, Array | None, float]]
              ) -> tuple[Array, Array, Array]:
        s = np.zeros(self.n)
        s2 = np.zeros(self.n)
        c = np.zeros(self.n)
        for idx, z, _, _ in rows:
            s[idx] += z
            s2[idx] += z * z
            c[idx] += 1.0
        return s, s2, c

    @staticmethod
    def _gnss_stat(a: list[tuple[IntArray, Array, Array | None, float]],
                   b: list[tuple[IntArray, Array, Array | None, float]]) -> float | None:
        pa = [r[2] for r in a if r[2] is not None]
        pb = [r[2] for r in b if r[2] is not None]
        if len(pa) < 2 or len(pb) < 2:
            return None
        sig = max(max(r[3] for r in a + b if r[2] is not None), 0.5)
        d = np.mean(pa, axis=0) - np.mean(pb, axis=0)
        # GNSS errors are correlated over seconds: count each half as one fix, not n.
        return float(d @ d / (2.0 * 2.0 * sig * sig))
