"""The `edge-agent` entry point: every command has help, errors are one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import COMMANDS, build_parser, main


def test_every_command_is_registered_with_help() -> None:
    parser = build_parser()
    help_text = parser.format_help()
    for name in COMMANDS:
        assert name in help_text


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_prints_help_and_exits_zero(name: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: edge-agent {name}")
    assert len(out.splitlines()) >= 3


def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "site.json").write_text('{"site": "x", "origin": {"lat": 99, "lon": 0}}')
    proc = subprocess.run([sys.executable, "-m", "edge_agent", "replay", str(bundle), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "site.json" in lines[0] and "origin.lat" in lines[0] and "99" in lines[0]
    assert "Traceback" not in proc.stderr
