"""Utilisation windows accumulated from estimates, on the estimates' own time, with a grace period.

Each estimate covers the time to the next one (at most MAX_HOLD_S; beyond that the time is
no-position, and beyond OFFLINE_GAP_S the agent was off: not covered at all). Time is split at
window boundaries (start = floor(t / window_s) * window_s). A window closes once estimates newer
than its end + grace_s have arrived; an estimate older than what is already committed is late:
dropped and counted (docs/heatmap.md).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

from edge_agent.estimate import Estimate
from edge_agent.heatmap.aisles import AisleSnap
from edge_agent.heatmap.grid import Grid
from edge_agent.heatmap.window import MM_PER_M, Cell, Window, from_ms, to_ms, window_id
from edge_agent.site import Site

DEFAULT_GRACE_S = 5.0
"""The tracker emits in order; 5 s covers re-ordering by a live source's buffering (a Wi-Fi
channel-hop cycle, a BLE scan batch) at the price of closing each window 5 s later."""
MAX_HOLD_S = 2.0
"""An estimate speaks for at most 2 s (two tracker periods): a longer gap is no-position time."""
OFFLINE_GAP_S = 300.0
"""No estimate for 5 min means the agent was off (restart, night): that time is not covered at all,
rather than filling hundreds of windows with no-position time."""
CELL_QUANTUM_MS = 100
"""Cells get dwell in steps of 0.1 s (the remainder of the exact total goes to the biggest cell):
a spread estimate otherwise leaves dozens of 1-5 ms cells that cost payload and say nothing."""
SPREAD_MIN_SIGMA_M = 6.0
"""Spread an estimate over cells only when its sigma is at least 6 m. Measured (docs/heatmap.md):
with a calibrated tracker of independent errors one cell is truer up to 6 m (its scatter already
blurs the map), while the tracker's lost stretches have structured errors that spreading hedges."""
DISTANCE_CHORD_S = 5.0
"""Distance is the mean speed along a 5 s chord of the track: step-by-step sums count position
jitter as travel (+50 % measured), longer chords cut corners; 5 s measured best overall."""
MAX_CHORD_SPEED_MPS = 4.0
"""... and at most this fast: a chord faster than any forklift drives (plant limits 3-3.5 m/s; the
route filter's top speed bin) is the estimate jumping between aisles, not travel. Measured
(3 seeds x 7 scenarios, per-second 5 s chords while moving, against the truth): mean |error|
3.3 % either way, worst run +12.7 % -> -8.1 % (high_bay seed 2: 10 % of its hall chords were
faster than 4.5 m/s); 3.5 m/s biases every run low (-3 to -9 %)."""
SNAP_TO_AISLES = True
"""Dwell goes on the centre line of an aisle the position is near (site.json aisles): trucks drive
them. Measured: TV -0.02 with the shipped tracker and with a calibrated 4 m one, +0.01 at 2 m."""
DEFAULT_STEP_S = 1.0
"""The tracker's period: what the very last estimate covers when no step has been seen yet."""
MAX_CACHED_MASS_POINTS = 4096
"""The tracker's mass sits on a few hundred fixed points (its route cells: 398 in a 30-minute
dense_ble run, 12 per estimate), so their grid cells are remembered: -15 ms per 30-minute replay.
Bounded (cleared when full) for a tracker whose points do not repeat."""


@dataclass
class AccumulatorStats:
    """Counters: estimates used, late ones dropped (their time was already committed), windows."""

    estimates: int = 0
    late: int = 0
    duplicates: int = 0
    windows: int = 0


@dataclass
class _Open:
    """A window being filled: cell weights in float ms, exact totals in integer ms."""

    start_ms: int
    first_ms: int
    cells: dict[Cell, list[float]] = field(default_factory=dict)  # [moving_ms, idle_ms]
    moving_ms: int = 0
    idle_ms: int = 0
    no_position_ms: int = 0
    distance_m: float = 0.0
    zones: dict[str, list[int]] = field(default_factory=dict)  # [moving_ms, idle_ms]


class WindowAccumulator:
    """Estimates in (any order within grace_s), closed Windows out.

    The keyword options are the design variants benchmarks/utilisation.py measures; the defaults
    are the measured choices (docs/heatmap.md).
    """

    def __init__(self, site: Site, agent: str, cell_m: float = 2.0, window_s: float = 60.0,
                 grace_s: float = DEFAULT_GRACE_S, *, spread: bool = True,
                 spread_scale: float = 1.0, spread_min_sigma_m: float = SPREAD_MIN_SIGMA_M,
                 midpoint: bool = True,
                 distance_from_speed: bool = False,
                 distance_chord_s: float = DISTANCE_CHORD_S,
                 snap_to_aisles: bool = SNAP_TO_AISLES,
                 snap_min_sigma_m: float = 0.0, use_mass: bool = True) -> None:
        if not window_s >= 1.0:
            raise ValueError(f"window_s must be at least 1 s, got {window_s}")
        if not grace_s >= 0.0:
            raise ValueError(f"grace_s must not be negative, got {grace_s}")
        self.site = site
        self.agent = agent
        self.grid = Grid.for_site(site, cell_m)
        self.window_ms = to_ms(window_s)
        self.grace_ms = to_ms(grace_s)
        self.spread = spread
        self.spread_scale = spread_scale
        self.spread_min_sigma_m = spread_min_sigma_m
        self.use_mass = use_mass
        self.midpoint = midpoint
        self.distance_from_speed = distance_from_speed
        self.distance_chord_ms = to_ms(distance_chord_s)
        self.aisles = AisleSnap(site) if snap_to_aisles and site.aisles else None
        self.snap_min_sigma_m = snap_min_sigma_m
        self._track: deque[Estimate] = deque()  # recent valid estimates, no gap: the chord
        self.stats = AccumulatorStats()
        self._prev: Estimate | None = None  # start of the interval not yet attributed
        self._pending: list[tuple[int, Estimate]] = []  # newer estimates, sorted, within grace
        self._max_seen_ms: int | None = None
        self._step_ms = to_ms(DEFAULT_STEP_S)
        self._open: dict[int, _Open] = {}
        self._mass_cells: dict[tuple[float, float], Cell] = {}  # see MAX_CACHED_MASS_POINTS

    # --- public ------------------------------------------------------------------------------

    def add(self, est: Estimate) -> list[Window]:
        """Take one estimate; return the windows this closes (oldest first)."""
        if not math.isfinite(est.t):
            self.stats.late += 1
            return []
        t_ms = to_ms(est.t)
        if self._prev is not None and t_ms <= to_ms(self._prev.t):
            if t_ms == to_ms(self._prev.t):
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return []
        i = bisect.bisect_left(self._pending, t_ms, key=lambda p: p[0])
        if i < len(self._pending) and self._pending[i][0] == t_ms:
            self.stats.duplicates += 1
            return []
        self._pending.insert(i, (t_ms, est))
        self.stats.estimates += 1
        if self._max_seen_ms is None or t_ms > self._max_seen_ms:
            self._max_seen_ms = t_ms
        self._commit(self._max_seen_ms - self.grace_ms)
        return self._close(self._frontier_ms())

    def flush(self) -> list[Window]:
        """End of data: attribute everything, the last estimate covering one step; close all."""
        self._commit(None)
        if self._prev is not None:
            a = to_ms(self._prev.t)
            self._attribute(self._prev, a + self._step_ms, None)
            self._prev = None
        self._max_seen_ms = None
        return self._close(None)

    # --- committing time -----------------------------------------------------------------------

    def _frontier_ms(self) -> int | None:
        return None if self._prev is None else to_ms(self._prev.t)

    def _commit(self, watermark_ms: int | None) -> None:
        """Attribute the intervals between estimates at or before the watermark (None: all)."""
        while self._pending and (watermark_ms is None or self._pending[0][0] <= watermark_ms):
            t_ms, nxt = self._pending.pop(0)
            if self._prev is not None:
                self._attribute(self._prev, t_ms, nxt)
            self._prev = nxt

    def _attribute(self, e: Estimate, end_ms: int, nxt: Estimate | None) -> None:
        """Book [e.t, end) to windows: position time held at most MAX_HOLD_S, then no-position."""
        a = to_ms(e.t)
        gap = end_ms - a
        hold_ms = to_ms(MAX_HOLD_S)
        if nxt is not None and gap <= hold_ms:
            self._step_ms = gap
        held_end = a + min(gap, hold_ms)
        covered_end = held_end if gap > to_ms(OFFLINE_GAP_S) else end_ms
        x, y = e.x_m, e.y_m
        dist = 0.0
        has_pos = _has_position(e)
        near = nxt is not None and _has_position(nxt) and gap <= hold_ms
        if not (has_pos and near):
            self._track.clear()
        if has_pos and nxt is not None and near:
            if self.midpoint:
                x, y = (e.x_m + nxt.x_m) / 2.0, (e.y_m + nxt.y_m) / 2.0
            chord_m = self._chord_step_m(e, nxt)  # kept up to date while idle too
            if e.moving:
                dist = e.speed_mps * gap / 1000.0 if self.distance_from_speed else chord_m
        if has_pos:
            if self.aisles is not None and not e.sigma_m < self.snap_min_sigma_m:
                x, y = self.aisles.snap(x, y)
            weights = self._weights(e, x, y)
            zone_names = [z.name for z in self.site.zones if z.contains(x, y)]
            self._book_position(a, held_end, e.moving, weights, zone_names, dist)
        else:
            self._book_none(a, held_end)
        self._book_none(held_end, covered_end)

    def _chord_step_m(self, e: Estimate, nxt: Estimate) -> float:
        """Distance of the step e -> nxt as the mean speed along a chord of the last
        distance_chord_s seconds times the step: jitter averages out over the chord."""
        track = self._track
        if not track or track[-1] is not e:
            track.append(e)
        t_end = to_ms(nxt.t)
        while len(track) > 1 and t_end - to_ms(track[1].t) >= self.distance_chord_ms:
            track.popleft()
        first = track[0]
        span_ms = t_end - to_ms(first.t)
        if span_ms <= 0:
            return 0.0
        chord = math.hypot(nxt.x_m - first.x_m, nxt.y_m - first.y_m)
        speed_m_per_ms = min(chord / span_ms, MAX_CHORD_SPEED_MPS / 1000.0)
        return speed_m_per_ms * (t_end - to_ms(e.t))

    def _weights(self, e: Estimate, x: float, y: float) -> list[tuple[Cell, float]]:
        if self.spread and self.use_mass and e.mass:
            # The tracker's own distribution (on the aisles): truer than a Gaussian around a
            # mean that may lie between two aisles.
            acc: dict[Cell, float] = {}
            cell_of = self._mass_cells
            if len(cell_of) >= MAX_CACHED_MASS_POINTS:
                cell_of.clear()
            for mx, my, w in e.mass:
                cell = cell_of.get((mx, my))
                if cell is None:
                    cell = cell_of[mx, my] = self.grid.index(mx, my)
                acc[cell] = acc.get(cell, 0.0) + w
            return list(acc.items())
        if not self.spread or e.sigma_m < self.spread_min_sigma_m:
            return [(self.grid.index(x, y), 1.0)]
        sx = math.sqrt(max(e.cov_m2[0], 0.0)) * self.spread_scale
        sy = math.sqrt(max(e.cov_m2[2], 0.0)) * self.spread_scale
        return self.grid.spread(x, y, sx, sy)

    def _segments(self, a: int, b: int) -> list[tuple[_Open, int]]:
        """[a, b) cut at window boundaries: (window, ms in it)."""
        out = []
        w = self.window_ms
        while a < b:
            start = (a // w) * w
            seg_end = min(b, start + w)
            win = self._open.get(start)
            if win is None:
                win = self._open[start] = _Open(start, a)
            out.append((win, seg_end - a))
            a = seg_end
        return out

    def _book_position(self, a: int, b: int, moving: bool, weights: list[tuple[Cell, float]],
                       zone_names: list[str], dist_m: float) -> None:
        slot = 0 if moving else 1
        for win, ms in self._segments(a, b):
            if moving:
                win.moving_ms += ms
            else:
                win.idle_ms += ms
            win.distance_m += dist_m * ms / (b - a)
            for cell, wgt in weights:
                win.cells.setdefault(cell, [0.0, 0.0])[slot] += ms * wgt
            for name in zone_names:
                win.zones.setdefault(name, [0, 0])[slot] += ms

    def _book_none(self, a: int, b: int) -> None:
        for win, ms in self._segments(a, b):
            win.no_position_ms += ms

    # --- closing ---------------------------------------------------------------------------------

    def _close(self, frontier_ms: int | None) -> list[Window]:
        done = sorted(s for s in self._open
                      if frontier_ms is None or s + self.window_ms <= frontier_ms)
        out = [self._finish(self._open.pop(s)) for s in done]
        self.stats.windows += len(out)
        return out

    def _finish(self, o: _Open) -> Window:
        keys = sorted(o.cells)
        moving = _apportion(o.moving_ms, [o.cells[k][0] for k in keys])
        idle = _apportion(o.idle_ms, [o.cells[k][1] for k in keys])
        cells = {k: (from_ms(m + i), from_ms(m)) for k, m, i in zip(keys, moving, idle, strict=True)
                 if m + i > 0}
        start = from_ms(o.start_ms)
        end = from_ms(o.start_ms + self.window_ms)
        g = self.grid
        return Window(
            id=window_id(self.site.site, self.agent, start, end, from_ms(o.first_ms)),
            site=self.site.site, agent=self.agent, start=start, end=end, cell_m=g.cell_m,
            x0=g.x0, y0=g.y0, nx=g.nx, ny=g.ny, cells=cells,
            dwell_s=from_ms(o.moving_ms + o.idle_ms), moving_s=from_ms(o.moving_ms),
            idle_s=from_ms(o.idle_ms), no_position_s=from_ms(o.no_position_ms),
            distance_m=round(o.distance_m * MM_PER_M) / MM_PER_M,
            zones={n: (from_ms(m + i), from_ms(m), from_ms(i)) for n, (m, i) in o.zones.items()})


def _has_position(e: Estimate) -> bool:
    """A valid estimate with finite coordinates (anything else is no-position time)."""
    return e.valid and math.isfinite(e.x_m) and math.isfinite(e.y_m)


def _apportion(total_ms: int, weights: list[float]) -> list[int]:
    """Milliseconds proportional to `weights`, in CELL_QUANTUM_MS steps (largest remainder), that
    add up to `total_ms` exactly: the sub-quantum rest goes to the biggest weight."""
    wsum = sum(weights)
    if total_ms <= 0 or wsum <= 0.0:
        return [0] * len(weights)
    units, rest = divmod(total_ms, CELL_QUANTUM_MS)
    exact = [w * units / wsum for w in weights]
    out = [math.floor(v) for v in exact]
    short = units - sum(out)
    by_remainder = sorted(range(len(exact)), key=lambda i: (out[i] - exact[i], i))
    for i in by_remainder[:short]:
        out[i] += 1
    ms = [u * CELL_QUANTUM_MS for u in out]
    biggest = max(range(len(weights)), key=lambda i: (weights[i], -i))
    ms[biggest] += rest
    return ms
