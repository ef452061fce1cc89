"""`edge-agent run` end to end with a real Mosquitto; the live sources are replaced by a simulated
bundle's sources (same Source interface), everything else is the real command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from support.collector import MessageCollector
from support.fixtures import SECURE_USERS, mosquitto_secure  # noqa: F401
from support.mosquitto import Broker

from edge_agent.bundle import Bundle
from edge_agent.cli import main
from edge_agent.commands import run as run_cmd
from edge_agent.heatmap.codec import decode_window

pytestmark = pytest.mark.mosquitto


def test_run_publishes_windows_health_and_status(mosquitto_secure: Broker, tmp_path: Path,  # noqa: F811
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    firmware_sim = pytest.importorskip("firmware_sim")
    sim = firmware_sim.simulate("indoor_shift", seed=3, duration_s=200)
    sim.write_bundle(tmp_path / "bundle")
    bundle = Bundle.open(tmp_path / "bundle")

    def fake_sources(args: argparse.Namespace, cfg: object, site: object) -> list[object]:
        return list(bundle.sources())

    monkeypatch.setattr(run_cmd, "build_sources", fake_sources)
    pw = tmp_path / "pw"
    pw.write_text(SECURE_USERS["fl-01"] + "\n")
    site = sim.site.site
    with MessageCollector(mosquitto_secure, f"plants/{site}/agents/fl-01/#", user="dashboard",
                          password=SECURE_USERS["dashboard"], tls=True) as dash:
        rc = main(["run", "--site", str(tmp_path / "bundle" / "site.json"), "--agent", "fl-01",
                   "--db", str(tmp_path / "outbox.db"),
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
