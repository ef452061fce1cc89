"""Builders for radiotap + 802.11 test frames, written from the specs independently of the parser.

Radiotap alignment (radiotap.org): each field is aligned to its natural size counted from the
start of the header, after the whole chain of presence words.
"""

from __future__ import annotations

import struct

from edge_agent.site import Site, site_from_dict

# bit: (alignment, size) for the radiotap fields the builders can emit
_SPEC = {0: (8, 8), 1: (1, 1), 2: (1, 1), 3: (2, 4), 4: (2, 2), 5: (1, 1), 15: (2, 2)}


def radiotap(*, tsft: int | None = None, flags: int | None = None, rate: int | None = None,
             freq_mhz: int | None = None, fhss: int | None = None, signal_dbm: int | None = None,
             tx_flags: int | None = None, ext_words: int = 0, pad_to: int = 0) -> bytes:
    """A radiotap header with the given fields; ext_words adds empty chained presence words."""
    values: dict[int, bytes] = {}
    if tsft is not None:
        values[0] = struct.pack("<Q", tsft)
    if flags is not None:
        values[1] = bytes([flags])
    if rate is not None:
        values[2] = bytes([rate])
    if freq_mhz is not None:
        values[3] = struct.pack("<HH", freq_mhz, 0x00A0 if freq_mhz < 3000 else 0x0140)
    if fhss is not None:
        values[4] = struct.pack("<H", fhss)
    if signal_dbm is not None:
        values[5] = struct.pack("<b", signal_dbm)
    if tx_flags is not None:
        values[15] = struct.pack("<H", tx_flags)
    present = sum(1 << b for b in values)
    words = [present | (1 << 31 if ext_words else 0)]
    for i in range(ext_words):
        # bit 29 = "radiotap namespace next": a presence word with no fields of its own
        words.append((1 << 29) | (1 << 31 if i < ext_words - 1 else 0))
    body = bytearray()
    start = 4 + 4 * len(words)
    for bit in sorted(values):
        align, size = _SPEC[bit]
        assert len(values[bit]) == size
        while (start + len(body)) % align:
            body.append(0)
        body += values[bit]
    total = start + len(body)
    total = max(total, pad_to)
    head = struct.pack("<BBH", 0, 0, total) + b"".join(struct.pack("<I", w) for w in words)
    return head + bytes(body) + b"\0" * (total - start - len(body))


def mac(text: str) -> bytes:
    return bytes(int(p, 16) for p in text.split(":"))


def ie(ie_id: int, value: bytes) -> bytes:
    return bytes([ie_id, len(value)]) + value


def mgmt(*, subtype: int = 8, bssid: str = "02:00:00:00:00:01", ssid: bytes | None = b"plant",
         channel: int | None = 1, extra: bytes = b"", addr3: str | None = None,
         order: bool = False) -> bytes:
    """A management frame (beacon = 8, probe response = 5) with SSID and DS elements."""
    fc0 = subtype << 4
    fc1 = 0x80 if order else 0
    header = (bytes([fc0, fc1]) + b"\0\0" + b"\xff" * 6 + mac(bssid) + mac(addr3 or bssid)
              + b"\x10\x00" + (b"\0\0\0\0" if order else b""))
    fixed = struct.pack("<QHH", 123456789, 100, 0x0431)
    ies = b""
    if ssid is not None:
        ies += ie(0, ssid)
    ies += ie(1, bytes([0x82, 0x84, 0x8B, 0x96]))
    if channel is not None:
        ies += ie(3, bytes([channel]))
    return header + fixed + ies + extra


def beacon(signal_dbm: int | None = -60, *, freq_mhz: int | None = 2412, flags: int | None = 0,
           **kw: object) -> bytes:
    """A radiotap beacon as a monitor interface captures it (mgmt() options in **kw)."""
    return radiotap(flags=flags, freq_mhz=freq_mhz, signal_dbm=signal_dbm) + mgmt(**kw)  # type: ignore[arg-type]


def make_site(*aps: tuple[str, int]) -> Site:
    """A minimal site surveying these (bssid, channel) APs."""
    return site_from_dict({
        "site": "t", "origin": {"lat": 0.0, "lon": 0.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10},
        "wifi_aps": [{"bssid": b, "ssid": "plant-ops", "channel": ch, "x": 1, "y": 1, "z": 3,
                      "rssi_1m_dbm": -40, "path_loss_exponent": 2.5} for b, ch in aps],
    })
