"""`edge-agent run` end to end with a real Mosquitto: `--simulate` feeds it firmware_sim's live
sources (the radios' Source interface) at high speed; everything else is the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.collector import MessageCollector
from support.fixtures import SECURE_USERS, mosquitto_secure  # noqa: F401
from support.mosquitto import Broker

from edge_agent.cli import main
from edge_agent.heatmap.codec import decode_window
from firmware_sim.run import simulate

pytestmark = pytest.mark.mosquitto


def test_run_publishes_windows_health_and_status(mosquitto_secure: Broker,  # noqa: F811
                                                 tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(SECURE_USERS["fl-01"] + "\n")
    site = simulate("indoor_shift", seed=3, duration_s=1).site.site
    with MessageCollector(mosquitto_secure, f"plants/{site}/agents/fl-01/#", user="dashboard",
                          password=SECURE_USERS["dashboard"], tls=True) as dash:
        rc = main(["run", "--simulate", "indoor_shift", "--seed", "3", "--duration", "200",
                   "--speed", "1000", "--agent", "fl-01", "--db", str(tmp_path / "outbox.db"),
                   "--broker", mosquitto_secure.url("fl-01", tls=True),
                   "--password-file", str(pw), "--tls-ca", str(mosquitto_secure.ca_path),
                   "--drain-timeout", "20"])
        assert rc == 0
        assert dash.wait_for(lambda m: any(x.topic.endswith("/health") for x in m))
        msgs = dash.snapshot()
    windows = [decode_window(m.payload) for m in msgs if m.topic.endswith("/heatmap")]
    assert len(windows) >= 3 and all(w.agent == "fl-01" for w in windows)
    assert len({w.id for w in windows}) == len(windows)
    states = [json.loads(m.payload)["state"] for m in msgs if m.topic.endswith("/status")]
    assert states[0] == "online" and states[-1] == "offline"
    health = [json.loads(m.payload) for m in msgs if m.topic.endswith("/health")][-1]
    assert health["agent"] == "fl-01" and health["drops"] == {}
    tracker = health["extra"]["tracker"]  # the tracker's health reaches the live topic
    assert tracker["moved"] == {} and len(tracker["offsets_db"]) >= 10
