"""Dashboard ingest without a broker: a refused database write is retried, never dropped."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from support.dashboard import T0, make_window, wait_until

from edge_agent.dashboard import ingest as ingest_mod
from edge_agent.dashboard.ingest import DashboardIngest
from edge_agent.dashboard.store import AddResult, DashboardStore
from edge_agent.heatmap.codec import encode_window
from edge_agent.heatmap.window import Window


class FlakyStore(DashboardStore):
    """A real store whose first `failures` writes fail as a full disk would."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def add_windows(self, windows: Iterable[Window],
                    payload_json: Sequence[str] | None = None) -> AddResult:
        if self.failures > 0:
            self.failures -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return super().add_windows(windows, payload_json)


def _message(w: Window, mid: int) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(mid=mid, topic=f"plants/{w.site}/agents/{w.agent}/heatmap".encode())
    msg.payload = encode_window(w)
    return msg


def test_a_refused_write_is_retried_and_counted_once(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_mod, "DB_RETRY_S", 0.01)
    store = FlakyStore(tmp_path / "d.db", failures=2)
    ing = DashboardIngest(store, "mqtt://127.0.0.1:1")  # never started: no broker needed
    w = make_window("fl-01", T0, {(1, 1): (50.0, 10.0)})
    ing._queue.put(_message(w, 1))
    writer = threading.Thread(target=ing._write_loop, daemon=True)
    writer.start()
    wait_until(lambda: ing.stats.stored == 1, "the window after two refused writes")
    ing._stop.set()
    writer.join(10)
    assert store.failures == 0
    assert (ing.stats.received, ing.stats.stored, ing.stats.rejected) == (1, 1, 0)
    assert DashboardStore(tmp_path / "d.db").count_windows() == 1


def test_a_dead_store_process_is_replaced_and_the_batch_retried(tmp_path: Path) -> None:
    from edge_agent.dashboard.ingest import StoreWorker

    def items(*ws: Window) -> list[tuple[str, bytes]]:
        return [(f"plants/{w.site}/agents/{w.agent}/heatmap", encode_window(w)) for w in ws]

    worker = StoreWorker(tmp_path / "d.db")
    try:
        first = worker.store(items(make_window("fl-01", T0, {(1, 1): (50.0, 10.0)})))
        assert first.stored == 1
        worker._proc.kill()
        worker._proc.join(10)
        batch = items(make_window("fl-01", T0 + 60, {(1, 1): (50.0, 10.0)}))
        with pytest.raises(sqlite3.OperationalError, match="store process ended"):
            worker.store(batch)  # the caller keeps it unacknowledged and retries
        again = worker.store(batch)
        assert (again.received, again.stored) == (1, 1)
    finally:
        worker.close()
    assert DashboardStore(tmp_path / "d.db").count_windows() == 2
