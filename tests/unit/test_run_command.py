"""`edge-agent run` as a command: --simulate end to end into the outbox (tracker health in the
health record), shared option forms, agent id checks, config permissions and precedence."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest

from edge_agent.buffer.outbox import Outbox
from edge_agent.cli import main
from edge_agent.cli_options import parse_host_port
from edge_agent.commands.run import compact_tracker_health, forwarder_kwargs
from edge_agent.config import load_config
from edge_agent.errors import InputError
from edge_agent.heatmap.codec import decode_window
from edge_agent.site import site_from_dict

WINDOW_S = 60.0


def _site(tmp_path: Path) -> Path:
    site = site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81, "alt": 340.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "wifi_aps": [{"bssid": "02:9e:34:71:25:60", "ssid": "ops", "channel": 6, "x": 12.5,
                      "y": 11.6, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}]})
    site.save(tmp_path / "site.json")
    return tmp_path / "site.json"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_simulate_runs_the_live_agent_and_health_carries_the_tracker(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    started = time.time()
    rc = main(["run", "--simulate", "indoor_shift", "--seed", "2", "--duration", "200",
               "--speed", "1000", "--agent", "fl-03", "--db", str(db)])
    assert rc == 0
    with Outbox(db) as box:
        items = box.pending(100)
    windows = [decode_window(i.payload) for i in items if i.kind == "heatmap"]
    assert len(windows) >= 3 and {w.agent for w in windows} == {"fl-03"}
    # Times start now (a window starts on the minute before), not at the simulator's fixed t0.
    assert min(w.start for w in windows) >= started - WINDOW_S - 1
    assert sum(w.dwell_s for w in windows) == pytest.approx(200.0, abs=2.0)  # not compressed
    health = [json.loads(i.payload) for i in items if i.kind == "health"][-1]
    tracker = health["extra"]["tracker"]
    assert {"moved", "suspect", "offsets_db", "gnss_gated", "late"} <= set(tracker)
    assert len(tracker["offsets_db"]) >= 10  # every surveyed AP and beacon of the scenario
    assert tracker["late"] == 0  # the reorder buffer covers the sped-up sources
    assert set(health["extra"]["sources"]) == {"wifi", "ble", "gnss"}


def test_compact_tracker_health_keeps_moved_suspect_and_offsets() -> None:
    h = {"gnss_gated": 3, "late": 1, "wall_loss_db": 9.5, "moved": ["aa"],
         "emitters": {
             "aa": {"kind": "wifi", "offset_db": -1.5, "moved_llr": 80.0, "moved": True,
                    "best_xy": [40.0, 12.0], "samples": 900.0},
             "bb": {"kind": "wifi", "offset_db": 0.5, "moved_llr": 30.0, "moved": False,
                    "best_xy": [3.0, 4.0], "samples": 900.0},
             "cc": {"kind": "ble", "offset_db": 2.0, "moved_llr": 1.0, "moved": False,
                    "best_xy": None, "samples": 80.0}}}
    c = compact_tracker_health(h)
    assert c["moved"] == {"aa": [40.0, 12.0]}
    assert c["suspect"] == ["bb"]
    assert c["offsets_db"] == {"aa": -1.5, "bb": 0.5, "cc": 2.0}
    assert c["gnss_gated"] == 3 and "emitters" not in c
    json.dumps(c)


@pytest.mark.parametrize(("value", "expected"), [
    ("localhost", ("localhost", 2947)), ("localhost:2948", ("localhost", 2948)),
    ("[::1]:2950", ("::1", 2950)), ("[::1]", ("::1", 2947)), ("::1", ("::1", 2947)),
])
def test_host_port_forms(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value, "--gnss-gpsd", 2947) == expected


@pytest.mark.parametrize("value", ["localhost:abc", ":2947", "host:", "h:0", "h:70000",
                                   "[::1", "[::1]x"])
def test_bad_host_port_is_one_input_error(value: str) -> None:
    with pytest.raises(InputError) as e:
        parse_host_port(value, "--gnss-gpsd", 2947)
    assert "--gnss-gpsd" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("command", ["run", "record"])
def test_bad_gpsd_port_exits_2_with_one_line_in_run_and_record(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = _site(tmp_path)
    args = (["run", "--agent", "fl-01", "--db", str(tmp_path / "o.db")] if command == "run"
            else ["record", str(tmp_path / "b")])
    rc = main([*args, "--site", str(site), "--gnss-gpsd", "localhost:abc"])
    assert rc == 2 and "--gnss-gpsd" in _one_line_error(capsys)


@pytest.mark.parametrize("agent", ["a/#", "fl+01", "fl 01", ".fl", "x" * 65])
def test_run_refuses_an_agent_id_that_is_not_a_topic_level(
        agent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "--site", str(_site(tmp_path)), "--agent", agent, "--db",
               str(tmp_path / "o.db"), "--wifi-mode", "termux"])
    assert rc == 2 and "--agent" in _one_line_error(capsys)
    assert not (tmp_path / "o.db").exists()


def test_flush_refuses_an_agent_id_that_is_not_a_topic_level(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_agent.publish.forward import OutboxForwarder

    OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01").close(health=False)
    rc = main(["flush", "--db", str(tmp_path / "o.db"), "--broker", "mqtt://127.0.0.1:1",
               "--agent", "plants/#"])
    assert rc == 2 and "--agent" in _one_line_error(capsys)


def _config(tmp_path: Path, mqtt_version: int, pw_mode: int = 0o600) -> Path:
    site = _site(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    os.chmod(pw, pw_mode)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f'[agent]\nid = "fl-07"\nsite_file = "{site}"\ndata_dir = "{tmp_path}"\n'
                   f'[wifi]\nmode = "termux"\n'
                   f'[mqtt]\nurl = "mqtt://127.0.0.1:1"\npassword_file = "{pw}"\n'
                   f"mqtt_version = {mqtt_version}\n")
    os.chmod(cfg, 0o600)
    return cfg


def _args(argv: list[str]) -> argparse.Namespace:
    from edge_agent.cli import build_parser

    return build_parser().parse_args(["run", *argv])


def test_the_command_line_mqtt_version_overrides_the_config_both_ways(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, 311))
    assert forwarder_kwargs(_args([]), cfg)["mqtt_version"] == 311
    assert forwarder_kwargs(_args(["--mqtt-version", "5"]), cfg)["mqtt_version"] == 5
    cfg5 = load_config(_config(tmp_path, 5))
    assert forwarder_kwargs(_args(["--mqtt-version", "3"]), cfg5)["mqtt_version"] == 3
    assert forwarder_kwargs(_args([]), cfg5)["password"] == "s3cret"


def test_run_refuses_a_config_whose_password_file_is_world_readable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, 5, pw_mode=0o644)
    rc = main(["run", "--config", str(cfg), "--db", str(tmp_path / "o.db")])
    err = _one_line_error(capsys)
    assert rc == 2 and "world-accessible" in err and "chmod o-rwx" in err


def test_run_and_record_share_the_source_option_names() -> None:
    from edge_agent.cli import build_parser

    parser = build_parser()
    for argv in (["run"], ["record", "dir", "--site", "s.json"]):
        ns = parser.parse_args([*argv, "--wifi-mode", "iw", "--iface", "wlan0", "--ble",
                                "--ble-adapter", "hci1", "--gnss-gpsd", "h:1"])
        assert (ns.wifi_mode, ns.ble, ns.ble_adapter, ns.gnss_gpsd) == ("iw", True, "hci1", "h:1")


def test_record_keeps_mode_as_a_hidden_deprecated_alias(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    out = capsys.readouterr().out
    assert "--wifi-mode" in out and "--mode " not in out
    rc = main(["record", str(tmp_path / "b"), "--site", str(_site(tmp_path)), "--mode", "iw"])
    err = capsys.readouterr().err
    assert rc == 2 and "deprecated" in err and "--wifi-mode iw needs --iface" in err


def test_simulate_refuses_radio_options_and_unknown_scenarios(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "o.db")
    assert main(["run", "--simulate", "indoor_shift", "--db", db, "--iface", "wlan1"]) == 2
    assert "--iface" in _one_line_error(capsys)
    assert main(["run", "--simulate", "no_such", "--db", db]) == 2
    assert "indoor_shift" in _one_line_error(capsys)
    assert main(["run", "--simulate", "indoor_shift", "--db", db, "--speed", "0"]) == 2
    assert "--speed" in _one_line_error(capsys)
    assert main(["run", "--site", str(_site(tmp_path)), "--agent", "fl-01", "--db", db,
                 "--speed", "10", "--wifi-mode", "termux"]) == 2
    assert "--simulate" in _one_line_error(capsys)


def test_simulate_with_a_config_uses_the_scenario_survey_and_the_config_agent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, 5)  # its site.json is a one-AP plant-a; its broker is unreachable
    db = tmp_path / "o.db"
    rc = main(["run", "--config", str(cfg), "--simulate", "indoor_shift", "--duration", "90",
               "--speed", "1000", "--db", str(db), "--drain-timeout", "0.5"])
    assert rc == 0, capsys.readouterr().err
    with Outbox(db) as box:
        items = box.pending(100)
    windows = [decode_window(i.payload) for i in items if i.kind == "heatmap"]
    assert windows and {w.agent for w in windows} == {"fl-07"}
    health = [json.loads(i.payload) for i in items if i.kind == "health"][-1]
    assert len(health["extra"]["tracker"]["offsets_db"]) >= 10  # the scenario's emitters


def test_a_plain_broker_option_does_not_inherit_the_configs_tls_files(tmp_path: Path) -> None:
    cfg_path = _config(tmp_path, 5)
    text = cfg_path.read_text().replace('url = "mqtt://127.0.0.1:1"',
                                        'url = "mqtts://broker:8883"\nca_file = "ca.crt"')
    cfg_path.write_text(text)
    cfg = load_config(cfg_path)
    assert forwarder_kwargs(_args([]), cfg)["tls_ca"] == tmp_path / "ca.crt"
    assert forwarder_kwargs(_args(["--broker", "mqtts://other:8883"]), cfg)["tls_ca"] \
        == tmp_path / "ca.crt"
    assert forwarder_kwargs(_args(["--broker", "mqtt://lab:1883"]), cfg)["tls_ca"] is None
