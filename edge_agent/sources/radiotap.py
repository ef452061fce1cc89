"""The radiotap header (link type 127): length, Flags, Channel and dBm_AntSignal, with alignment.

Only the first presence word's fields up to dBm_AntSignal (bits 0-5) are read, which is all the
Wi-Fi path needs; they sit after the whole chain of presence words (bit 31 = another word follows),
each aligned to its natural size relative to the start of the header (radiotap.org/#alignment).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

RADIOTAP_VERSION = 0

# Presence bits of the radiotap namespace (first presence word).
BIT_TSFT = 0
BIT_FLAGS = 1
BIT_RATE = 2
BIT_CHANNEL = 3
BIT_FHSS = 4
BIT_DBM_ANTSIGNAL = 5
BIT_TX_FLAGS = 15
BIT_EXT = 31  # another presence word follows

# (alignment, size) of fields 0..5, as in Linux's net/wireless/radiotap.c.
_FIELDS: tuple[tuple[int, int], ...] = ((8, 8), (1, 1), (1, 1), (2, 4), (2, 2), (1, 1))

# Flags field bits.
FLAG_FCS_AT_END = 0x10  # the frame ends with a 4-byte FCS
FLAG_BAD_FCS = 0x40  # the receiver's FCS check failed

MIN_HEADER_LEN = 8  # version, pad, length, one presence word
MAX_PRESENCE_WORDS = 64  # a chain longer than this is garbage (real ones have 1-4)

TX_BIT = 1 << BIT_TX_FLAGS
EXT_BIT = 1 << BIT_EXT
_U32 = struct.Struct("<I")


class Radiotap(NamedTuple):
    """What the Wi-Fi path needs from one radiotap header."""

    length: int  # it_len: the 802.11 frame starts here
    flags: int  # Flags field, 0 when absent
    freq_mhz: int  # Channel field frequency, 0 when absent
    signal_dbm: int | None  # dBm_AntSignal, None when absent
    tx: bool  # TX flags present: a frame this radio sent, not one it received


# Offsets of (Flags, Channel, dBm_AntSignal) relative to the header start (-1 = absent) and the
# end of the last of them, keyed by (first presence word & 0x3F) | data start << 8. A handful of
# layouts occur in a capture, so this turns per-frame alignment arithmetic into one dict lookup.
_new = tuple.__new__
LAYOUTS: dict[int, tuple[int, int, int, int]] = {}
FIELD_BITS = 0x3F  # presence bits 0-5: TSFT .. dBm_AntSignal
MAX_CACHED_LAYOUTS = 4096  # 64 bit patterns x 64 starts: bounded anyway, this just says so


def field_layout(key: int) -> tuple[int, int, int, int]:
    """(Flags, Channel, dBm_AntSignal offsets, end of fields) for a LAYOUTS key, and cache it."""
    present = key & FIELD_BITS
    offsets = [-1] * len(_FIELDS)
    pos = key >> 8
    for bit, (align, size) in enumerate(_FIELDS):
        if present & (1 << bit):
            pos += -pos % align
            offsets[bit] = pos
            pos += size
    got = (offsets[BIT_FLAGS], offsets[BIT_CHANNEL], offsets[BIT_DBM_ANTSIGNAL], pos)
    if len(LAYOUTS) < MAX_CACHED_LAYOUTS:
        LAYOUTS[key] = got
    return got


def parse_radiotap(data: bytes) -> Radiotap | str:
    """Parse a radiotap header; a short skip reason ("bad_radiotap") when it is malformed."""
    n = len(data)
    if n < MIN_HEADER_LEN or data[0] != RADIOTAP_VERSION:
        return "bad_radiotap"
    it_len = data[2] | (data[3] << 8)
    if it_len < MIN_HEADER_LEN or it_len > n:
        return "bad_radiotap"
    (present,) = _U32.unpack_from(data, 4)
    start = 8
    if present & EXT_BIT:
        word = present
        while word & EXT_BIT:
            if start + 4 > it_len or start >= 4 + 4 * MAX_PRESENCE_WORDS:
                return "bad_radiotap"
            (word,) = _U32.unpack_from(data, start)
            start += 4
    key = (present & FIELD_BITS) | (start << 8)
    flags_at, chan_at, sig_at, end = LAYOUTS.get(key) or field_layout(key)
    if end > it_len:
        return "bad_radiotap"
    signal = None
    if sig_at >= 0:
        signal = data[sig_at]
        if signal > 127:
            signal -= 256
    # tuple.__new__ builds the named tuple at C speed (the generated __new__ is Python code).
    return _new(Radiotap, (
        it_len,
        data[flags_at] if flags_at >= 0 else 0,
        data[chan_at] | (data[chan_at + 1] << 8) if chan_at >= 0 else 0,
        signal,
        bool(present & TX_BIT),
    ))
