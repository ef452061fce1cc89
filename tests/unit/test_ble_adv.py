"""BLE frame parsing: LE LL PHDR flags, advertising PDUs, AD structures, iBeacon and Eddystone."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.capture.writers import ble_adv_frame, eddystone_uid_data
from edge_agent.sources.ble_adv import (
    ADV_ACCESS_ADDRESS,
    EDDYSTONE_SERVICE_UUID,
    PDU_ADV_NONCONN_IND,
    EddystoneTlm,
    EddystoneUid,
    EddystoneUrl,
    FrameSkip,
    parse_ad_structures,
    parse_eddystone,
    parse_ibeacon,
    parse_phdr_frame,
    payload_from_bleak,
    plausible_rssi,
)
from edge_agent.sources.pcap import open_pcap

UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"


def with_flags(frame: bytes, flags: int) -> bytes:
    return frame[:8] + struct.pack("<H", flags) + frame[10:]


def test_ibeacon_frame_decodes_address_rssi_and_id() -> None:
    frame = ble_adv_frame("C0:12:34:56:78:9A", -67, ibeacon=(UUID, 1, 7, -59), channel=38)
    f = parse_phdr_frame(frame)
    assert f.access_address == ADV_ACCESS_ADDRESS
    assert f.pdu_type == PDU_ADV_NONCONN_IND
    assert f.address == "C0:12:34:56:78:9A"
    assert f.rssi_dbm == -67
    assert f.rf_channel == 12  # advertising channel 38 is RF channel 12 (2426 MHz)
    assert f.payload is not None and f.payload.ibeacon is not None
    assert f.payload.ibeacon.beacon_id == f"{UUID}/1/7"
    assert f.payload.ibeacon.tx_power_dbm == -59


def test_signal_valid_flag_clear_gives_no_rssi() -> None:
    frame = with_flags(ble_adv_frame("C0:12:34:56:78:9A", -67), 0x0001 | 0x0400 | 0x0800)
    assert parse_phdr_frame(frame).rssi_dbm is None


def test_crc_checked_but_invalid_is_dropped() -> None:
    frame = with_flags(ble_adv_frame("C0:12:34:56:78:9A", -67), 0x0002 | 0x0400)
    with pytest.raises(FrameSkip) as e:
        parse_phdr_frame(frame)
    assert e.value.reason == "crc_invalid"


def test_crc_not_checked_is_kept() -> None:
    frame = with_flags(ble_adv_frame("C0:12:34:56:78:9A", -67), 0x0002)
    assert parse_phdr_frame(frame).rssi_dbm == -67


def test_data_channel_packet_has_no_pdu_type() -> None:
    frame = bytearray(ble_adv_frame("C0:12:34:56:78:9A", -67))
    frame[10:14] = struct.pack("<I", 0x50654A3B)
    f = parse_phdr_frame(bytes(frame))
    assert f.access_address != ADV_ACCESS_ADDRESS and f.pdu_type is None


@pytest.mark.parametrize("n", [0, 5, 13, 15])
def test_truncated_frames_are_skipped(n: int) -> None:
    with pytest.raises(FrameSkip) as e:
        parse_phdr_frame(ble_adv_frame("C0:12:34:56:78:9A", -67)[:n])
    assert e.value.reason == "truncated"


@pytest.mark.parametrize(("rssi", "ok"), [(-127, True), (0, True), (-40, True), (1, False),
                                          (51, False), (-128, False)])
def test_rssi_sanity_bounds(rssi: int, ok: bool) -> None:
    assert plausible_rssi(rssi) is ok


def test_eddystone_uid_frame() -> None:
    adv = eddystone_uid_data("00112233445566778899", "aabbccddeeff", -20)
    payload = parse_ad_structures(adv)
    assert payload.eddystone == EddystoneUid("00112233445566778899", "aabbccddeeff", -20)


def test_eddystone_url_expands_scheme_and_suffix() -> None:
    # Example from the Eddystone-URL spec: https://www. + "goo.gl/S6zT6P" style encoding
    data = bytes([0x10, 0xEB, 0x01]) + b"example" + bytes([0x07])
    assert parse_eddystone(data) == EddystoneUrl("https://www.example.com", -21)


def test_eddystone_tlm_units() -> None:
    data = bytes([0x20, 0x00]) + struct.pack(">HhII", 3000, 0x1880, 1234, 36000)
    assert parse_eddystone(data) == EddystoneTlm(3000, 24.5, 1234, 3600.0)


def test_eddystone_tlm_unsupported_temperature() -> None:
    data = bytes([0x20, 0x00]) + struct.pack(">HhII", 3000, -0x8000, 1, 1)
    tlm = parse_eddystone(data)
    assert isinstance(tlm, EddystoneTlm) and tlm.temperature_c is None


def test_ad_structure_running_past_the_end_is_flagged_not_raised() -> None:
    payload = parse_ad_structures(bytes([0x02, 0x01, 0x06, 0x1A, 0xFF, 0x4C, 0x00]))
    assert payload.malformed and payload.manufacturer_data == {}


def test_ibeacon_needs_its_prefix_and_length() -> None:
    good = b"\x02\x15" + uuid.UUID(UUID).bytes + struct.pack(">HHb", 1, 2, -59)
    assert parse_ibeacon(good) is not None
    assert parse_ibeacon(good[:-1]) is None
    assert parse_ibeacon(b"\x12\x19" + good[2:]) is None


def test_bleak_dicts_give_the_same_payload_as_pcap_bytes() -> None:
    frame = ble_adv_frame("C0:12:34:56:78:9A", -67, ibeacon=(UUID, 3, 4, -59))
    from_pcap = parse_phdr_frame(frame).payload
    assert from_pcap is not None
    from_bleak = payload_from_bleak(dict(from_pcap.manufacturer_data), {})
    assert from_bleak.ibeacon == from_pcap.ibeacon
    eddy = parse_ad_structures(eddystone_uid_data("00112233445566778899", "aabbccddeeff", -20))
    bleak_eddy = payload_from_bleak({}, {EDDYSTONE_SERVICE_UUID: eddy.service_data[0xFEAA]})
    assert bleak_eddy.eddystone == eddy.eddystone


def test_real_ibeacon_advertisement(real_captures) -> None:  # type: ignore[no-untyped-def]
    """pypacker_packets_btle.pcap frame 4 is an ADV_NONCONN_IND iBeacon."""
    frames = [d for _t, _lt, d in open_pcap(real_captures / "ble/pypacker_packets_btle.pcap")]
    f = parse_phdr_frame(frames[3])
    assert f.pdu_type == PDU_ADV_NONCONN_IND and f.address == "00:07:80:02:75:4E"
    assert f.payload is not None and f.payload.ibeacon is not None
    assert f.payload.ibeacon.beacon_id == "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6/1/1"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_only_skip(data: bytes) -> None:
    try:
        f = parse_phdr_frame(data)
    except FrameSkip:
        return
    assert f.pdu_type is None or 0 <= f.pdu_type <= 15


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=10, max_value=60), st.integers(0, 255), st.binary(max_size=3))
def test_mutated_real_frames_only_skip(pos: int, value: int, tail: bytes) -> None:
    frame = bytearray(ble_adv_frame("C0:12:34:56:78:9A", -67, ibeacon=(UUID, 1, 7, -59)))
    if pos < len(frame):
        frame[pos] = value
    data = bytes(frame[: max(0, len(frame) - len(tail))]) + tail
    with contextlib.suppress(FrameSkip):
        parse_phdr_frame(data)
