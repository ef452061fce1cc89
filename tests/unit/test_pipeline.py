"""Pipeline: estimates to positions.csv and windows to the sink, heatmap = merge of the windows."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path

import pytest

from edge_agent.estimate import Estimate
from edge_agent.heatmap.window import Window, merge_windows
from edge_agent.observations import GnssFix, GnssNoFix, Observation
from edge_agent.pipeline import POSITIONS_HEADER, Pipeline
from edge_agent.site import Site, site_from_dict

T0 = 1_794_999_600.0


class GnssEchoTracker:
    """A fake tracker: each whole second's estimate is the last fix in it (none: not valid).

    Emits second k once an observation later than k arrives, like the real one (causal, in order).
    """

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.last: GnssFix | None = None
        self.fix_in_epoch = False
        self.finished = 0

    def process(self, obs: Observation) -> list[Estimate]:
        k = math.ceil(obs.t)
        out: list[Estimate] = []
        if self.epoch is None:
            self.epoch = k
        if k < self.epoch:
            return out  # late, ignored like the real tracker does
        while k > self.epoch:
            out.append(self._emit(self.epoch))
            self.epoch += 1
        if isinstance(obs, GnssFix):
            self.last, self.fix_in_epoch = obs, True
        return out

    def _emit(self, t: int) -> Estimate:
        f, valid = self.last, self.fix_in_epoch
        self.fix_in_epoch = False
        if f is None or not valid:
            return Estimate(float(t), 0.0, 0.0, (1e4, 0.0, 1e4), 0.0, False, valid=False)
        return Estimate(float(t), f.x_m, f.y_m, (f.sigma_m**2, 0.0, f.sigma_m**2),
                        f.hdop, f.hdop > 0.5)  # hdop stands in for speed in this fake

    def finish(self) -> list[Estimate]:
        self.finished += 1
        return [self._emit(self.epoch)] if self.epoch is not None else []

    def health(self) -> dict[str, object]:
        return {"fake": True}


class RecordingSink:
    """A WindowSink that keeps what it is given (and positions, like the outbox forwarder)."""

    def __init__(self) -> None:
        self.windows: list[Window] = []
        self.positions: list[Estimate] = []
        self.closed = 0

    def put(self, window: Window) -> None:
        self.windows.append(window)

    def add_positions(self, estimates: Iterable[Estimate]) -> None:
        self.positions.extend(estimates)

    def close(self) -> str:
        self.closed += 1
        return f"{len(self.windows)} windows recorded"


@pytest.fixture
def site() -> Site:
    return site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "zones": [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]]}]})


def drive(n_s: int, gap: tuple[int, int] = (0, 0)) -> list[Observation]:
    """Fixes at 1 Hz (+0.5 s) along x, moving in the first half; no fix during `gap`."""
    obs: list[Observation] = []
    for k in range(n_s):
        t = T0 + k + 0.5
        if gap[0] <= k < gap[1]:
            obs.append(GnssNoFix(t))
        else:
            moving = k < n_s // 2
            obs.append(GnssFix(t, 10.0 + min(k, n_s // 2) * 0.5, 20.0, 1.0,
                               1.0 if moving else 0.0, 1))
    return obs


def test_positions_csv_has_the_contract_header_and_only_valid_rows(site: Site) -> None:
    buf = io.StringIO()
    pipe = Pipeline(site, "fl-01", GnssEchoTracker(), positions_out=buf)
    pipe.feed_all(drive(200, gap=(50, 60)))
    s = pipe.close()
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert buf.getvalue().splitlines()[0] == POSITIONS_HEADER
    assert list(rows[0])[:3] == ["t", "x", "y"]
    assert len(rows) == s.positions == 190
    ts = [float(r["t"]) for r in rows]
    assert ts == sorted(ts) and not any(T0 + 51 <= t <= T0 + 60 for t in ts)
    assert rows[0] == {"t": f"{T0 + 1:.3f}", "x": "10.00", "y": "20.00", "sigma_m": "1.00",
                       "speed_mps": "1.00", "moving": "1"}


def test_windows_reach_the_sink_and_the_heatmap_is_their_merge(site: Site, tmp_path: Path) -> None:
    sink = RecordingSink()
    tracker = GnssEchoTracker()
    pipe = Pipeline(site, "fl-01", tracker, positions_out=tmp_path / "p.csv", window_sink=sink)
    pipe.feed_all(drive(300, gap=(100, 110)))
    s = pipe.close()
    assert pipe.close() is s and sink.closed == 1 and tracker.finished == 1
    # estimates for T0+1 .. T0+300, each covering 1 s: the last one opens a sixth window
    assert s.sink == "6 windows recorded" and s.windows == 6
    assert [w.start for w in sink.windows] == [T0 + 60 * k for k in range(6)]
    assert s.heatmap == merge_windows(sink.windows)
    assert s.heatmap is not None
    assert s.heatmap.no_position_s == 10.0
    assert s.heatmap.dwell_s + s.heatmap.no_position_s == 300.0
    assert s.heatmap.moving_s == 140.0  # 150 moving seconds minus the 10 s gap
    assert s.zones["hall"]["dwell_s"] == s.heatmap.dwell_s
    assert len(sink.positions) == s.positions == 290
    assert s.health == {"fake": True}
    assert (tmp_path / "p.csv").read_text().count("\n") == 291


def test_two_runs_give_the_same_windows(site: Site) -> None:
    runs = []
    for _ in range(2):
        sink = RecordingSink()
        pipe = Pipeline(site, "fl-01", GnssEchoTracker(), window_sink=sink)
        pipe.feed_all(drive(150))
        pipe.close()
        runs.append(sink.windows)
    assert runs[0] == runs[1]


def test_real_tracker_is_the_default(site: Site) -> None:
    from edge_agent.fusion.tracker import Tracker

    assert isinstance(Pipeline(site, "fl-01").tracker, Tracker)


def test_a_lone_timestamp_years_ahead_is_dropped_not_followed(site: Site) -> None:
    obs = drive(120)
    glitch = GnssFix(T0 + 30 * 365 * 86400.0, 50.0, 50.0, 1.0, 1.0, 1)  # a corrupt record time
    obs.insert(60, glitch)
    sink = RecordingSink()
    pipe = Pipeline(site, "fl-01", GnssEchoTracker(), window_sink=sink)
    pipe.feed_all(obs)
    s = pipe.close()
    assert s.time_jumps_dropped == 1
    assert s.estimates == 120 and s.last_t == obs[-1].t
    assert [w.start for w in sink.windows] == [T0, T0 + 60, T0 + 120]


def test_a_record_from_the_distant_past_changes_nothing(site: Site) -> None:
    obs = drive(120)
    obs.insert(60, GnssFix(T0 - 20 * 365 * 86400.0, 50.0, 50.0, 1.0, 1.0, 1))
    ref = Pipeline(site, "fl-01", GnssEchoTracker())
    ref.feed_all(drive(120))
    pipe = Pipeline(site, "fl-01", GnssEchoTracker())
    pipe.feed_all(obs)
    s = pipe.close()
    assert s.offline_gaps == 0 and s.time_jumps_dropped == 0
    assert s.heatmap == ref.close().heatmap


def test_a_jump_confirmed_by_the_next_observation_is_followed(site: Site) -> None:
    later: list[Observation] = [GnssFix(T0 + 86400.0 + k, 20.0, 20.0, 1.0, 0.0, 1)
                                for k in range(30)]
    sink = RecordingSink()
    pipe = Pipeline(site, "fl-01", GnssEchoTracker(), window_sink=sink)
    pipe.feed_all(drive(60) + later)
    s = pipe.close()
    assert s.time_jumps_dropped == 0 and s.last_t == later[-1].t
    assert s.offline_gaps == 1
    assert s.heatmap is not None and s.heatmap.end == T0 + 86400.0 + 60
    # the silent day is not covered: no windows full of no-position time
    assert s.heatmap.dwell_s + s.heatmap.no_position_s <= 60 + 2 + 30
    assert s.windows == 3
