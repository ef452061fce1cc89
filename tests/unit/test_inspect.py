"""`edge-agent inspect`: any one capture, recognised by header or NMEA text, in survey mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.capture.writers import LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR, PcapWriter, ble_adv_frame
from edge_agent.cli import main


def inspect_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["inspect", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object on one line
    report: dict[str, Any] = json.loads(out)
    return report


def test_aircrack_test1_reports_three_wifi_observations(real_captures: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    r = inspect_json(real_captures / "wifi/aircrack-ng_test1.pcap", capsys)
    assert r["observations"] == {"wifi": 3, "ble": 0, "gnss": 0}
    assert r["skipped"]["no_signal"] == 4
    assert r["format"] == "pcap" and r["kind"] == "wifi" and r["distinct_bssids"] == 3
    assert r["file"].endswith("aircrack-ng_test1.pcap")


def test_ble_pcapng_is_recognised_by_link_type(real_captures: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    r = inspect_json(real_captures / "ble/crackle_le_secure_connections.pcapng", capsys)
    assert r["format"] == "pcapng" and r["kind"] == "ble"
    assert r["observations"] == {"wifi": 0, "ble": 42, "gnss": 0}
    assert r["distinct_advertisers"] == 1 and r["skipped"]["data_channel"] == 259
    assert 1.0 < r["duration_s"] < 10.0


def test_ppi_ble_capture_warns_and_counts(real_captures: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    r = inspect_json(real_captures / "ble/crackle_pairing_and_ltk_exchange.pcap", capsys)
    assert r["observations"]["ble"] == 0
    assert r["skipped"] == {"unsupported_linktype": 713} and r["warnings"]


def test_nmea_log(real_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = inspect_json(real_captures / "gnss/gpsd_telit-he910.log", capsys)
    assert r["format"] == "nmea" and r["kind"] == "gnss"
    assert r["observations"] == {"wifi": 0, "ble": 0, "gnss": 187}
    assert r["duration_s"] == pytest.approx(185.7, abs=0.01)


def test_nmea_log_with_binary_is_still_nmea(real_captures: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    r = inspect_json(real_captures / "gnss/gpsd_ublox-zed-f9p_hpg1.11.log", capsys)
    assert r["observations"]["gnss"] == 655 and r["skipped"]["non_nmea"] > 0


def test_text_report(real_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(real_captures / "gnss/gpsd_rx210.log")]) == 0
    out = capsys.readouterr().out
    assert "gnss 40" in out and "no fix epochs: 22" in out and "proprietary 1" in out


def test_headerless_chunk_exits_2_with_one_line(real_captures: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(real_captures / "wifi/aircrack-ng_wep_64_ptw_02.cap")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "aircrack-ng_wep_64_ptw_02.cap" in err


@pytest.mark.parametrize("content", [b"", b"just some text\n", b"\xd4\xc3\xb2"])
def test_unreadable_files_exit_2(tmp_path: Path, content: bytes,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.cap"
    p.write_bytes(content)
    assert main(["inspect", str(p), "--json"]) == 2
    assert capsys.readouterr().out == ""


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope.pcap")]) == 2
    assert "nope.pcap" in capsys.readouterr().err


def test_survey_mode_counts_every_advertiser(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ble.pcap"
    with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        for i in range(5):
            w.write(100.0 + i, ble_adv_frame(f"C0:00:00:00:00:0{i}", -60 - i))
    r = inspect_json(p, capsys)
    assert r["observations"]["ble"] == 5 and r["distinct_advertisers"] == 5
    assert (r["start"], r["end"]) == (100.0, 104.0)
