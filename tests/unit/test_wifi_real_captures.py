"""Each Wi-Fi file in tests/data/real-captures gives what its README says: counts, skips, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import CaptureError
from edge_agent.observations import WifiObs
from edge_agent.site import site_from_dict
from edge_agent.sources.wifi import MAX_PLAUSIBLE_RSSI_DBM, MIN_PLAUSIBLE_RSSI_DBM, WifiSource

WIFI = Path(__file__).resolve().parents[1] / "data" / "real-captures" / "wifi"


def replay(name: str) -> tuple[list[WifiObs], WifiSource]:
    src = WifiSource.replay(WIFI / name, None)
    return list(src), src


def test_aircrack_test1_three_signals_four_tx_frames_skipped() -> None:
    obs, src = replay("aircrack-ng_test1.pcap")
    assert len(obs) == 3
    assert all(-86 <= o.rssi_dbm <= -76 for o in obs)  # never 0 dBm
    assert {o.freq_mhz for o in obs} == {2437}
    assert src.stats.skipped["no_signal"] == 4
    assert src.stats.skipped["not_beacon"] == 192 - 7
    assert src.stats.observations == 3
    assert [o.t for o in obs] == sorted(o.t for o in obs)


def test_chrissanders_pcapng_two_strong_observations() -> None:
    obs, src = replay("chrissanders-packets_3e80211_wpaauth.pcapng")
    assert [(o.bssid, o.ssid, o.rssi_dbm, o.channel, o.freq_mhz) for o in obs] == [
        ("28:c6:8e:ab:96:16", "DENVEROFFICE", -16.0, 1, 2412),
        ("28:c6:8e:ab:96:16", "DENVEROFFICE", -15.0, 1, 2412),
    ]
    assert src.stats.skipped == {"not_beacon": 10}
    assert obs[1].t - obs[0].t == pytest.approx(0.295264, abs=1e-6)


def test_tcpdump_meshid_5ghz_empty_ssid() -> None:
    obs, src = replay("tcpdump_ieee802.11_meshid.pcap")
    assert [(o.channel, o.freq_mhz, o.rssi_dbm, o.ssid) for o in obs] == [
        (149, 5745, -34.0, ""), (149, 5745, -34.0, "")]
    assert len({o.bssid for o in obs}) == 1
    assert src.stats.skipped == {"not_beacon": 1}


def test_scapy_bad_rsn_keeps_ssid() -> None:
    obs, src = replay("scapy_bad_rsn_parsing_overrides_ssid.pcap")
    assert [(o.ssid, o.rssi_dbm, o.freq_mhz) for o in obs] == [("ROUTE-821E295", -50.0, 2412)]
    # the file ends with one stray byte after its only record
    assert src.stats.skipped == {"truncated_record": 1}


@pytest.mark.parametrize(("name", "frames"), [
    ("aircrack-ng_wpa-psk-linksys.cap", 587),
    ("wifite2_handshake_not_exists.cap", 1112),
])
def test_plain_80211_is_skipped_with_one_warning(name: str, frames: int) -> None:
    obs, src = replay(name)
    assert obs == []
    assert src.stats.skipped == {"no_radiotap": frames}
    assert len(src.stats.warnings) == 1
    assert "link type 105" in src.stats.warnings[0] and "no signal" in src.stats.warnings[0]


def test_pmkid_truncated_tail_stops_cleanly_and_is_reported() -> None:
    obs, src = replay("aircrack-ng_pmkid-not-recognized.cap")
    assert obs == []
    assert src.stats.skipped == {"no_radiotap": 20056, "truncated_record": 1}
    assert any("truncated" in w and "179 of its 411 bytes" in w for w in src.stats.warnings)


def test_prism_values_are_never_read_as_dbm() -> None:
    obs, src = replay("pypacker_packets_prism.pcap")
    assert obs == []
    assert src.stats.skipped == {"prism_header": 80}
    assert src.stats.warnings == [w for w in src.stats.warnings if "not dBm" in w]
    assert len(src.stats.warnings) == 1


def test_80211ad_dmg_beacon_is_ignored_without_error() -> None:
    obs, src = replay("aircrack-ng_80211ad_beacon.pcap")
    assert obs == []
    assert src.stats.skipped == {"not_beacon": 1}
    assert src.stats.warnings == []


def test_split_capture_without_header_is_a_clear_error() -> None:
    with pytest.raises(CaptureError) as err:
        WifiSource.replay(WIFI / "aircrack-ng_wep_64_ptw_02.cap", None)
    assert "aircrack-ng_wep_64_ptw_02.cap" in str(err.value)
    assert "not a pcap or pcapng file" in str(err.value)
    assert "\n" not in str(err.value)


def test_radiotap_heapoverflow_masked_linktype_malformed_header_counted() -> None:
    obs, src = replay("tcpdump_radiotap-heapoverflow.pcap")
    assert obs == []
    assert src.stats.skipped == {"bad_radiotap": 1}


def test_tim_oobr_masked_80211_linktype_counted() -> None:
    obs, src = replay("tcpdump_ieee802.11_tim_ie_oobr.pcap")
    assert obs == []
    assert src.stats.skipped == {"no_radiotap": 4}  # 0x30000069 & 0xFFFF = 105


def test_site_keeps_only_surveyed_bssids() -> None:
    site = site_from_dict({
        "site": "t", "origin": {"lat": 0.0, "lon": 0.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10},
        "wifi_aps": [{"bssid": "28:10:7B:94:BB:29", "ssid": "ogogo", "channel": 6, "x": 1,
                      "y": 1, "z": 3, "rssi_1m_dbm": -40, "path_loss_exponent": 2.5}],
    })
    src = WifiSource.replay(WIFI / "aircrack-ng_test1.pcap", site)
    obs = list(src)
    assert [(o.bssid, o.rssi_dbm) for o in obs] == [("28:10:7b:94:bb:29", -76.0)]
    assert src.stats.skipped["not_surveyed"] == 2


_REAL_SEEDS = [(WIFI / n).read_bytes() for n in (
    "aircrack-ng_test1.pcap", "chrissanders-packets_3e80211_wpaauth.pcapng",
    "tcpdump_ieee802.11_meshid.pcap", "scapy_bad_rsn_parsing_overrides_ssid.pcap")]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(_REAL_SEEDS),
       st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=12),
       st.integers(0, 2**31))
def test_mutated_real_captures_never_raise_a_traceback(tmp_path: Path, seed: bytes,
                                                       edits: list[tuple[int, int]],
                                                       cut: int) -> None:
    raw = bytearray(seed)
    for pos, val in edits:
        raw[pos % len(raw)] = val
    path = tmp_path / "mutated.pcap"
    path.write_bytes(bytes(raw[: max(4, cut % (len(raw) + 1))]))
    try:
        src = WifiSource.replay(path, None)
        obs = list(src)
    except CaptureError:
        return
    assert all(MIN_PLAUSIBLE_RSSI_DBM <= o.rssi_dbm <= MAX_PLAUSIBLE_RSSI_DBM for o in obs)
    assert [o.t for o in obs] == sorted(o.t for o in obs)
    assert src.stats.observations == len(obs)
