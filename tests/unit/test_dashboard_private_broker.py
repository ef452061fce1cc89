"""The demo's broker lookup: without Mosquitto it says so plainly, naming the apt command."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.dashboard import private_broker
from edge_agent.errors import BrokerError


def _no_mosquitto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private_broker, "MOSQUITTO_PATHS", ())
    monkeypatch.setattr("shutil.which", lambda name: None)


def test_missing_mosquitto_names_the_apt_command(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_mosquitto(monkeypatch)
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        private_broker.find_mosquitto()


def test_demo_without_mosquitto_exits_2_before_simulating(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _no_mosquitto(monkeypatch)
    assert main(["demo", "--no-serve", "--out", f"{tmp_path}/out"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and "apt-get install mosquitto" in err
