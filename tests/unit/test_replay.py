"""`edge-agent replay`: files written, one-line summary, errors as one line with exit 2, --db."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bundles import yard_gnss_bundle

from edge_agent.buffer.outbox import Outbox
from edge_agent.cli import main
from edge_agent.heatmap.codec import decode_window


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A GNSS-only bundle: 3 minutes in a yard, NMEA written by the capture writers."""
    return yard_gnss_bundle(tmp_path / "b", seconds=180, step_m=0.5, moving_s=60)


def test_replay_writes_the_contract_files_and_one_summary_line(
        bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["replay", str(bundle), "--out", str(out), "--agent", "fl-42",
                 "--cell-m", "5", "--window-s", "30"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("replay: 180 observations")
    assert (out / "positions.csv").read_text().startswith("t,x,y,")
    hm = json.loads((out / "heatmap.json").read_text())
    assert hm["agent"] == "fl-42" and hm["site"] == "plant-y"
    assert hm["grid"] == {"x0": 0.0, "y0": 0.0, "cell_m": 5.0, "nx": 12, "ny": 8}
    assert hm["totals"]["dwell_s"] + json.loads(
        (out / "summary.json").read_text())["totals"]["no_position_s"] == pytest.approx(180, abs=2)
    s = json.loads((out / "summary.json").read_text())
    assert s["sources"]["gnss"]["observations"] == 180
    assert s["windows"] == 7  # 180 s from an aligned start, 30 s windows, + the last step
    assert "health" in s and s["zones"]["yard"]["dwell_s"] == hm["totals"]["dwell_s"]


def test_db_keeps_every_window_in_the_outbox(bundle: Path, tmp_path: Path) -> None:
    out, db = tmp_path / "out", tmp_path / "agent.db"
    assert main(["replay", str(bundle), "--out", str(out), "--db", str(db)]) == 0
    s = json.loads((out / "summary.json").read_text())
    with Outbox(db) as box:
        assert box.counts()["heatmap"]["pending"] == s["windows"] == 4
        items = box.pending(10)
    ws = [decode_window(i.payload) for i in items if i.kind == "heatmap"]
    assert sorted(w.id for w in ws)[0] == "plant-y/fl-01/1794999600/60@1000"  # began at T0+1
    # the same replay again: the same ids, nothing stored twice
    assert main(["replay", str(bundle), "--out", str(out), "--db", str(db)]) == 0
    with Outbox(db) as box:
        assert box.counts()["heatmap"]["pending"] == 4


@pytest.mark.parametrize("what", ["missing", "bad_site", "bad_cell", "bad_agent"])
def test_bad_input_is_one_line_and_exit_2(what: str, bundle: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ["replay", str(bundle), "--out", str(tmp_path / "o")]
    if what == "missing":
        args[1] = str(tmp_path / "nope")
    elif what == "bad_site":
        (bundle / "site.json").write_text('{"site": "x", "bounds": {}}')
    elif what == "bad_cell":
        args += ["--cell-m", "0"]
    else:
        args += ["--agent", "fl/#"]  # would become a wildcard in topics and window ids
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-agent replay: error: ")
    assert not (tmp_path / "o" / "heatmap.json").exists()


def test_progress_line_is_redrawn_in_place_and_cleared(
        bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import edge_agent.pipeline as pipeline

    monkeypatch.setattr(pipeline, "PROGRESS_EVERY", 50)
    pipeline.replay_bundle(bundle, tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert err.count("\rreplay: ") == 3  # 180 observations, one line per 50
    assert "observations" in err and err.endswith("\r\033[K")
