"""BLE pcap replay: each real capture gives what tests/data/real-captures/README.md says, and the
site survey filters advertisers (privacy) by address or iBeacon id."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.capture.writers import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    PcapWriter,
    ble_adv_frame,
)
from edge_agent.errors import CaptureError
from edge_agent.site import Site, site_from_dict
from edge_agent.sources.ble import BleSource

IBEACON_ID = "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6/1/1"  # in pypacker_packets_btle.pcap
CRACKLE_ADDR = "7D:43:82:42:23:16"


def make_site(beacons: list[dict[str, object]]) -> Site:
    return site_from_dict({
        "site": "t", "origin": {"lat": 47.0, "lon": 6.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 50, "ymax": 50},
        "ble_beacons": [{"x": 1.0, "y": 2.0, "rssi_1m_dbm": -59, "path_loss_exponent": 2.0, **b}
                        for b in beacons]})


def test_crackle_le_secure_connections(real_captures: Path) -> None:
    """README: 44 adv PDUs = 40 ADV_IND + 2 SCAN_RSP + 1 SCAN_REQ + 1 CONNECT_IND; 259 data PDUs.

    The README's "43 sightings" disagrees with its own breakdown: ADV_IND + SCAN_RSP is 42.
    """
    src = BleSource.replay(real_captures / "ble/crackle_le_secure_connections.pcapng", None)
    obs = list(src)
    assert len(obs) == 42
    assert {o.beacon_id for o in obs} == {CRACKLE_ADDR}
    assert all(-5 <= o.rssi_dbm <= 0 for o in obs)
    assert src.stats.skipped == {"data_channel": 259, "not_advertiser_pdu": 2}
    assert src.stats.observations == 42


def test_pypacker_btle2_drops_crc_invalid_and_positive_rssi(real_captures: Path) -> None:
    src = BleSource.replay(real_captures / "ble/pypacker_packets_btle2.pcap", None)
    obs = list(src)
    # 406 frames, CRC valid on 138: 106 ADV_IND + 3 SCAN_REQ + 1 CONNECT_IND + 28 data.
    assert src.stats.skipped["crc_invalid"] == 406 - 138
    assert len(obs) == 106
    assert all(o.rssi_dbm <= 0 for o in obs)  # the 30 frames with "+dBm" all fail their CRC
    assert {o.beacon_id for o in obs} == {"75:DE:3B:16:C0:F5"}


def test_pypacker_btle_signal_valid_flag_and_time_gaps(real_captures: Path) -> None:
    src = BleSource.replay(real_captures / "ble/pypacker_packets_btle.pcap", None)
    obs = list(src)
    # ADV_IND, SCAN_RSP, ADV_NONCONN_IND (iBeacon) are sightings; SCAN_REQ, CONNECT_IND are not.
    assert [o.beacon_id for o in obs] == ["C4:BE:84:34:1D:24", "C4:BE:84:34:1D:24", IBEACON_ID]
    assert [o.rssi_dbm for o in obs] == [-55.0, -120.0, -120.0]
    assert obs[-1].t - obs[0].t > 20 * 86400  # sessions weeks apart, still in order
    assert src.stats.skipped["not_advertiser_pdu"] == 2
    assert src.stats.skipped["data_channel"] == 25


def test_crackle_ppi_is_skipped_with_warning_never_read_as_dbm(real_captures: Path) -> None:
    src = BleSource.replay(real_captures / "ble/crackle_pairing_and_ltk_exchange.pcap", None)
    assert list(src) == []
    assert src.stats.skipped == {"unsupported_linktype": 713}
    assert len(src.stats.warnings) == 1 and "PPI" in src.stats.warnings[0]


def test_site_keeps_only_surveyed_beacons(real_captures: Path) -> None:
    site = make_site([{"uuid": IBEACON_ID.split("/")[0], "major": 1, "minor": 1}])
    src = BleSource.replay(real_captures / "ble/pypacker_packets_btle.pcap", site)
    obs = list(src)
    assert [o.beacon_id for o in obs] == [IBEACON_ID]
    assert obs[0].address == "00:07:80:02:75:4E"
    assert src.stats.skipped["not_surveyed"] == 2


def test_site_matches_by_address(real_captures: Path) -> None:
    site = make_site([{"address": CRACKLE_ADDR.lower()}])
    obs = list(BleSource.replay(real_captures / "ble/crackle_le_secure_connections.pcapng", site))
    assert len(obs) == 42 and obs[0].beacon_id == CRACKLE_ADDR


def test_unsurveyed_advertiser_is_counted_not_emitted(tmp_path: Path) -> None:
    p = tmp_path / "ble.pcap"
    with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        w.write(100.0, ble_adv_frame("C0:00:00:00:00:01", -60))
        w.write(101.0, ble_adv_frame("C0:00:00:00:00:02", -61))
        w.write(102.0, ble_adv_frame("C0:00:00:00:00:01", 5))  # +5 dBm: impossible
    src = BleSource.replay(p, make_site([{"address": "C0:00:00:00:00:01"}]))
    obs = list(src)
    assert [(o.t, o.rssi_dbm) for o in obs] == [(100.0, -60.0)]
    assert src.stats.skipped == {"not_surveyed": 1, "implausible_rssi": 1}


def test_time_going_backwards_is_dropped_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "ble.pcap"
    with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        for t in (10.0, 12.0, 11.0, 13.0):
            w.write(t, ble_adv_frame("C0:00:00:00:00:01", -60))
    src = BleSource.replay(p, None)
    assert [o.t for o in src] == [10.0, 12.0, 13.0]
    assert src.stats.skipped["out_of_order"] == 1


def test_not_a_capture_is_a_capture_error(tmp_path: Path) -> None:
    p = tmp_path / "ble.pcap"
    p.write_bytes(b"hello, this is not a pcap")
    with pytest.raises(CaptureError, match=r"ble\.pcap"):
        BleSource.replay(p, None)


def test_many_distinct_packets_overflow_the_decode_cache_safely(tmp_path: Path) -> None:
    from edge_agent.sources.ble import MAX_CACHED_PACKETS

    n = MAX_CACHED_PACKETS + 500
    p = tmp_path / "ble.pcap"
    with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        for i in range(n):
            w.write(float(i), ble_adv_frame(f"C0:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}", -60))
        w.write(float(n), ble_adv_frame("C0:00:00:00:00:00", -61))  # first advertiser again
    obs = list(BleSource.replay(p, make_site([{"address": "C0:00:00:00:00:00"}])))
    assert [(o.t, o.rssi_dbm) for o in obs] == [(0.0, -60.0), (float(n), -61.0)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=60),
                          st.builds(ble_adv_frame, st.just("C0:00:00:00:00:01"),
                                    st.integers(-130, 60))), max_size=10))
def test_random_records_only_skip(frames: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ble.pcap"
        with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
            for i, f in enumerate(frames):
                w.write(float(i), f)
        src = BleSource.replay(p, None)
        obs = list(src)
        assert all(-127 <= o.rssi_dbm <= 0 for o in obs)
        assert src.stats.observations + sum(src.stats.skipped.values()) == len(frames)


# --- survey mode's privacy filter: beacons only (edge-agent survey) ---

def test_survey_beacons_only_keeps_the_real_ibeacon_and_counts_the_phone(
        real_captures: Path) -> None:
    # pypacker_packets_btle: C4:BE:84:34:1D:24 is a plain advertiser (ADV_IND + SCAN_RSP), the
    # ADV_NONCONN_IND an iBeacon. Unfiltered survey mode keeps all three sightings (above).
    src = BleSource.replay(real_captures / "ble/pypacker_packets_btle.pcap", None,
                           beacons_only=True)
    obs = list(src)
    assert [o.beacon_id for o in obs] == [IBEACON_ID]
    assert src.stats.skipped["not_beacon"] == 2
    assert src.stats.observations + sum(src.stats.skipped.values()) == 30


def test_survey_beacons_only_drops_a_non_beacon_advertiser(real_captures: Path) -> None:
    # crackle_le_secure_connections: one device pairing (ADV_IND/SCAN_RSP, no beacon frame):
    # its 42 sightings are counted, not kept; the other reasons are unchanged.
    src = BleSource.replay(real_captures / "ble/crackle_le_secure_connections.pcapng", None,
                           beacons_only=True)
    assert list(src) == []
    assert src.stats.skipped == {"data_channel": 259, "not_advertiser_pdu": 2, "not_beacon": 42}


def test_survey_keeps_an_advertiser_the_site_lists_by_address(real_captures: Path) -> None:
    src = BleSource.replay(real_captures / "ble/crackle_le_secure_connections.pcapng", None,
                           beacons_only=True, known_addresses=[CRACKLE_ADDR.lower()])
    assert len(list(src)) == 42 and "not_beacon" not in src.stats.skipped


def test_survey_beacons_only_keeps_eddystone(tmp_path: Path) -> None:
    p = tmp_path / "ble.pcap"
    with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        w.write(1.0, ble_adv_frame("C0:00:00:00:00:01", -60,
                                   eddystone_uid=("00112233445566778899", "aabbccddeeff", -20)))
        w.write(2.0, ble_adv_frame("C0:00:00:00:00:02", -61))
    src = BleSource.replay(p, None, beacons_only=True)
    assert [o.address for o in src] == ["C0:00:00:00:00:01"]
    assert src.stats.skipped == {"not_beacon": 1}


def test_beacons_only_does_not_touch_the_site_filter(real_captures: Path) -> None:
    site = make_site([{"address": CRACKLE_ADDR}])
    src = BleSource.replay(real_captures / "ble/crackle_le_secure_connections.pcapng", site,
                           beacons_only=True)
    assert len(list(src)) == 42


def test_live_matcher_applies_the_same_filter() -> None:
    from edge_agent.sources.base import SourceStats
    from edge_agent.sources.ble import BleMatcher
    from edge_agent.sources.ble_adv import payload_from_bleak

    stats = SourceStats()
    m = BleMatcher(None, stats, beacons_only=True)
    phone = payload_from_bleak({0x004C: bytes.fromhex("1005031c")}, {}, None)  # Apple, no iBeacon
    assert m.observe(1.0, "5A:00:00:00:00:01", phone, -60.0) is None
    assert stats.skipped == {"not_beacon": 1}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-2.0, 3.0), st.integers(0, 2), st.integers(-128, 127),
                          st.booleans()), max_size=30))
def test_replay_loop_agrees_with_ble_matcher(records: list[tuple[float, int, int, bool]]) -> None:
    """The replay loop inlines BleMatcher.emit: same observations and skip counts as decoding
    every record and calling BleMatcher.observe (signal missing, implausible, unsurveyed,
    time going back - in any combination)."""
    from edge_agent.sources.base import SourceStats
    from edge_agent.sources.ble import BleMatcher
    from edge_agent.sources.ble_adv import FLAG_SIGNAL_VALID, parse_phdr_frame
    from edge_agent.sources.pcap import open_pcap

    site = make_site([{"address": "C0:00:00:00:00:01"}, {"address": "C0:00:00:00:00:02"}])
    frames = []
    t = 1000.0
    for dt, addr, rssi, signal_valid in records:
        t += dt
        record = bytearray(ble_adv_frame(f"C0:00:00:00:00:0{addr + 1}", rssi))
        if not signal_valid:
            record[8] &= ~FLAG_SIGNAL_VALID & 0xFF
        frames.append((round(t, 6), bytes(record)))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ble.pcap"
        with PcapWriter(p, LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
            for t_s, data in frames:
                w.write(t_s, data)
        src = BleSource.replay(p, site)
        got = list(src)
        with open_pcap(p) as reader:
            stored = [(t_s, data) for t_s, _linktype, data in reader]
    stats = SourceStats()
    matcher = BleMatcher(site, stats)
    want = []
    for t_s, data in stored:
        frame = parse_phdr_frame(data)
        obs = matcher.observe(t_s, frame.address, frame.payload, frame.rssi_dbm)
        if obs is not None:
            want.append(obs)
    assert got == want
    assert src.stats.skipped == stats.skipped
    assert src.stats.observations == stats.observations == len(want)
