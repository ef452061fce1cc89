"""parse_radiotap_frame (the hot path) and dot11: skips by reason, SSID/channel rules, agreement
with the reference parsers, garbage."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wifi_frames import beacon, ie, mgmt, radiotap

from edge_agent.errors import EdgeAgentError
from edge_agent.observations import WifiObs
from edge_agent.sources.base import SourceStats
from edge_agent.sources.dot11 import (
    Mgmt,
    channel_to_freq,
    decode_ssid,
    freq_to_channel,
    parse_mgmt,
)
from edge_agent.sources.radiotap import Radiotap, parse_radiotap
from edge_agent.sources.wifi import WifiSource, parse_radiotap_frame


def parse(frame: bytes, surveyed: frozenset[str] | None = None) -> tuple[WifiObs | None,
                                                                          dict[str, int]]:
    stats = SourceStats()
    obs = parse_radiotap_frame(frame, 12.5, stats, surveyed)
    return obs, dict(stats.skipped)


def test_beacon_gives_an_observation() -> None:
    obs, skipped = parse(beacon(-61, freq_mhz=2437, bssid="02:AA:bb:00:00:01", ssid=b"plant-ops",
                                channel=6))
    assert obs == WifiObs(12.5, "02:aa:bb:00:00:01", -61.0, 6, 2437, "plant-ops")
    assert skipped == {}


def test_hot_path_observation_is_a_normal_frozen_wifiobs() -> None:
    obs, _ = parse(beacon(-61, ssid=b"x"))
    assert type(obs) is WifiObs
    assert obs == WifiObs(12.5, "02:00:00:00:00:01", -61.0, 1, 2412, "x")
    assert hash(obs) == hash(WifiObs(12.5, "02:00:00:00:00:01", -61.0, 1, 2412, "x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        obs.t = 0.0  # type: ignore[misc]


def test_probe_response_counts_too() -> None:
    obs, _ = parse(beacon(-70, subtype=5))
    assert obs is not None and obs.rssi_dbm == -70.0


@pytest.mark.parametrize("fc0", [0x40, 0x08, 0x88, 0xD4, 0xB4, 0x0C, 0x81])
def test_other_frames_are_not_beacons(fc0: int) -> None:
    frame = bytearray(beacon(-60))
    frame[15] = fc0  # first byte after the 15-byte radiotap header
    obs, skipped = parse(bytes(frame))
    assert obs is None and skipped == {"not_beacon": 1}


def test_frame_without_signal_is_skipped_not_zero() -> None:
    obs, skipped = parse(beacon(None))
    assert obs is None and skipped == {"no_signal": 1}


def test_transmitted_frame_is_skipped_even_with_a_signal_byte() -> None:
    frame = radiotap(flags=0, freq_mhz=2412, signal_dbm=-30, tx_flags=0x0008) + mgmt()
    obs, skipped = parse(frame)
    assert obs is None and skipped == {"no_signal": 1}


@pytest.mark.parametrize("signal", [0, 5, -121, -128])
def test_implausible_signal_is_skipped(signal: int) -> None:
    obs, skipped = parse(beacon(signal))
    assert obs is None and skipped == {"bad_signal": 1}


def test_fcs_at_end_is_stripped_before_the_elements() -> None:
    # Without its DS element the channel comes from the frequency; if the 4 FCS bytes were read as
    # an element they would say "DS channel 11".
    body = mgmt(channel=None)
    frame = radiotap(flags=0x10, freq_mhz=2412, signal_dbm=-50) + body + b"\x03\x01\x0b\x00"
    obs, _ = parse(frame)
    assert obs is not None and obs.channel == 1


def test_fcs_is_not_recomputed() -> None:
    body = mgmt()
    good = struct.pack("<I", zlib.crc32(body))
    wrong = bytes(b ^ 0xFF for b in good)
    for fcs in (good, wrong):
        obs, _ = parse(radiotap(flags=0x10, freq_mhz=2412, signal_dbm=-50) + body + fcs)
        assert obs is not None and obs.ssid == "plant"


def test_bad_fcs_flag_is_skipped() -> None:
    obs, skipped = parse(beacon(-50, flags=0x50))
    assert obs is None and skipped == {"bad_fcs": 1}


def test_short_management_frame_is_bad_dot11() -> None:
    frame = radiotap(flags=0, freq_mhz=2412, signal_dbm=-50) + mgmt()[:30]
    obs, skipped = parse(frame)
    assert obs is None and skipped == {"bad_dot11": 1}


@pytest.mark.parametrize("raw_ssid", [b"", b"\0", b"\0" * 8, b"\0" * 32])
def test_hidden_ssid_is_empty(raw_ssid: bytes) -> None:
    obs, _ = parse(beacon(-60, ssid=raw_ssid))
    assert obs is not None and obs.ssid == ""


def test_malformed_element_after_ssid_keeps_ssid_and_channel() -> None:
    rsn_claiming_too_much = bytes([48, 200, 1, 0])
    obs, _ = parse(beacon(-60, ssid=b"ROUTE-1", channel=3, extra=rsn_claiming_too_much))
    assert obs is not None and (obs.ssid, obs.channel) == ("ROUTE-1", 3)


def test_only_the_first_ssid_element_counts() -> None:
    obs, _ = parse(beacon(-60, ssid=b"first", extra=ie(0, b"second")))
    assert obs is not None and obs.ssid == "first"


def test_undecodable_ssid_bytes_are_replaced() -> None:
    obs, _ = parse(beacon(-60, ssid=b"caf\xe9"))
    assert obs is not None and obs.ssid == "caf\ufffd"


def test_bssid_is_the_transmitter_address() -> None:
    obs, _ = parse(beacon(-60, bssid="02:00:00:00:00:02", addr3="02:00:00:00:00:03"))
    assert obs is not None and obs.bssid == "02:00:00:00:00:02"


def test_ht_control_field_shifts_the_elements() -> None:
    obs, _ = parse(beacon(-60, ssid=b"with-htc", channel=11, order=True))
    assert obs is not None and (obs.ssid, obs.channel) == ("with-htc", 11)


def test_ds_channel_is_the_aps_channel_frequency_is_where_it_was_heard() -> None:
    # 2.4 GHz channels overlap: an AP on channel 7 is heard by a radio tuned to 2437 (channel 6)
    obs, _ = parse(beacon(-80, freq_mhz=2437, channel=7))
    assert obs is not None and (obs.channel, obs.freq_mhz) == (7, 2437)


def test_channel_from_frequency_when_no_ds_element() -> None:
    obs, _ = parse(beacon(-60, freq_mhz=5975, channel=None))  # 6 GHz channel 5
    assert obs is not None and (obs.channel, obs.freq_mhz) == (5, 5975)


def test_frequency_from_channel_when_no_channel_field() -> None:
    obs, _ = parse(beacon(-60, freq_mhz=None, channel=11))
    assert obs is not None and (obs.channel, obs.freq_mhz) == (11, 2462)


def test_unsurveyed_bssid_is_counted_and_dropped() -> None:
    surveyed = frozenset({"02:00:00:00:00:01"})
    obs, skipped = parse(beacon(-60, bssid="02:00:00:00:00:09"), surveyed)
    assert obs is None and skipped == {"not_surveyed": 1}
    obs, _ = parse(beacon(-60, bssid="02:00:00:00:00:01"), surveyed)
    assert obs is not None


@pytest.mark.parametrize(("freq", "channel"), [
    (2412, 1), (2437, 6), (2472, 13), (2484, 14), (5180, 36), (5745, 149), (5825, 165),
    (4920, 184), (5935, 2), (5955, 1), (6115, 33), (7115, 233), (60480, 2), (0, 0), (1234, 0),
])
def test_freq_to_channel(freq: int, channel: int) -> None:
    assert freq_to_channel(freq) == channel


@pytest.mark.parametrize(("channel", "hint", "freq"), [
    (1, 0, 2412), (14, 0, 2484), (36, 0, 5180), (149, 0, 5745), (1, 5955, 5955), (2, 5935, 5935),
    (0, 0, 0), (200, 0, 0),
])
def test_channel_to_freq(channel: int, hint: int, freq: int) -> None:
    assert channel_to_freq(channel, hint) == freq


def test_decode_ssid() -> None:
    assert decode_ssid(b"plant\0\0") == "plant"
    assert decode_ssid("Gast ä".encode()) == "Gast ä"
    assert decode_ssid(b"x" * 40) == "x" * 32


def test_replay_of_frames_is_time_ordered_and_counted() -> None:
    frames = [(10.0, 127, beacon(-60)), (10.5, 127, beacon(-61)), (10.2, 127, beacon(-62)),
              (8.0, 127, beacon(-63)), (11.0, 105, b"plain 802.11"), (12.0, 127, beacon(None))]
    src = WifiSource.from_frames(frames, None)
    got = [(o.t, o.rssi_dbm) for o in src]
    assert got == [(10.0, -60.0), (10.5, -61.0), (10.5, -62.0)]  # 10.2 re-stamped, 8.0 dropped
    assert src.stats.observations == 3
    assert dict(src.stats.skipped) == {"out_of_order": 1, "no_radiotap": 1, "no_signal": 1}
    assert any("re-stamped" in w for w in src.stats.warnings)
    assert sum("link type 105" in w for w in src.stats.warnings) == 1


def test_element_results_are_reused_only_when_the_leading_bytes_decide() -> None:
    # Same first 64 element bytes (32-byte SSID, rates, a long vendor element), DS channel after
    # them: the two frames must not share a cached channel.
    vendor = ie(221, b"\x00\x50\xf2" + b"v" * 40)
    one = beacon(-60, ssid=b"s" * 32, channel=None, extra=vendor + ie(3, b"\x01"))
    six = beacon(-60, ssid=b"s" * 32, channel=None, extra=vendor + ie(3, b"\x06"))
    for _ in range(2):
        assert [parse(f)[0].channel for f in (one, six)] == [1, 6]  # type: ignore[union-attr]
    # the usual beacon: decided by its first elements, parsed again from the cache
    usual = beacon(-60, ssid=b"plant", channel=11, extra=vendor)
    assert [parse(usual)[0] for _ in range(3)] == [parse(usual)[0]] * 3
    assert parse(usual)[0].channel == 11  # type: ignore[union-attr]


_element = st.sampled_from([ie(0, b"a"), ie(0, b"b" * 32), ie(0, b""), ie(3, b"\x01"),
                            ie(3, b"\x06"), ie(3, b""), ie(1, b"\x82" * 8), ie(221, b"v" * 30),
                            bytes([48, 60, 1])])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_element, max_size=6).map(b"".join), min_size=1, max_size=8))
def test_element_cache_never_changes_a_result(bodies: list[bytes]) -> None:
    frames = [radiotap(flags=0, freq_mhz=2437, signal_dbm=-50) + mgmt(ssid=None, channel=None,
                                                                        extra=b)
              for b in bodies]
    for frame in frames + frames[::-1]:
        obs, _ = parse(frame)
        m = parse_mgmt(frame, 15, len(frame))
        assert obs is not None and isinstance(m, Mgmt)
        assert (obs.ssid, obs.channel) == (m.ssid, m.ds_channel or 6)


# -- the hot path agrees with the reference parsers ----------------------------------------------

_frame_parts = st.fixed_dictionaries({
    "tsft": st.none() | st.integers(0, 2**64 - 1),
    "flags": st.none() | st.sampled_from([0, 0x02, 0x10, 0x40, 0x50]),
    "rate": st.none() | st.integers(0, 255),
    "freq_mhz": st.none() | st.sampled_from([2412, 2437, 2484, 5180, 5955, 60480]),
    "fhss": st.none() | st.integers(0, 65535),
    "signal_dbm": st.none() | st.integers(-128, 127),
    "tx_flags": st.none() | st.just(8),
    "ext_words": st.integers(0, 3),
})
_bodies = st.builds(
    lambda subtype, ssid, channel, extra, order, cut: mgmt(
        subtype=subtype, ssid=ssid, channel=channel, extra=extra, order=order)[:cut],
    st.sampled_from([8, 5, 4]), st.none() | st.binary(max_size=34),
    st.none() | st.integers(0, 255), st.binary(max_size=12), st.booleans(),
    st.integers(0, 200))


@settings(max_examples=400, deadline=None)
@given(_frame_parts, _bodies)
def test_hot_path_agrees_with_parse_radiotap_and_parse_mgmt(parts: dict[str, int | None],
                                                            body: bytes) -> None:
    frame = radiotap(**parts) + body  # type: ignore[arg-type]
    obs, skipped = parse(frame)
    rt = parse_radiotap(frame)
    assert isinstance(rt, Radiotap)
    if obs is None:
        assert len(skipped) == 1
        return
    end = len(frame) - (4 if rt.flags & 0x10 else 0)
    m = parse_mgmt(frame, rt.length, end)
    assert isinstance(m, Mgmt)
    assert obs.rssi_dbm == rt.signal_dbm
    assert obs.bssid == m.bssid and obs.ssid == m.ssid
    assert obs.channel == (m.ds_channel or freq_to_channel(rt.freq_mhz))


_SEEDS = [beacon(-60), beacon(-60, order=True, extra=bytes([48, 4, 1, 0, 0, 0])),
          radiotap(tsft=5, flags=0x10, freq_mhz=5180, signal_dbm=-40, ext_words=2) + mgmt()
          + b"\0\0\0\0"]


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.tuples(st.sampled_from(_SEEDS),
              st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
              st.integers(0, 200)).map(lambda s: _mutate(*s)),
))
def test_garbage_never_raises(raw: bytes) -> None:
    stats = SourceStats()
    try:
        obs = parse_radiotap_frame(raw, 1.0, stats, frozenset({"02:00:00:00:00:01"}))
        mg = parse_mgmt(raw, 0, len(raw)) if len(raw) >= 2 else None
    except EdgeAgentError:
        return
    assert obs is None or isinstance(obs, WifiObs)
    assert mg is None or isinstance(mg, Mgmt | str)
    assert (obs is None) == (sum(stats.skipped.values()) == 1)


def _mutate(raw: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    b = bytearray(raw)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:max(cut, 1)] if cut < len(b) else b)
