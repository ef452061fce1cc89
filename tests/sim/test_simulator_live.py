"""Live mode: a run's observations paced by a (fake) clock through the Source interface."""

from __future__ import annotations

import threading

from edge_agent.observations import GnssNoFix, WifiObs
from edge_agent.sources.base import Source
from firmware_sim import simulate
from firmware_sim.live import LivePacer, LiveSource, fleet_live, live_sources


class FakeClock:
    """monotonic/wall/sleep that advance only when slept: no real waiting in tests."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_900_000_000.0 + self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_live_sources_pace_at_speed_and_rebase_to_now() -> None:
    run = simulate("indoor_shift", seed=1, duration_s=20)
    clock = FakeClock()
    pacer = LivePacer(run.t0, speed=4.0, rebase=True, monotonic=clock.monotonic,
                      wall=clock.wall, sleep=clock.sleep)
    sources = live_sources(run, pacer=pacer)
    assert [s.kind for s in sources] == ["wifi", "ble", "gnss"]
    src: Source = sources[0]
    got = []
    for o in src:
        got.append((o, clock.now))
    wifi = [o for o in run.observations if isinstance(o, WifiObs)]
    assert len(got) == len(wifi) == src.stats.observations
    start_wall = 1_900_000_000.0 + 100.0
    for (o, now), orig in zip(got, wifi, strict=True):
        assert o.t == start_wall + (orig.t - run.t0) / 4.0  # rebased, 4x faster
        assert now >= 100.0 + (orig.t - run.t0) / 4.0  # never early
        assert isinstance(o, WifiObs) and o.rssi_dbm == orig.rssi_dbm
    assert clock.now - 100.0 <= 20 / 4.0 + 1e-6


def test_without_rebase_times_are_the_runs() -> None:
    run = simulate("sparse_aps", seed=2, duration_s=5)
    clock = FakeClock()
    pacer = LivePacer(run.t0, speed=100.0, rebase=False, monotonic=clock.monotonic,
                      wall=clock.wall, sleep=clock.sleep)
    gnss = next(s for s in live_sources(run, pacer=pacer) if s.kind == "gnss")
    assert [o.t for o in gnss] == [o.t for o in run.observations
                                    if isinstance(o, GnssNoFix) or o.__class__.__name__ ==
                                    "GnssFix"]


def test_stop_ends_one_source() -> None:
    run = simulate("sparse_aps", seed=2, duration_s=5)
    clock = FakeClock()
    pacer = LivePacer(run.t0, monotonic=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
    src = LiveSource("wifi", run.observations, pacer)
    it = iter(src)
    next(it)
    src.stop()
    assert list(it) == []


def test_fleet_live_gives_sources_per_agent_on_one_pacer() -> None:
    fleet = fleet_live("indoor_shift", 3, seed=1, duration_s=5, speed=1000.0)
    assert list(fleet) == ["fl-01", "fl-02", "fl-03"]
    results: dict[str, int] = {}

    def drain(agent: str) -> None:
        results[agent] = sum(1 for s in fleet[agent] for _ in s)

    threads = [threading.Thread(target=drain, args=(a,)) for a in fleet]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert all(n > 0 for n in results.values()) and len(results) == 3


def test_live_run_feeds_the_agents_live_loop_and_pipeline(tmp_path: object) -> None:
    """The agent's own live loop (run_live) takes simulated sources like radios: everything the
    sources yield reaches the pipeline, and heatmap windows come out."""
    from pathlib import Path

    from edge_agent.commands.run import run_live
    from edge_agent.pipeline import Pipeline
    from edge_agent.publish.forward import OutboxForwarder

    run = simulate("indoor_shift", seed=3, duration_s=150)
    sources = live_sources(run, speed=500.0, rebase=False)
    fed: list[float] = []
    windows = []

    class Sink:
        def put(self, window: object) -> None:
            windows.append(window)

        def close(self) -> str:
            return "ok"

    pipeline = Pipeline(run.site, "fl-01", window_sink=Sink())

    def feed(o: object) -> None:
        fed.append(o.t)  # type: ignore[attr-defined]
        pipeline.feed(o)  # type: ignore[arg-type]

    fwd = OutboxForwarder(Path(str(tmp_path)) / "outbox.db", None, run.site.site, "fl-01")
    summary = run_live(sources, feed, fwd)
    pipeline.close()
    fwd.close(timeout_s=0.1)
    assert summary.observations == len(run.observations) == len(fed)
    assert sorted(fed) == [o.t for o in run.observations]  # (order is the live loop's job)
    assert sum(s.stats.observations for s in sources) == len(run.observations)
    assert windows  # at least the 60 s windows that closed
