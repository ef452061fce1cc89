"""Bundle.open: site.json required and validated; present captures merged in time order."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_agent.bundle import Bundle
from edge_agent.capture.writers import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    PcapWriter,
    ble_adv_frame,
    write_observations_bundle,
)
from edge_agent.errors import SiteError
from edge_agent.observations import BleObs, GnssFix, Observation, WifiObs
from edge_agent.site import Site, site_from_dict


def make_site() -> Site:
    return site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "wifi_aps": [{"bssid": "02:9e:34:71:25:60", "ssid": "ops", "channel": 1, "x": 1.0,
                      "y": 1.0, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}],
        "ble_beacons": [{"address": "C0:00:00:00:00:01", "x": 5.0, "y": 5.0,
                         "rssi_1m_dbm": -59.0, "path_loss_exponent": 2.0}]})


def test_missing_site_json_is_a_site_error(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=r"site\.json"):
        Bundle.open(tmp_path)


def test_invalid_site_json_is_a_site_error(tmp_path: Path) -> None:
    (tmp_path / "site.json").write_text('{"site": "x"}')
    with pytest.raises(SiteError, match="origin"):
        Bundle.open(tmp_path)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="not a capture bundle"):
        Bundle.open(tmp_path / "nope")


def test_site_only_bundle_has_no_observations(tmp_path: Path) -> None:
    make_site().save(tmp_path / "site.json")
    b = Bundle.open(tmp_path)
    assert b.path == tmp_path and b.site.site == "plant-a"
    assert list(b.observations()) == [] and b.stats() == {}


def test_merges_sources_in_time_order_and_keeps_stats(tmp_path: Path) -> None:
    site = make_site()
    obs: list[Observation] = [WifiObs(10.0 + i, "02:9e:34:71:25:60", -50.0, 1, 2412, "ops")
                              for i in range(5)]
    obs += [BleObs(10.5 + i, "C0:00:00:00:00:01", -70.0, "C0:00:00:00:00:01") for i in range(5)]
    x, y = 20.0, 30.0
    lat, lon = site.to_wgs84(x, y)
    obs += [GnssFix(1_700_000_000.0 + i, x, y, 3.0, 1.0, 1, lat, lon, 8, True) for i in range(3)]
    write_observations_bundle(tmp_path, site, obs)
    b = Bundle.open(tmp_path)
    got = list(b.observations())
    assert [o.t for o in got] == sorted(o.t for o in got)
    assert [type(o).__name__ for o in got[:4]] == ["WifiObs", "BleObs", "WifiObs", "BleObs"]
    assert {k: s.observations for k, s in b.stats().items()} == {"wifi": 5, "ble": 5, "gnss": 3}


def test_survey_mode_keeps_unsurveyed_emitters(tmp_path: Path) -> None:
    make_site().save(tmp_path / "site.json")
    with PcapWriter(tmp_path / "ble.pcap", LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        w.write(1.0, ble_adv_frame("C0:00:00:00:00:01", -60))
        w.write(2.0, ble_adv_frame("C0:00:00:00:00:02", -60))
    b = Bundle.open(tmp_path)
    assert len(list(b.observations())) == 1
    assert b.stats()["ble"].skipped["not_surveyed"] == 1
    assert len(list(b.observations(survey=True))) == 2


def test_real_captures_as_a_bundle(tmp_path: Path, real_captures: Path) -> None:
    """Real third-party files dropped into a bundle: each source reads its own file."""
    make_site().save(tmp_path / "site.json")
    shutil.copy(real_captures / "gnss/gpsd_neo-m8n.log", tmp_path / "gps.nmea")
    shutil.copy(real_captures / "wifi/aircrack-ng_test1.pcap", tmp_path / "wifi.pcap")
    b = Bundle.open(tmp_path)
    got = list(b.observations(survey=True))
    assert sum(isinstance(o, WifiObs) for o in got) == 3
    assert sum(isinstance(o, GnssFix) for o in got) == 23
    assert [o.t for o in got] == sorted(o.t for o in got)
