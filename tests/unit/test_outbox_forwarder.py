"""OutboxForwarder without a broker: windows stored through the codec, positions opt-in, health."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.buffer.outbox import Outbox
from edge_agent.estimate import Estimate
from edge_agent.heatmap.codec import decode_window
from edge_agent.heatmap.window import Window, window_id
from edge_agent.publish.forward import OutboxForwarder, topic

T0 = 1_700_000_000.0


def window(k: int) -> Window:
    start = T0 + 60 * k
    return Window(id=window_id("plant-a", "fl-01", start, start + 60), site="plant-a",
                  agent="fl-01", start=start, end=start + 60, cell_m=2.0, x0=0.0, y0=0.0,
                  nx=10, ny=10, cells={(1, 2): (60.0, 12.0)}, dwell_s=60.0, moving_s=12.0,
                  idle_s=48.0, no_position_s=0.0, distance_m=9.0, zones={})


def track(n: int) -> list[Estimate]:
    return [Estimate(T0 + i, float(i), 1.0, (0.5, 0.0, 0.5), 1.0, True) for i in range(n)]


def test_windows_wait_encoded_and_once_per_id(tmp_path: Path) -> None:
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01")
    for w in (window(0), window(1), window(0)):
        fwd.put(w)
    line = fwd.close(health=False)
    assert line.startswith("2 new windows in outbox, 2 waiting (no broker)")
    with Outbox(tmp_path / "o.db") as box:
        items = box.pending(10)
        assert [decode_window(i.payload) for i in items] == [window(0), window(1)]
        assert box.meta("site") == "plant-a" and box.meta("agent") == "fl-01"


def test_positions_are_neither_kept_nor_queued_by_default(tmp_path: Path) -> None:
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01")
    fwd.add_positions(track(30))
    fwd.close(health=False)
    with Outbox(tmp_path / "o.db") as box:
        assert box.raw_counts()["positions"] == 0
        assert box.counts()["positions"]["pending"] == 0


def test_positions_kept_and_published_in_10_s_batches_when_enabled(tmp_path: Path) -> None:
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01", record_positions=True,
                          publish_positions=True)
    fwd.add_positions(track(25))
    fwd.close(health=False)
    with Outbox(tmp_path / "o.db") as box:
        assert box.raw_counts()["positions"] == 25
        batches = [json.loads(i.payload) for i in box.pending(10) if i.kind == "positions"]
    assert [len(b["positions"]) for b in batches] == [10, 10, 5]
    assert batches[0]["positions"][0][:3] == [T0, 0.0, 1.0]


def test_health_reports_depth_drops_and_cpu(tmp_path: Path) -> None:
    fwd = OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01", clock=lambda: T0)
    fwd.put(window(0))
    h = fwd.health({"sources": {"wifi": 3}})
    fwd.close(health=False)
    assert h["buffer"]["pending"]["heatmap"] == 1
    assert h["drops"] == {} and h["rejected_total"] == 0 and h["last_publish_t"] is None
    assert h["cpu"]["process_s"] >= 0 and h["t"] == T0 and h["extra"] == {"sources": {"wifi": 3}}
    assert not h["connected"]


def test_topics() -> None:
    assert topic("plant-a", "fl-01", "heatmap") == "plants/plant-a/agents/fl-01/heatmap"
