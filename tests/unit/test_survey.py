"""Survey: per-transmitter signal statistics, surveyed/missing marking, the draft site.json."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.errors import SiteError
from edge_agent.observations import BleObs, GnssNoFix, Observation, WifiObs
from edge_agent.site import BleBeacon, Bounds, Origin, Site, WifiAp, site_from_dict
from edge_agent.survey import draft_site, format_table, survey

SITE = Site("plant-a", Origin(47.0, 7.0), Bounds(0, 0, 50, 50),
            wifi_aps=(WifiAp("02:00:00:00:00:01", "ops", 1, 5, 5, 3, -40, 2.5),
                      WifiAp("02:00:00:00:00:09", "ops", 11, 45, 45, 3, -40, 2.5)),
            ble_beacons=(BleBeacon("", "fda50693-a4e2-4fb1-afcf-c6eb07647825", 1, 7, 10, 3, 2.5,
                                   -59, 2.0),))
IB = "fda50693-a4e2-4fb1-afcf-c6eb07647825/1/7"


def observations() -> list[Observation]:
    obs: list[Observation] = []
    for i, r in enumerate([-50, -52, -48, -55, -45]):
        obs.append(WifiObs(100.0 + i, "02:00:00:00:00:01", r, 1, ssid="ops"))
    for i in range(12):
        obs.append(WifiObs(100.5 + i, "0a:11:22:33:44:55", -80 + (i % 3), 6, ssid="neighbour"))
    obs.append(WifiObs(101.0, "0a:99:99:99:99:99", -90, 11))  # a passing hotspot: once
    obs.append(GnssNoFix(101.5))
    for i in range(3):
        obs.append(BleObs(102.0 + i, IB, -70 - i, address="C0:12:34:56:78:9A"))
    for i in range(11):
        obs.append(BleObs(103.0 + i, "D0:00:00:00:00:01", -75, address="D0:00:00:00:00:01"))
    return obs


def test_stats_per_transmitter_match_statistics_module() -> None:
    rep = survey(observations(), SITE)
    by = {h.key: h for h in rep.heard}
    ap = by["02:00:00:00:00:01"]
    vals = [-50, -52, -48, -55, -45]
    assert ap.count == 5 and ap.surveyed and ap.channels == {1}
    assert ap.mean_dbm == pytest.approx(statistics.mean(vals))
    assert ap.std_db == pytest.approx(statistics.stdev(vals))
    assert (ap.min_dbm, ap.max_dbm, ap.first_t, ap.last_t) == (-55, -45, 100.0, 104.0)
    assert not by["0a:11:22:33:44:55"].surveyed and by["0a:11:22:33:44:55"].ssid == "neighbour"
    assert by[IB].surveyed and by[IB].kind == "ble"
    assert rep.observations == 5 + 12 + 1 + 3 + 11  # the GNSS epoch is not counted
    assert [m.key for m in rep.missing] == ["02:00:00:00:00:09"]
    assert rep.heard[0].key == "02:00:00:00:00:01"  # strongest Wi-Fi first


def test_json_and_table_shapes() -> None:
    rep = survey(observations(), SITE)
    d = rep.to_dict()
    assert d["surveyed_not_heard"][0]["id"] == "02:00:00:00:00:09"
    assert d["surveyed_not_heard"][0]["rssi_mean_dbm"] is None
    assert json.loads(json.dumps(d))["heard"][0]["count"] == 5
    table = format_table(rep)
    assert "NOT HEARD" in table and "neighbour" in table


def test_draft_site_adds_frequent_new_transmitters_with_positions_to_fill_in() -> None:
    draft = draft_site(survey(observations(), SITE), SITE, min_count=10)
    bssids = [a["bssid"] for a in draft["wifi_aps"]]
    assert bssids == ["02:00:00:00:00:01", "02:00:00:00:00:09", "0a:11:22:33:44:55"]
    new_ap = draft["wifi_aps"][2]
    assert new_ap["x"] is None and new_ap["channel"] == 6 and new_ap["ssid"] == "neighbour"
    assert [b.get("address") for b in draft["ble_beacons"]] == [None, "D0:00:00:00:00:01"]
    with pytest.raises(SiteError, match=r"wifi_aps\[2\]\.x"):
        site_from_dict(draft, "draft.json")
    new_ap.update(x=20.0, y=30.0)
    draft["ble_beacons"][1].update(x=1.0, y=2.0)
    site = site_from_dict(draft, "draft.json")
    assert len(site.wifi_aps) == 3 and len(site.ble_beacons) == 2


def test_draft_without_a_site_needs_origin_and_bounds() -> None:
    draft = draft_site(survey(observations()), None, name="plant-x", min_count=10)
    assert draft["site"] == "plant-x" and draft["origin"]["lat"] is None
    assert len(draft["wifi_aps"]) == 1  # the surveyed AP was heard only 5 times: not in draft


def test_cli_on_a_real_capture(tmp_path: Path, real_captures: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    cap = real_captures / "wifi" / "aircrack-ng_test1.pcap"
    out = tmp_path / "draft.json"
    assert main(["survey", "--capture", str(cap), "--json", "--write-site", str(out),
                 "--min-count", "1"]) == 0
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    ssids = {h["ssid"] for h in rep["heard"]}
    assert {"ogogo", "Lekonora", "Smile)"} <= ssids
    assert "3 APs and 0 beacons heard" in captured.err and "not_beacon" in captured.err
    draft = json.loads(out.read_text())
    assert len(draft["wifi_aps"]) == 3


def test_cli_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["survey", "--capture", str(tmp_path / "nope.pcap")]) == 2
    assert "nope.pcap" in capsys.readouterr().err


def test_cli_draft_never_lists_a_non_beacon_ble_device(tmp_path: Path, real_captures: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # pypacker_packets_btle: one plain advertiser (a person's device, for all we know) and one
    # iBeacon. Only the iBeacon may reach the report and the draft site.json.
    cap = real_captures / "ble" / "pypacker_packets_btle.pcap"
    out = tmp_path / "draft.json"
    assert main(["survey", "--capture", str(cap), "--json", "--write-site", str(out),
                 "--min-count", "1"]) == 0
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert [h["address"] for h in rep["heard"]] == ["00:07:80:02:75:4E"]
    assert "C4:BE:84:34:1D:24" not in captured.out
    assert "ble not_beacon 2" in captured.err
    draft = json.loads(out.read_text())
    assert [b["uuid"] for b in draft["ble_beacons"]] == ["2f234454-cf6d-4a0f-adf2-f4911ba9ffa6"]
    assert "C4:BE:84:34:1D:24" not in out.read_text()


def test_cli_keeps_a_non_beacon_advertiser_the_site_lists(tmp_path: Path, real_captures: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    site = tmp_path / "site.json"
    site.write_text(json.dumps({
        "site": "t", "origin": {"lat": 47.0, "lon": 6.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 50, "ymax": 50},
        "ble_beacons": [{"id": "tag-1", "address": "7D:43:82:42:23:16", "x": 1.0, "y": 2.0,
                         "rssi_1m_dbm": -59, "path_loss_exponent": 2.0}]}))
    cap = real_captures / "ble" / "crackle_le_secure_connections.pcapng"
    assert main(["survey", "--capture", str(cap), "--site", str(site), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [(h["count"], h["surveyed"]) for h in rep["heard"]] == [(42, True)]
    assert rep["surveyed_not_heard"] == []


def test_wifi_mode_option_and_its_old_name() -> None:
    from edge_agent.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["survey", "--iface", "wlan1", "--wifi-mode", "iw"]).mode == "iw"
    assert parser.parse_args(["survey", "--iface", "wlan1", "--mode", "iw"]).mode == "iw"
    assert parser.parse_args(["survey", "--iface", "wlan1"]).mode == "monitor"
