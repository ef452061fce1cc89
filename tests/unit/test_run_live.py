"""The live loop of `edge-agent run` with fake sources: time order, raw data, health, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.buffer.outbox import Outbox
from edge_agent.commands.run import run_live
from edge_agent.errors import SourceError
from edge_agent.observations import BleObs, Observation, WifiObs
from edge_agent.publish.forward import OutboxForwarder
from edge_agent.sources.base import SourceStats

T0 = 1_700_000_000.0


class ListSource:
    """A fake live source: yields its list, then optionally raises."""

    def __init__(self, kind: str, observations: list[Observation],
                 fail: Exception | None = None) -> None:
        self.kind = kind
        self.stats = SourceStats()
        self.observations = observations
        self.fail = fail

    def __iter__(self) -> Iterator[Observation]:
        for o in self.observations:
            self.stats.observations += 1
            yield o
        if self.fail is not None:
            raise self.fail


class StepClock:
    """Wall clock that advances 1 s per reading."""

    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_observations_are_fed_in_time_order_and_kept_raw(tmp_path: Path) -> None:
    # Each source is in order, but they are not in order with each other (as live).
    wifi = ListSource("wifi", [WifiObs(T0 + i, "02:00:00:00:00:01", -60.0, 1)
                               for i in range(0, 20, 2)])
    ble = ListSource("ble", [BleObs(T0 + i + 0.5, "b1", -70.0) for i in range(0, 20, 2)])
    fed: list[Observation] = []
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01", record_raw=True)
    summary = run_live([wifi, ble], fed.append, fwd, reorder_s=100.0)
    fwd.close()
    assert summary.observations == 20 == len(fed)
    assert [o.t for o in fed] == sorted(o.t for o in fed)
    with Outbox(tmp_path / "o.db") as box:
        assert box.raw_counts()["observations"] == 20


def test_raw_observations_are_not_kept_unless_asked(tmp_path: Path) -> None:
    src = ListSource("wifi", [WifiObs(T0, "02:00:00:00:00:01", -60.0, 1)])
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01")
    run_live([src], lambda o: None, fwd)
    fwd.close()
    with Outbox(tmp_path / "o.db") as box:
        assert box.raw_counts()["observations"] == 0


def test_health_records_are_stored_on_the_wall_clock(tmp_path: Path) -> None:
    src = ListSource("wifi", [WifiObs(T0 + i, "02:00:00:00:00:01", -60.0, 1) for i in range(30)])
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01", clock=StepClock())
    summary = run_live([src], lambda o: None, fwd, clock=StepClock(), health_interval_s=10.0,
                       health_extra=lambda: {"sources": {"wifi": src.stats.observations}})
    fwd.close(health=False)
    assert summary.health_records >= 2
    with Outbox(tmp_path / "o.db") as box:
        assert box.counts()["health"]["pending"] == summary.health_records


def test_a_failing_source_stops_the_loop_with_a_source_error(tmp_path: Path) -> None:
    bad = ListSource("gnss", [], fail=OSError("device unplugged"))
    good = ListSource("wifi", [WifiObs(T0, "02:00:00:00:00:01", -60.0, 1)])
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01")
    with pytest.raises(SourceError, match="device unplugged"):
        run_live([bad, good], lambda o: None, fwd, stop=threading.Event())
    fwd.close()


class EndlessSource(ListSource):
    """A radio that never ends by itself: only stop() ends it."""

    def __init__(self) -> None:
        super().__init__("wifi", [])
        self.stopped = threading.Event()

    def __iter__(self) -> Iterator[Observation]:
        while not self.stopped.wait(0.01):
            pass
        return
        yield

    def stop(self) -> None:
        self.stopped.set()


def test_stopping_the_loop_stops_sources_that_can_be_stopped(tmp_path: Path) -> None:
    src = EndlessSource()
    stop = threading.Event()
    stop.set()
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01")
    run_live([src], lambda o: None, fwd, stop=stop)
    fwd.close(health=False)
    assert src.stopped.is_set()
