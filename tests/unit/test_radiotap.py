"""radiotap.parse_radiotap: alignment, presence-word chains, malformed headers, garbage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wifi_frames import beacon, radiotap

from edge_agent.sources.radiotap import Radiotap, parse_radiotap


def test_fields_up_to_signal() -> None:
    rt = parse_radiotap(radiotap(flags=0x10, rate=2, freq_mhz=2437, signal_dbm=-61))
    assert rt == Radiotap(length=15, flags=0x10, freq_mhz=2437, signal_dbm=-61, tx=False)


def test_tsft_is_aligned_to_8_after_extended_presence_words() -> None:
    # 3 presence words end at byte 16: TSFT at 16, Flags 24, Rate 25, Channel 26, signal 30
    raw = radiotap(tsft=2**40 + 5, flags=0x02, rate=12, freq_mhz=5745, signal_dbm=-34,
                   ext_words=2)
    assert len(raw) == 31
    assert raw[30] == (-34) & 0xFF
    rt = parse_radiotap(raw)
    assert isinstance(rt, Radiotap)
    assert (rt.flags, rt.freq_mhz, rt.signal_dbm) == (0x02, 5745, -34)


def test_channel_is_aligned_to_2_after_an_odd_offset() -> None:
    # one word: Flags at 8, Channel padded from 9 to 10, signal at 14
    raw = radiotap(flags=0, freq_mhz=2412, signal_dbm=-70)
    assert raw[10:12] == struct.pack("<H", 2412)
    rt = parse_radiotap(raw)
    assert isinstance(rt, Radiotap)
    assert (rt.freq_mhz, rt.signal_dbm) == (2412, -70)


def test_fhss_before_signal_is_skipped_by_size() -> None:
    rt = parse_radiotap(radiotap(freq_mhz=2412, fhss=0x0102, signal_dbm=-55))
    assert isinstance(rt, Radiotap)
    assert rt.signal_dbm == -55


def test_missing_signal_is_none_not_zero() -> None:
    rt = parse_radiotap(radiotap(flags=0, freq_mhz=2412))
    assert isinstance(rt, Radiotap)
    assert rt.signal_dbm is None


def test_tx_flags_mark_a_transmitted_frame() -> None:
    rt = parse_radiotap(radiotap(flags=0, freq_mhz=2412, tx_flags=0x0008))
    assert isinstance(rt, Radiotap)
    assert rt.tx and rt.signal_dbm is None


def test_positive_signal_byte_is_signed() -> None:
    rt = parse_radiotap(radiotap(signal_dbm=5))
    assert isinstance(rt, Radiotap)
    assert rt.signal_dbm == 5


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\x00\x08",
    b"\x01\x00\x08\x00\x00\x00\x00\x00",  # version 1
    b"\x00\x00\x40\x00\x20\x00\x00\x00",  # it_len 64 > 8 bytes present
    b"\x00\x00\x04\x00\x20\x00\x00\x00",  # it_len 4 < 8
    b"\x00\x00\x08\x00\x20\x00\x00\x00",  # signal present but header ends before it
    b"\x00\x00\x0c\x00\x00\x00\x00\x80\x00\x00\x00\x80",  # presence chain runs past it_len
])
def test_malformed_headers_give_bad_radiotap(raw: bytes) -> None:
    assert parse_radiotap(raw) == "bad_radiotap"


def test_endless_presence_chain_is_bounded() -> None:
    words = b"\xff\xff\xff\xff" * 200
    raw = struct.pack("<BBH", 0, 0, 4 + len(words)) + words
    assert parse_radiotap(raw) == "bad_radiotap"


_SEEDS = [beacon(-60), radiotap(tsft=1, flags=0x10, rate=2, freq_mhz=2412, signal_dbm=-40,
                                ext_words=3)]


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.tuples(st.sampled_from(_SEEDS),
              st.lists(st.tuples(st.integers(0, 100), st.integers(0, 255)), max_size=6)).map(
        lambda s: _mutate(*s)),
))
def test_garbage_never_raises(raw: bytes) -> None:
    got = parse_radiotap(raw)
    assert got == "bad_radiotap" or (isinstance(got, Radiotap) and 8 <= got.length <= len(raw))


def _mutate(raw: bytes, edits: list[tuple[int, int]]) -> bytes:
    b = bytearray(raw)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b)
