"""The agent's one-way pipeline: observations -> tracker -> estimates -> positions.csv and windows.

Windows go to a WindowSink (the outbox forwarder live, nothing or a list in replay) and are also
merged into the run's heatmap. `replay_bundle` runs a capture bundle through it and writes the
files of the replay contract (spec/capture-bundle.md) plus summary.json.
"""

from __future__ import annotations

import gc
import json
import math
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from edge_agent.estimate import Estimate
from edge_agent.heatmap.accumulator import (
    DEFAULT_GRACE_S,
    MAX_HOLD_S,
    OFFLINE_GAP_S,
    WindowAccumulator,
)
from edge_agent.heatmap.grid import Grid
from edge_agent.heatmap.window import Window, merge_windows
from edge_agent.observations import Observation
from edge_agent.site import Site
from edge_agent.sources.merge import merged_batches

POSITIONS_HEADER = "t,x,y,sigma_m,speed_mps,moving"
MAX_TIME_JUMP_S = 6 * 3600.0
"""An observation more than 6 h after the previous one is a corrupt timestamp (fuzzed or glitched
capture records carry years-off times) unless the next observation confirms the jump: the tracker
would otherwise emit one estimate per second across it. Unconfirmed jumps are dropped, counted."""
PROGRESS_EVERY = 5000
"""Observations between two progress-line refreshes: a few per second, not a flood of writes."""
REPLAY_GC_GEN0 = 10_000
"""Replay's gen-0 collection threshold (CPython's default: 700). A replay allocates observations
by the hundred thousand, short-lived and free of reference cycles, while the source batches keep
~3 000 of them alive: at 700 the collector ran 235 times over a 30-minute dense_ble bundle and
scanned those batches again and again (40 ms); at 10 000 it runs about once, peak RSS the same
(44 MB). Raised for the replay only (tracker set-up included), then restored."""
REPLAY_BATCH = 1024
"""Replay parses this many observations per source before the tracker takes them: the same
observations in the same order, but parsing and tracking each run longer on warm CPU caches - 5-10 %
less CPU on a 30-minute bundle than alternating per observation; 512 to 4096 gain the same, and
1024 hold 0.3 MB (docs/benchmarks.md, "Replay (end to end)")."""


class EstimateSource(Protocol):
    """What the pipeline needs from a tracker (edge_agent.fusion.tracker.Tracker)."""

    def process(self, obs: Observation) -> list[Estimate]: ...

    def finish(self) -> list[Estimate]: ...

    def health(self) -> dict[str, object]: ...


class WindowSink(Protocol):
    """Where closed windows go: .put(window); .close() returns a one-line summary."""

    def put(self, window: Window) -> None: ...

    def close(self) -> str: ...


@runtime_checkable
class PositionSink(Protocol):
    """A sink that also keeps (and may publish) positions, e.g. the outbox forwarder."""

    def add_positions(self, estimates: Iterable[Estimate]) -> None: ...


@dataclass
class PipelineSummary:
    """What a pipeline run did: counts, merged heatmap, the tracker's health, the sink's line."""

    observations: int = 0
    estimates: int = 0
    positions: int = 0
    windows: int = 0
    late_estimates: int = 0
    duplicate_estimates: int = 0
    time_jumps_dropped: int = 0
    offline_gaps: int = 0
    first_t: float | None = None
    last_t: float | None = None
    heatmap: Window | None = None
    zones: dict[str, dict[str, float]] = field(default_factory=dict)
    health: dict[str, object] = field(default_factory=dict)
    sink: str = ""


class Pipeline:
    """Feed observations in time order; estimates go to positions_out and windows to window_sink."""

    def __init__(self, site: Site, agent: str, tracker: EstimateSource | None = None, *,
                 cell_m: float = 2.0, window_s: float = 60.0, grace_s: float = DEFAULT_GRACE_S,
                 positions_out: str | Path | IO[str] | None = None,
                 window_sink: WindowSink | None = None) -> None:
        if tracker is None:
            from edge_agent.fusion.tracker import Tracker

            tracker = Tracker(site)
        self.site = site
        self.agent = agent
        self.tracker = tracker
        self.accumulator = WindowAccumulator(site, agent, cell_m, window_s, grace_s)
        self.sink = window_sink
        # checked once: isinstance against a runtime Protocol costs ~10 us, once per second of data
        self._position_sink = window_sink if isinstance(window_sink, PositionSink) else None
        self.summary = PipelineSummary()
        self._own_file = isinstance(positions_out, str | Path)
        self._positions: IO[str] | None
        if isinstance(positions_out, str | Path):
            self._positions = open(positions_out, "w", newline="")  # noqa: SIM115 (closed in close)
        else:
            self._positions = positions_out
        if self._positions is not None:
            self._positions.write(POSITIONS_HEADER + "\n")
        self._closed = False
        self._held: Observation | None = None  # a far jump in time, until the next one confirms it

    def feed(self, obs: Observation) -> None:
        """One observation (time order); whatever it makes final flows on at once."""
        s = self.summary
        s.observations += 1
        last_t = s.last_t
        if (self._held is None and last_t is not None and obs.t - last_t <= OFFLINE_GAP_S
                and obs.t <= last_t + MAX_TIME_JUMP_S):
            # the common case, once per observation: no jump held, no silence before it; the
            # same steps as _process without its first-observation and gap branches
            if obs.t > last_t:
                s.last_t = obs.t
            estimates = self.tracker.process(obs)
            if estimates:
                self._estimates(estimates)
            return
        held, self._held = self._held, None
        if s.last_t is not None and obs.t > s.last_t + MAX_TIME_JUMP_S:
            if held is not None and abs(obs.t - held.t) <= MAX_TIME_JUMP_S:
                self._process(held)  # confirmed: the data really resumes later
            else:
                if held is not None:
                    s.time_jumps_dropped += 1
                self._held = obs
                return
        elif held is not None:
            s.time_jumps_dropped += 1
        self._process(obs)

    def feed_batch(self, batch: Iterable[Observation]) -> None:
        """feed() each observation in turn, feed's common case inlined (the replay's hot loop:
        one method call and a few attribute updates less per observation). The summary's
        counters are brought up to date before anything else can look at them."""
        s = self.summary
        process = self.tracker.process
        estimates_out = self._estimates
        gap_s, jump_s = OFFLINE_GAP_S, MAX_TIME_JUMP_S
        n = 0
        last_t = s.last_t if s.last_t is not None else 0.0
        fast = self._held is None and s.last_t is not None
        try:
            for obs in batch:
                t = obs.t
                if fast and t - last_t <= gap_s and t <= last_t + jump_s:
                    n += 1
                    if t > last_t:
                        last_t = t
                    estimates = process(obs)
                    if estimates:
                        s.observations += n
                        s.last_t, n = last_t, 0
                        estimates_out(estimates)
                    continue
                if fast:
                    s.observations += n
                    s.last_t, n = last_t, 0
                self.feed(obs)
                fast = self._held is None and s.last_t is not None
                last_t = s.last_t if s.last_t is not None else 0.0
        finally:
            if fast:
                s.observations += n
                s.last_t = last_t

    def _process(self, obs: Observation) -> None:
        s = self.summary
        silent_from: float | None = None
        if s.first_t is None:
            s.first_t = obs.t
        elif s.last_t is not None and obs.t - s.last_t > OFFLINE_GAP_S:
            # no observation at all for > OFFLINE_GAP_S: the agent (or its radios) was off; the
            # tracker's per-second estimates across the silence used no data, so they are not
            # passed on and the heatmap counts the gap as not covered (docs/heatmap.md)
            silent_from = s.last_t + MAX_HOLD_S
            s.offline_gaps += 1
        if s.last_t is None or obs.t > s.last_t:
            s.last_t = obs.t  # the newest time seen: a record from the past does not rewind it
        estimates = self.tracker.process(obs)
        if silent_from is not None:
            estimates = [e for e in estimates if not silent_from < e.t < obs.t]
        self._estimates(estimates)

    def feed_all(self, observations: Iterable[Observation]) -> None:
        for obs in observations:
            self.feed(obs)

    def close(self) -> PipelineSummary:
        """End of data: finish the tracker, flush the windows, close the sink; idempotent."""
        if self._closed:
            return self.summary
        self._closed = True
        if self._held is not None:
            self.summary.time_jumps_dropped += 1
            self._held = None
        self._estimates(self.tracker.finish())
        self._windows(self.accumulator.flush())
        s = self.summary
        acc = self.accumulator.stats
        s.late_estimates, s.duplicate_estimates = acc.late, acc.duplicates
        s.health = self.tracker.health()
        if s.heatmap is not None:
            s.zones = {n: {"dwell_s": d, "moving_s": m, "idle_s": i}
                       for n, (d, m, i) in sorted(s.heatmap.zones.items())}
        if self._positions is not None:
            self._positions.flush()
            if self._own_file:
                self._positions.close()
        if self.sink is not None:
            s.sink = self.sink.close()
        return s

    def _estimates(self, estimates: list[Estimate]) -> None:
        if not estimates:
            return
        s = self.summary
        s.estimates += len(estimates)
        valid = [e for e in estimates
                 if e.valid and math.isfinite(e.x_m) and math.isfinite(e.y_m)]
        if self._positions is not None:
            self._positions.writelines(_position_row(e) for e in valid)
        s.positions += len(valid)
        if valid and self._position_sink is not None:
            self._position_sink.add_positions(valid)
        for e in estimates:
            self._windows(self.accumulator.add(e))

    def _windows(self, windows: list[Window]) -> None:
        s = self.summary
        for w in windows:
            s.windows += 1
            s.heatmap = w if s.heatmap is None else merge_windows([s.heatmap, w])
            if self.sink is not None:
                self.sink.put(w)


def _position_row(e: Estimate) -> str:
    return f"{e.t:.3f},{e.x_m:.2f},{e.y_m:.2f},{e.sigma_m:.2f},{e.speed_mps:.2f},{int(e.moving)}\n"


# --- replay -------------------------------------------------------------------------------------

@dataclass
class ReplaySummary:
    """A replay's outcome: per-source counters, the pipeline's summary, the files written."""

    bundle: str
    out_dir: str
    agent: str
    sources: dict[str, dict[str, Any]]
    pipeline: PipelineSummary
    files: list[str]

    def to_dict(self) -> dict[str, Any]:
        p = self.pipeline
        totals = p.heatmap.totals() if p.heatmap is not None else {}
        return {
            "bundle": self.bundle, "agent": self.agent, "sources": self.sources,
            "observations": p.observations, "estimates": p.estimates, "positions": p.positions,
            "windows": p.windows, "late_estimates": p.late_estimates,
            "duplicate_estimates": p.duplicate_estimates,
            "time_jumps_dropped": p.time_jumps_dropped, "offline_gaps": p.offline_gaps,
            "first_t": p.first_t,
            "last_t": p.last_t, "totals": totals, "zones": p.zones, "health": p.health,
            "sink": p.sink, "files": self.files,
        }

    def line(self) -> str:
        """One line for the end of `edge-agent replay`."""
        p = self.pipeline
        t = p.heatmap.totals() if p.heatmap is not None else None
        skipped = sum(sum(s["skipped"].values()) for s in self.sources.values())
        text = (f"{p.observations} observations ({skipped} skipped), {p.positions} positions, "
                f"{p.windows} windows")
        if t is not None:
            text += (f"; moving {t['moving_s']:.0f} s, idle {t['idle_s']:.0f} s, "
                     f"no position {t['no_position_s']:.0f} s, {t['distance_m']:.0f} m")
        if p.sink:
            text += f"; {p.sink}"
        return text + f" -> {self.out_dir}"


def replay_bundle(bundle_dir: str | Path, out_dir: str | Path, agent: str = "fl-01",
                  window_sink: WindowSink | None = None, progress: bool = False, *,
                  cell_m: float = 2.0, window_s: float = 60.0,
                  tracker: EstimateSource | None = None) -> ReplaySummary:
    """Replay a capture bundle: writes out_dir/positions.csv, heatmap.json and summary.json."""
    with _gc_gen0_at_least(REPLAY_GC_GEN0):
        return _replay_bundle(bundle_dir, out_dir, agent, window_sink, progress, cell_m=cell_m,
                              window_s=window_s, tracker=tracker)


@contextmanager
def _gc_gen0_at_least(threshold: int) -> Iterator[None]:
    """The garbage collector's gen-0 threshold raised to `threshold` inside, restored after."""
    old = gc.get_threshold()
    gc.set_threshold(max(threshold, old[0]), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _replay_bundle(bundle_dir: str | Path, out_dir: str | Path, agent: str,
                   window_sink: WindowSink | None, progress: bool, *, cell_m: float,
                   window_s: float, tracker: EstimateSource | None) -> ReplaySummary:
    from edge_agent.bundle import Bundle

    bundle = Bundle.open(bundle_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline(bundle.site, agent, tracker, cell_m=cell_m, window_s=window_s,
                    positions_out=out / "positions.csv", window_sink=window_sink)
    show = _Progress(sys.stderr) if progress else None
    feed = pipe.feed
    try:
        # bundle.observations()'s order (heapq.merge of the sources), merged chunk-wise
        for batch in merged_batches(bundle.sources(), REPLAY_BATCH):
            if show is None:
                pipe.feed_batch(batch)
                continue
            for obs in batch:
                feed(obs)
                if pipe.summary.observations % PROGRESS_EVERY == 0:
                    show.update(pipe.summary)
        summary = pipe.close()
    finally:
        if show is not None:
            show.done()
    heatmap = (summary.heatmap.to_heatmap_json() if summary.heatmap is not None
               else empty_heatmap_json(bundle.site, agent, cell_m, summary.first_t))
    # The run's own span, not the outer edges of its first and last aligned windows.
    if summary.first_t is not None and summary.last_t is not None:
        heatmap["start"] = max(heatmap["start"], summary.first_t)
        heatmap["end"] = max(heatmap["start"], min(heatmap["end"], summary.last_t))
    _write_json(out / "heatmap.json", heatmap)
    sources = {kind: {"observations": st.observations, "skipped": dict(sorted(st.skipped.items())),
                      "warnings": list(st.warnings)}
               for kind, st in sorted(bundle.stats().items())}
    files = ["positions.csv", "heatmap.json", "summary.json"]
    result = ReplaySummary(str(bundle.path), str(out), agent, sources, summary, files)
    _write_json(out / "summary.json", result.to_dict(), indent=2)
    return result


def _batches(items: Iterator[Observation], size: int) -> Iterator[list[Observation]]:
    """Consecutive lists of `size` items; when the source fails, what it gave first still comes
    out before the error, as it would one by one."""
    batch: list[Observation] = []
    add = batch.append
    try:
        for item in items:
            add(item)
            if len(batch) == size:
                yield batch
                batch = []
                add = batch.append
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def empty_heatmap_json(site: Site, agent: str, cell_m: float,
                       t_s: float | None) -> dict[str, Any]:
    """heatmap.json of a run without a single estimate: the grid and zero totals."""
    g = Grid.for_site(site, cell_m)
    t = t_s if t_s is not None else 0.0
    return {"site": site.site, "agent": agent, "start": t, "end": t,
            "grid": {"x0": g.x0, "y0": g.y0, "cell_m": g.cell_m, "nx": g.nx, "ny": g.ny},
            "cells": [], "totals": {"dwell_s": 0.0, "moving_s": 0.0, "idle_s": 0.0,
                                    "distance_m": 0.0}}


def _write_json(path: Path, doc: dict[str, Any], indent: int | None = None) -> None:
    text = json.dumps(doc, indent=indent, separators=None if indent else (",", ":"),
                      default=_json_default)
    path.write_text(text + "\n")


def _json_default(o: object) -> object:
    """Tracker health may hold numpy scalars or sets: make them plain JSON."""
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set | frozenset | tuple):
        return sorted(o)
    return str(o)


class _Progress:
    """A one-line status on stderr, redrawn in place (only used when stderr is a terminal)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def update(self, s: PipelineSummary) -> None:
        if s.first_t is None or s.last_t is None:
            return
        span = s.last_t - s.first_t
        self.stream.write(f"\rreplay: {span / 60:6.1f} min of data, {s.observations} observations, "
                          f"{s.positions} positions, {s.windows} windows ")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()
