"""802.11 management frames: beacon and probe response header, SSID and DS channel elements.

Works on offsets into the captured bytes (no copies) and never raises: a frame too short for its
header is a skip reason; a malformed element ends the element walk but keeps what came before it,
so a broken RSN element after the SSID cannot lose or overwrite the SSID.
"""

from __future__ import annotations

from typing import NamedTuple

# First frame-control byte: protocol version 0, type 0 (management), subtype in the top nibble.
FC0_BEACON = 0x80  # subtype 8
FC0_PROBE_RESP = 0x50  # subtype 5
FC1_ORDER = 0x80  # in a management frame of an HT station: a 4-byte HT Control field follows

MGMT_HEADER_LEN = 24  # frame control, duration, addr1-3, sequence control
HT_CONTROL_LEN = 4
FIXED_FIELDS_LEN = 12  # timestamp (8), beacon interval (2), capability info (2)
ADDR2_AT = 10  # transmitter address: the radio whose signal we measured
ADDR3_AT = 16  # BSSID field

IE_SSID = 0
IE_DS_PARAMS = 3
MAX_SSID_LEN = 32


class Mgmt(NamedTuple):
    bssid: str  # lower-case "aa:bb:..", the transmitter (addr2)
    ssid: str  # "" for a hidden (empty or NUL-padded) SSID
    ds_channel: int  # DS Parameter Set channel, 0 when absent


def parse_mgmt(data: bytes, start: int, end: int) -> Mgmt | str:
    """Beacon / probe response at data[start:end]: BSSID, SSID, DS channel; or a skip reason."""
    pos = start + MGMT_HEADER_LEN + FIXED_FIELDS_LEN
    if data[start + 1] & FC1_ORDER:
        pos += HT_CONTROL_LEN
    if pos > end:
        return "bad_dot11"
    bssid = data[start + ADDR2_AT:start + ADDR2_AT + 6].hex(":")
    ssid, channel, _ = walk_elements(data, pos, end)
    return _new(Mgmt, (bssid, ssid, channel))


def walk_elements(data: bytes, pos: int, end: int) -> tuple[str, int, bool]:
    """(SSID, DS channel or 0, both found) from the elements at data[pos:end].

    Stops as soon as both are found (SSID is nearly always first, DS a few after it); a
    malformed element ends the walk but keeps what was found before it.
    """
    ssid_raw = b""
    channel = 0
    found_ssid = False
    while pos + 2 <= end:
        ie_id = data[pos]
        value_end = pos + 2 + data[pos + 1]
        if value_end > end:
            break
        if ie_id == IE_SSID:
            if not found_ssid:
                ssid_raw = data[pos + 2:value_end]
                found_ssid = True
                if channel:
                    break
        elif ie_id == IE_DS_PARAMS and value_end > pos + 2 and not channel:
            channel = data[pos + 2]
            if found_ssid:
                break
        pos = value_end
    return decode_ssid(ssid_raw), channel, found_ssid and channel > 0


_new = tuple.__new__


def decode_ssid(raw: bytes) -> str:
    """SSID bytes as text: hidden (empty or all-NUL) -> "", undecodable bytes replaced."""
    if len(raw) > MAX_SSID_LEN:
        raw = raw[:MAX_SSID_LEN]
    if raw and not raw[-1]:
        raw = raw.rstrip(b"\0")
    return raw.decode("utf-8", "replace")


def freq_to_channel(freq_mhz: int) -> int:
    """802.11 channel number of a centre frequency (2.4, 5, 6 and 60 GHz); 0 when unknown."""
    if freq_mhz == 2484:
        return 14
    if 2412 <= freq_mhz < 2484:
        return (freq_mhz - 2407) // 5
    if freq_mhz == 5935:  # 6 GHz channel 2 sits below the 6 GHz channel grid
        return 2
    if 5955 <= freq_mhz <= 7115:
        return (freq_mhz - 5950) // 5
    if 4910 <= freq_mhz <= 4980:  # 4.9 GHz public-safety band
        return (freq_mhz - 4000) // 5
    if 5000 <= freq_mhz < 5955:
        return (freq_mhz - 5000) // 5
    if 58320 <= freq_mhz <= 70200:  # 60 GHz (DMG)
        return (freq_mhz - 56160) // 2160
    return 0


def channel_to_freq(channel: int, band_hint_mhz: int = 0) -> int:
    """Centre frequency of a channel; the band is taken from a received frequency when known."""
    if 5925 < band_hint_mhz <= 7125:
        return 5935 if channel == 2 else 5950 + 5 * channel if 1 <= channel <= 233 else 0
    if channel == 14:
        return 2484
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if 32 <= channel <= 177:
        return 5000 + 5 * channel
    return 0
