"""open_pcap: pcap in both byte orders and time resolutions, pcapng blocks, broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import CaptureError, EdgeAgentError
from edge_agent.sources.pcap import open_pcap

REAL = Path(__file__).resolve().parents[1] / "data" / "real-captures"
WIFI = REAL / "wifi"


def pcap_bytes(records: list[tuple[int, int, bytes]], *, endian: str = "<", nano: bool = False,
               linktype: int = 127) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for sec, frac, data in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data)) + data
    return out


def _block(endian: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(endian + "II", btype, total) + body + struct.pack(endian + "I", total)


def shb(endian: str = "<") -> bytes:
    return _block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(endian: str, linktype: int, tsresol: int | None = None,
        tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += struct.pack(endian + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    if tsoffset is not None:
        opts += struct.pack(endian + "HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack(endian + "HH", 0, 0)
    return _block(endian, 1, struct.pack(endian + "HHI", linktype, 0, 0) + opts)


def epb(endian: str, if_id: int, ticks: int, data: bytes) -> bytes:
    head = struct.pack(endian + "IIIII", if_id, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data))
    return _block(endian, 6, head + data)


def spb(endian: str, data: bytes) -> bytes:
    return _block(endian, 3, struct.pack(endian + "I", len(data)) + data)


def write(tmp_path: Path, raw: bytes, name: str = "x.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(raw)
    return p


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nano: bool) -> None:
    frac = 500_000_000 if nano else 500_000
    p = write(tmp_path, pcap_bytes([(1_700_000_000, frac, b"abc"), (1_700_000_001, 0, b"")],
                                   endian=endian, nano=nano))
    with open_pcap(p) as r:
        recs = list(r)
        assert r.format == "pcap"
        assert r.linktype == 127
    assert recs == [(1_700_000_000.5, 127, b"abc"), (1_700_000_001.0, 127, b"")]


def test_link_type_fcs_bits_are_masked(tmp_path: Path) -> None:
    p = write(tmp_path, pcap_bytes([(1, 0, b"x")], linktype=0x3000007F))
    r = open_pcap(p)
    assert r.linktype == 127
    assert [lt for _, lt, _ in r] == [127]


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_blocks(tmp_path: Path, endian: str) -> None:
    raw = (shb(endian) + idb(endian, 127) + idb(endian, 105, tsresol=9, tsoffset=100)
           + idb(endian, 256, tsresol=0x80 | 10)
           + epb(endian, 0, 1_500_000, b"one") + epb(endian, 1, 2_000_000_000, b"two!!")
           + epb(endian, 2, 3 * 1024, b"3") + spb(endian, b"simple")
           + epb(endian, 7, 0, b"no such interface"))
    r = open_pcap(write(tmp_path, raw, "x.pcapng"))
    assert r.format == "pcapng"
    assert r.linktype == 127
    recs = list(r)
    assert recs == [(1.5, 127, b"one"), (102.0, 105, b"two!!"), (3.0, 256, b"3"),
                    (3.0, 127, b"simple")]
    assert r.stats.skipped["unknown_interface"] == 1


def test_pcapng_new_section_resets_interfaces(tmp_path: Path) -> None:
    raw = (shb() + idb("<", 127) + epb("<", 0, 1, b"a")
           + shb(">") + idb(">", 256) + epb(">", 0, 2, b"b"))
    recs = list(open_pcap(write(tmp_path, raw, "x.pcapng")))
    assert [(lt, d) for _, lt, d in recs] == [(127, b"a"), (256, b"b")]


def test_pcapng_truncated_last_block_is_counted(tmp_path: Path) -> None:
    raw = shb() + idb("<", 127) + epb("<", 0, 1, b"whole") + epb("<", 0, 2, b"cut off")[:-6]
    r = open_pcap(write(tmp_path, raw, "x.pcapng"))
    assert [d for _, _, d in r] == [b"whole"]
    assert r.stats.skipped["truncated_record"] == 1
    assert len(r.stats.warnings) == 1


def test_truncated_pcap_record_stops_cleanly(tmp_path: Path) -> None:
    raw = pcap_bytes([(1, 0, b"whole"), (2, 0, b"cut off here")])[:-4]
    r = open_pcap(write(tmp_path, raw))
    assert [d for _, _, d in r] == [b"whole"]
    assert r.stats.skipped["truncated_record"] == 1
    assert "truncated" in r.stats.warnings[0]


def test_corrupt_record_length_stops_reading(tmp_path: Path) -> None:
    raw = pcap_bytes([(1, 0, b"ok")]) + struct.pack("<IIII", 2, 0, 10**9, 10**9) + b"\0" * 64
    r = open_pcap(write(tmp_path, raw))
    assert [d for _, _, d in r] == [b"ok"]
    assert r.stats.skipped["bad_record_length"] == 1


@pytest.mark.parametrize("raw", [b"", b"\xd4\xc3", b"\xd4\xc3\xb2\xa1" + b"\0" * 10,
                                 b"hello world, not a capture at all",
                                 b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a",
                                 shb()[:20], b"\x0a\x0d\x0d\x0a\x1c\x00"])
def test_no_header_is_a_capture_error_naming_the_file(tmp_path: Path, raw: bytes) -> None:
    p = write(tmp_path, raw, "broken.pcap")
    with pytest.raises(CaptureError, match=r"broken\.pcap"):
        open_pcap(p)


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"nope\.pcap"):
        open_pcap(tmp_path / "nope.pcap")


# -- real captures --------------------------------------------------------------------------

def test_real_split_capture_without_header_is_rejected() -> None:
    with pytest.raises(CaptureError, match=r"wep_64_ptw_02\.cap.*magic"):
        open_pcap(WIFI / "aircrack-ng_wep_64_ptw_02.cap")


def test_real_truncated_tail_gives_whole_records_only() -> None:
    r = open_pcap(WIFI / "aircrack-ng_pmkid-not-recognized.cap")
    recs = list(r)
    assert len(recs) == 20056
    assert r.linktype == 105
    assert r.stats.skipped["truncated_record"] == 1
    assert all(t >= recs[0][0] for t, _, _ in recs)
    assert recs[-1][0] - recs[0][0] == pytest.approx(381, abs=1)


@pytest.mark.parametrize(("name", "linktype", "n"), [
    ("aircrack-ng_test1.pcap", 127, 192),
    ("chrissanders-packets_3e80211_wpaauth.pcapng", 127, 12),
    ("tcpdump_radiotap-heapoverflow.pcap", 127, 1),
    ("tcpdump_ieee802.11_tim_ie_oobr.pcap", 105, 4),
    ("pypacker_packets_prism.pcap", 119, 80),
    ("wifite2_handshake_not_exists.cap", 105, 1112),
])
def test_real_record_counts_and_linktypes(name: str, linktype: int, n: int) -> None:
    r = open_pcap(WIFI / name)
    recs = list(r)
    assert len(recs) == n
    assert r.linktype == linktype
    assert {lt for _, lt, _ in recs} == {linktype}


def test_real_pcapng_timestamps_match_if_tsresol() -> None:
    # crackle's pcapng uses if_tsresol = 9 (nanoseconds); scapy gives tshigh=210764, tslow=466687419
    r = open_pcap(REAL / "ble" / "crackle_le_secure_connections.pcapng")
    t0, lt, _ = next(iter(r))
    assert lt == 256
    assert t0 == pytest.approx(((210764 << 32) | 466687419) * 1e-9)


# -- garbage --------------------------------------------------------------------------------

_SEED = (shb() + idb("<", 127, tsresol=6) + epb("<", 0, 10**6, b"\x00" * 20 + b"payload"))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=200),
    st.builds(lambda b: pcap_bytes([(1, 2, b"frame")]) + b, st.binary(max_size=64)),
    st.tuples(st.sampled_from([_SEED, pcap_bytes([(1, 2, b"frame" * 5)] * 3)]),
              st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8)).map(
        lambda s: bytes(_mutate(s[0], s[1]))),
))
def test_garbage_raises_only_project_errors(tmp_path: Path, raw: bytes) -> None:
    p = write(tmp_path, raw, "g.pcap")
    try:
        r = open_pcap(p)
        for t, lt, d in r:
            assert isinstance(t, float) and 0 <= lt <= 0xFFFF and isinstance(d, bytes)
    except EdgeAgentError:
        pass


def _mutate(raw: bytes, edits: list[tuple[int, int]]) -> bytearray:
    b = bytearray(raw)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return b
