"""open_pcap reads in bounded chunks: any chunk size gives the same records, counters, warnings."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from edge_agent.sources.pcap import READ_CHUNK_BYTES, PcapReader

REAL = Path(__file__).resolve().parents[1] / "data" / "real-captures"
CAPTURES = sorted(p for d in ("wifi", "ble") for p in (REAL / d).iterdir()
                  if p.suffix in (".pcap", ".pcapng", ".cap"))
# 1: every header and body straddles a boundary; 37: odd, never aligned with records; 4096: a few
# records per chunk
CHUNK_SIZES = (1, 37, 4096)


def _read(path: Path, chunk_bytes: int = READ_CHUNK_BYTES) -> tuple[object, ...]:
    try:
        with PcapReader(path, chunk_bytes=chunk_bytes) as r:
            recs = list(r)
            return (r.format, r.linktype, recs, dict(r.stats.skipped), r.stats.warnings)
    except Exception as e:  # the same error either way is what is compared
        return (type(e).__name__, str(e))


def test_real_captures_are_found() -> None:
    assert len(CAPTURES) >= 10


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
def test_real_captures_read_the_same_in_any_chunk_size(path: Path, chunk_bytes: int) -> None:
    whole = _read(path)
    assert _read(path, chunk_bytes) == whole


def _pcap(records: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)
    for i, data in enumerate(records):
        out += struct.pack("<IIII", i, 0, len(data), len(data)) + data
    return out


@pytest.mark.parametrize("chunk_bytes", CHUNK_SIZES)
@pytest.mark.parametrize("cut", [0, 3, 17, 40])
def test_truncated_tail_is_counted_the_same_in_any_chunk_size(tmp_path: Path, chunk_bytes: int,
                                                               cut: int) -> None:
    raw = _pcap([bytes(range(i, i + 30)) for i in range(20)])
    p = tmp_path / "t.pcap"
    p.write_bytes(raw[:len(raw) - cut])
    whole = _read(p)
    assert _read(p, chunk_bytes) == whole
    records = whole[2]
    assert isinstance(records, list) and len(records) == (20 if cut == 0 else 19)


def test_records_bigger_than_a_chunk(tmp_path: Path) -> None:
    big = bytes(range(256)) * 40  # 10 240 bytes per record
    p = tmp_path / "big.pcap"
    p.write_bytes(_pcap([big, b"x", big]))
    with PcapReader(p, chunk_bytes=1000) as r:
        assert [d for _, _, d in r] == [big, b"x", big]
        assert not r.stats.skipped


def test_a_reader_can_be_iterated_twice(tmp_path: Path) -> None:
    p = tmp_path / "two.pcap"
    p.write_bytes(_pcap([b"a" * 50, b"b" * 50]))
    r = PcapReader(p, chunk_bytes=64)
    assert list(r) == list(r)
    r.close()
