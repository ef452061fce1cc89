"""The SQLite outbox: stored once per id, oldest first, acked or refused, bounded, drops counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.buffer.outbox import Outbox
from edge_agent.errors import InputError
from edge_agent.estimate import Estimate
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs

T0 = 1_700_000_000.0


def wifi(t: float) -> WifiObs:
    return WifiObs(t, "02:9e:34:71:25:60", -61.0, 6)


def test_a_window_put_twice_is_stored_once(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        assert box.put("w1", "heatmap", T0, b"a")
        assert not box.put("w1", "heatmap", T0, b"a")
        assert box.counts()["heatmap"]["pending"] == 1
        assert box.counters()["duplicate_puts"] == 1


def test_pending_is_windows_first_then_oldest_first(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put("h1", "health", T0, b"h")
        box.put_many([("w2", "heatmap", T0 + 60, b"2"), ("w1", "heatmap", T0, b"1")])
        box.put("w3", "heatmap", T0 + 120, b"3")
        assert [i.id for i in box.pending(10)] == ["w2", "w1", "w3", "h1"]
        assert [i.id for i in box.pending(2, exclude={"w2"})] == ["w1", "w3"]
        assert box.pending(1)[0].payload == b"2"


def test_acked_window_leaves_and_a_late_duplicate_is_ignored(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put("w1", "heatmap", T0, b"payload")
        box.settle(sent=["w1"], acked=["w1"], acked_at_s=T0 + 5)
        assert box.pending(10) == []
        assert not box.put("w1", "heatmap", T0, b"payload")
        assert box.pending(10) == []
        s = box.summary()
        assert s["counters"]["acked_heatmap"] == 1
        assert s["last_publish_t"] == T0 + 5 and s["last_ack_id"] == "w1"


def test_rejected_is_set_aside_counted_and_can_be_requeued(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        box.put("w1", "heatmap", T0, b"1")
        box.put("w2", "heatmap", T0 + 60, b"2")
        box.settle(rejected=[("w1", 135)])
        assert [i.id for i in box.pending(10)] == ["w2"]
        assert box.rejected() == [("w1", "heatmap", 135)]
        assert box.counters()["rejected_heatmap"] == 1
        assert box.requeue_rejected() == 1
        assert [i.id for i in box.pending(10)] == ["w1", "w2"]


def test_unsent_windows_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.put("w1", "heatmap", T0, b"1")
        box.put("w2", "heatmap", T0 + 60, b"2")
        box.settle(acked=["w1"])
    with Outbox(path) as box:
        assert [(i.id, i.payload) for i in box.pending(10)] == [("w2", b"2")]


def test_database_is_wal_and_normal_sync(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        assert box.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        box.put("w1", "heatmap", T0, b"1")  # runs at FULL, then back to NORMAL
        assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_raw_observations_and_positions_are_stored(tmp_path: Path) -> None:
    obs: list[Observation] = [wifi(T0), BleObs(T0 + 1, "b1", -70.0),
                              GnssFix(T0 + 2, 1.0, 2.0, 3.0, 0.9, 1), GnssNoFix(T0 + 3)]
    with Outbox(tmp_path / "o.db") as box:
        assert box.add_observations(obs) == 4
        box.add_positions([Estimate(T0, 1.0, 2.0, (1.0, 0.0, 1.0), 0.5, True)])
        assert box.raw_counts() == {"observations": 4, "positions": 1}
        kinds = [r[0] for r in box.conn.execute("SELECT kind FROM observations ORDER BY rowid")]
        assert kinds == ["wifi", "ble", "gnss", "gnss_nofix"]


def test_age_bound_drops_raw_and_health_but_never_unsent_windows(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_age_s=3600) as box:
        box.add_observations([wifi(T0 + i) for i in range(100)])
        box.put("old-window", "heatmap", T0, b"w")
        box.put("old-health", "health", T0, b"h")
        box.put("new-window", "heatmap", T0 + 7200, b"w")  # moves "newest" two hours on
        box.put("new-health", "health", T0 + 7200, b"h")  # health ages on its own (wall) clock
        assert box.raw_counts()["observations"] == 0
        assert {i.id for i in box.pending(10)} == {"old-window", "new-window", "new-health"}
        c = box.counters()
        assert c["dropped_observations"] == 100 and c["dropped_unsent_health"] == 1
        assert "dropped_unsent_windows" not in c


def test_size_bound_drops_raw_first_and_windows_last(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_bytes=400_000) as box:
        for k in range(20):
            box.put(f"w{k:02d}", "heatmap", T0 + 60 * k, bytes(4000))
        box.add_observations([wifi(T0 + i * 0.01) for i in range(60_000)])  # ~2 MB: over
        assert box.used_bytes() <= 400_000
        assert box.counts()["heatmap"]["pending"] == 20  # raw went first
        assert box.counters()["dropped_observations"] > 0
        for k in range(20, 200):  # 180 more windows of 4 kB: now windows must go
            box.put(f"w{k:03d}", "heatmap", T0 + 60 * k, bytes(4000))
        assert box.used_bytes() <= 400_000
        assert box.raw_counts()["observations"] == 0
        dropped = box.counters()["dropped_unsent_windows"]
        assert dropped > 0
        remaining = [i.id for i in box.pending(1000)]
        assert len(remaining) + dropped == 200
        assert "w199" in remaining and "w00" not in remaining  # oldest dropped first


def test_bad_bounds_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="max_bytes"):
        Outbox(tmp_path / "o.db", max_bytes=0)
