"""`edge-agent dashboard`'s broker options are the shared ones; mistakes in them are one line,
exit 2, before anything is served."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["dashboard", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_help_lists_the_shared_broker_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    for opt in ("--username", "--password-file", "--mqtt-version", "--tls-ca", "--tls-key"):
        assert opt in out
    assert "--max-inflight" not in out  # a publisher's option, not a subscriber's


def test_a_missing_ca_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["--db", str(tmp_path / "d.db"), "--broker", "mqtts://127.0.0.1:1",
                  "--tls-ca", str(tmp_path / "ca.crt")], capsys)
    assert "--tls-ca" in err and "ca.crt" in err


def test_tls_files_with_plain_mqtt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x\n")
    assert "use mqtts://" in _fails(["--db", str(tmp_path / "d.db"), "--broker",
                                     "mqtt://127.0.0.1:1", "--tls-ca", str(ca)], capsys)


def test_an_unreadable_password_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["--db", str(tmp_path / "d.db"), "--broker", "mqtt://127.0.0.1:1",
                  "--password-file", str(tmp_path / "nope")], capsys)
    assert "--password-file" in err


def test_broker_options_without_broker(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert "--broker" in _fails(["--db", str(tmp_path / "d.db"), "--username", "dash"], capsys)


@pytest.mark.parametrize("group", ["a/b", "#", "g+", ""])
def test_a_share_group_that_is_not_a_topic_level(group: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert "--group" in _fails(["--db", str(tmp_path / "d.db"), "--group", group], capsys)
