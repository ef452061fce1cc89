"""`edge-agent demo --no-serve`: the README's first command, run the way CI runs it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from support.mosquitto import require_mosquitto

from edge_agent.cli import main

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]


def test_demo_no_serve_checks_the_api_against_the_agents(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_mosquitto()
    out = tmp_path / "demo-out"
    rc = main(["demo", "--no-serve", "--trucks", "2", "--duration", "180", "--out", str(out)])
    text = capsys.readouterr()
    assert rc == 0, text.out + text.err
    assert "window for window: OK" in text.out
    assert "fl-01" in text.out and "fl-02" in text.out
    assert (out / "agents" / "fl-02" / "heatmap.json").exists()
    # A rerun clears its own folder; a folder that is not the demo's is refused.
    assert main(["demo", "--no-serve", "--trucks", "1", "--duration", "60", "--out",
                 str(out)]) == 0
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("keep me")
    assert main(["demo", "--no-serve", "--out", str(stranger)]) == 2
    assert (stranger / "thesis.tex").read_text() == "keep me"
    assert "not a demo output folder" in capsys.readouterr().err


def test_demo_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-serve", "--trucks", "0"]) == 2
    assert "--trucks" in capsys.readouterr().err
    assert main(["demo", "--http", "localhost"]) == 2
    assert "--http" in capsys.readouterr().err
    require_mosquitto()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--http", f"127.0.0.1:{port}"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
