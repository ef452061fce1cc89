"""`edge-agent replay --broker` against a real Mosquitto: every window of the run arrives, decodes,
and the merge of what the broker delivered is the run's heatmap.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bundles import T0, yard_gnss_bundle
from support.collector import MessageCollector
from support.mosquitto import Broker, start_mosquitto

from edge_agent.cli import main
from edge_agent.heatmap.codec import decode_window
from edge_agent.heatmap.window import merge_windows

pytestmark = pytest.mark.mosquitto



def test_replay_publishes_every_window_once_and_they_merge_to_heatmap_json(
        tmp_path: Path) -> None:
    yard_gnss_bundle(tmp_path / "b", seconds=300, step_m=0.4, moving_s=90)
    broker: Broker = start_mosquitto(tmp_path / "mq")
    try:
        with MessageCollector(broker, "plants/+/agents/+/heatmap") as c:
            out = tmp_path / "out"
            assert main(["replay", str(tmp_path / "b"), "--out", str(out), "--agent", "fl-03",
                         "--broker", broker.url()]) == 0
            n = json.loads((out / "summary.json").read_text())["windows"]
            assert c.wait_for(lambda m: len(m) >= n)
            msgs = c.snapshot()
    finally:
        broker.stop()
    assert {m.topic for m in msgs} == {"plants/plant-y/agents/fl-03/heatmap"}
    ws = [decode_window(m.payload) for m in msgs]
    assert len({w.id for w in ws}) == len(ws) == n == 6
    assert all(len(m.payload) <= 2048 for m in msgs)
    heatmap = json.loads((out / "heatmap.json").read_text())
    merged = merge_windows(ws).to_heatmap_json()
    # the same heatmap, but start/end are the run's own span inside the aligned windows
    assert (heatmap["start"], heatmap["end"]) == (T0 + 0.2, T0 + 299.2)
    assert merged["start"] <= heatmap["start"] and heatmap["end"] <= merged["end"]
    assert {k: v for k, v in merged.items() if k not in ("start", "end")} == \
        {k: v for k, v in heatmap.items() if k not in ("start", "end")}
