"""Live mode: a simulated run's observations paced in real time (or faster), as Sources.

Each LiveSource has the agent's Source shape (kind, stats, iteration in time order), so a running
agent can take them in place of its radios. Sources of one run share a LivePacer, so Wi-Fi, BLE
and GNSS stay in step. With rebase, times are shifted so that the run starts "now", as a live
radio's would. fleet_live() gives N trucks' sources for broker and dashboard load tests.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.sources.base import SourceStats
from firmware_sim.run import SimRun, simulate

_KIND_TYPES: dict[str, tuple[type, ...]] = {
    "wifi": (WifiObs,), "ble": (BleObs,), "gnss": (GnssFix, GnssNoFix)}
MAX_SLEEP_S = 0.5  # sleep in slices so stop() takes effect promptly


class LivePacer:
    """Maps run time to wall time: started once (by the first source to yield), shared."""

    def __init__(self, run_t0_s: float, speed: float = 1.0, rebase: bool = True, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.run_t0_s = run_t0_s
        self.speed = speed
        self.rebase = rebase
        self._monotonic = monotonic
        self._wall = wall
        self._sleep = sleep
        self._lock = threading.Lock()
        self._start_mono: float | None = None
        self._start_wall = 0.0
        self.stopped = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._start_mono is None:
                self._start_mono = self._monotonic()
                self._start_wall = self._wall()

    def wait_until(self, t_s: float, stopped: threading.Event | None = None) -> bool:
        """Sleep until run time t_s is due; False if the pacer (or `stopped`) is stopped."""
        self.start()
        assert self._start_mono is not None
        due = self._start_mono + (t_s - self.run_t0_s) / self.speed
        while not self.stopped.is_set() and not (stopped is not None and stopped.is_set()):
            left = due - self._monotonic()
            if left <= 0:
                return True
            self._sleep(min(left, MAX_SLEEP_S))
        return False

    def stamp(self, t_s: float) -> float:
        """The time the observation carries: rebased to the wall-clock start, or unchanged."""
        if not self.rebase:
            return t_s
        return self._start_wall + (t_s - self.run_t0_s) / self.speed


class LiveSource:
    """One kind of a run's observations, yielded when due. Iterate once; stop() ends it."""

    def __init__(self, kind: str, observations: list[Observation], pacer: LivePacer) -> None:
        if kind not in _KIND_TYPES:
            raise ValueError(f"unknown source kind {kind!r}")
        self.kind = kind
        self.stats = SourceStats()
        types = _KIND_TYPES[kind]
        self._obs = [o for o in observations if isinstance(o, types)]
        self._pacer = pacer
        self._stopped = threading.Event()

    def stop(self) -> None:
        """End this source's iteration (the others sharing the pacer go on)."""
        self._stopped.set()

    def __iter__(self) -> Iterator[Observation]:
        for o in self._obs:
            if not self._pacer.wait_until(o.t, self._stopped):
                return
            self.stats.observations += 1
            yield dataclasses.replace(o, t=self._pacer.stamp(o.t))


def live_sources(run: SimRun, speed: float = 1.0, rebase: bool = True,
                 pacer: LivePacer | None = None) -> list[LiveSource]:
    """One LiveSource per kind the run has (wifi, ble, gnss), sharing one pacer."""
    p = pacer if pacer is not None else LivePacer(run.t0, speed, rebase)
    kinds = [k for k, types in _KIND_TYPES.items()
             if any(isinstance(o, types) for o in run.observations)]
    return [LiveSource(k, run.observations, p) for k in kinds]


def fleet_live(name: str, n_trucks: int, seed: int = 0, duration_s: float | None = None,
               speed: float = 1.0, rebase: bool = True) -> dict[str, list[LiveSource]]:
    """Agent id (fl-01, ...) -> that truck's live sources, all trucks paced together."""
    from firmware_sim.fleet import agent_id

    runs = [simulate(name, seed, duration_s, truck=i) for i in range(n_trucks)]
    if not runs:
        return {}
    pacer = LivePacer(runs[0].t0, speed, rebase)
    return {agent_id(i): live_sources(r, pacer=pacer) for i, r in enumerate(runs)}
