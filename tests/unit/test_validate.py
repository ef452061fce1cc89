"""`edge-agent validate`: exit 0 on good files, exit 2 with field and value on bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main

SITE = {
    "site": "plant-a", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
    "wifi_aps": [{"bssid": "02:9e:34:71:25:60", "ssid": "plant-ops", "channel": 1, "x": 12.5,
                  "y": 11.6, "z": 6.0, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}],
}


def test_good_site_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "site.json"
    p.write_text(json.dumps(SITE))
    assert main(["validate", str(p)]) == 0
    assert "ok (site plant-a, 1 APs" in capsys.readouterr().out


def test_bad_site_names_field_and_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = json.loads(json.dumps(SITE))
    bad["wifi_aps"][0]["path_loss_exponent"] = 9.5
    p = tmp_path / "site.json"
    p.write_text(json.dumps(bad))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "wifi_aps[0].path_loss_exponent" in err and "9.5" in err and str(p) in err


def test_ap_outside_bounds_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = json.loads(json.dumps(SITE))
    s["wifi_aps"][0]["x"] = 250.0
    p = tmp_path / "site.json"
    p.write_text(json.dumps(s))
    assert main(["validate", str(p)]) == 0
    assert "outside bounds" in capsys.readouterr().err


def test_config_is_checked_with_its_site_and_permissions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.json").write_text(json.dumps(SITE))
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nid = "fl-01"\nsite_file = "site.json"\n\n[mqtt]\n'
                   'url = "mqtt://broker:1883"\nsite = "plant-b"\npassword = "x"\n')
    cfg.chmod(0o600)
    assert main(["validate", str(cfg)]) == 0
    captured = capsys.readouterr()
    assert "ok (agent fl-01, site plant-a" in captured.out
    assert "differs from the site.json" in captured.err
    cfg.chmod(0o644)
    assert main(["validate", str(cfg)]) == 2
    assert "world-accessible" in capsys.readouterr().err


def test_config_with_unknown_key_and_missing_site(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nid = "fl-01"\nsite_file = "site.json"\nsite_fiel = "x"\n')
    assert main(["validate", str(cfg)]) == 2
    assert "agent.site_fiel" in capsys.readouterr().err
    cfg.write_text('[agent]\nid = "fl-01"\nsite_file = "nope.json"\n')
    assert main(["validate", str(cfg)]) == 2
    assert "nope.json" in capsys.readouterr().err


def _hall_and_yard() -> dict[str, object]:
    """SITE with the spec's zones: a 100 m x 60 m hall, a 30 m deep yard north of it."""
    s: dict[str, object] = json.loads(json.dumps(SITE))
    s["zones"] = [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]],
                   "indoor": True},
                  {"name": "yard", "polygon": [[0, 60], [100, 60], [100, 90], [0, 90]],
                   "indoor": False}]
    return s


def _validate(path: Path, site: dict[str, object],
              capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """Write the site to path, run `edge-agent validate` on it (it must pass): (stdout, stderr)."""
    path.write_text(json.dumps(site))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr()
    return out.out, out.err


def test_aisles_that_leave_a_zone_uncovered_are_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the spec's example: one 10 m aisle in a 100 m x 90 m plant
    s = _hall_and_yard()
    s["aisles"] = [{"from": [10.0, 5.0], "to": [10.0, 15.0], "width_m": 3.5}]
    out, err = _validate(tmp_path / "site.json", s, capsys)
    assert "1 aisles: 2-D tracking" in out
    assert "aisles: they leave a zone uncovered (near an aisle: hall 4%, yard 0%)" in err
    # aisles every 10 m across both zones: the aisle filter, no warning
    s["aisles"] = [{"from": [5.0, y], "to": [95.0, y], "width_m": 3.0}
                   for y in range(5, 90, 10)]
    out, err = _validate(tmp_path / "site.json", s, capsys)
    assert "9 aisles: aisle filter" in out
    assert "aisles:" not in err
    # ... but none of them crosses the wall: no door known, which the engineer is told
    assert "doors: no aisle crosses from an indoor zone into an outdoor one" in err
    assert "0 doors" in out
    # an aisle through the wall at x = 50 makes a door there
    s["aisles"].append({"from": [50.0, 45.0], "to": [50.0, 75.0], "width_m": 4.0})
    out, err = _validate(tmp_path / "site.json", s, capsys)
    assert "10 aisles: aisle filter; 1 door (50.0, 60.0)" in out
    assert "doors:" not in err


def test_aisles_in_the_hall_only_make_the_yard_open_ground(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _hall_and_yard()
    s["aisles"] = [{"from": [5.0, y], "to": [95.0, y], "width_m": 3.0} for y in range(5, 60, 10)]
    out, err = _validate(tmp_path / "site.json", s, capsys)
    assert "6 aisles: aisle filter + open ground in yard; 0 doors" in out
    assert "the agent tracks yard as open ground, off the aisles" in err
