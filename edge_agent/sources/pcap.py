"""Reading pcap and pcapng capture files into (t_s, linktype, frame) records.

Hand-written (struct over bounded file chunks) rather than scapy's RawPcapReader: it is faster
(see docs/benchmarks.md), reads pcapng per-interface link types and time resolutions, and turns a
truncated or corrupt tail into a counted skip instead of a silently short frame.
"""

from __future__ import annotations

import os
import struct
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from edge_agent.errors import CaptureError
from edge_agent.sources.base import SourceStats

# Classic pcap magic numbers as read little-endian from the first four bytes.
_PCAP_MAGIC_US = 0xA1B2C3D4  # microsecond timestamps
_PCAP_MAGIC_NS = 0xA1B23C4D  # nanosecond timestamps
_PCAP_MAGIC_KUZNETSOV = 0xA1B2CD34  # "modified pcap": 8 extra bytes per record header
_PCAPNG_SHB = 0x0A0D0D0A  # palindromic, so the same in both byte orders
_PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_PCAPNG_IDB = 0x00000001
_PCAPNG_OPB = 0x00000002  # obsolete packet block
_PCAPNG_SPB = 0x00000003
_PCAPNG_EPB = 0x00000006

_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

# libpcap refuses records larger than this (MAXIMUM_SNAPLEN); anything bigger is a corrupt header,
# and since the next record's position depends on it, reading stops there.
MAX_RECORD_BYTES = 262144
# A pcapng block this large is corrupt for the same reason (16 MiB leaves room for big options).
MAX_BLOCK_BYTES = 16 * 1024 * 1024

LINKTYPE_MASK = 0xFFFF  # upper bits of a pcap link type carry FCS-length flags, not the type

READ_CHUNK_BYTES = 1 << 16
"""Bytes read from the file at a time (a longer record gets what it needs). A memory map of the
whole capture was no faster but put every page of it into the replay's resident memory (+10-18 MB
for a 30-minute bundle); 64 KiB chunks add 0.2 MB at the same speed (1 MiB chunks: +5 MB, which the
allocator keeps) - docs/benchmarks.md, "Replay (end to end)"."""


class PcapReader:
    """A pcap or pcapng file: iterate for (t_s, linktype, data); counters in `.stats`.

    `.linktype` is the file's (pcap) or first interface's (pcapng) link type, low 16 bits only,
    or None when a pcapng file declares no interface.
    """

    def __init__(self, path: str | Path, stats: SourceStats | None = None, *,
                 chunk_bytes: int = READ_CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.stats = stats if stats is not None else SourceStats()
        self._chunk_bytes = max(1, chunk_bytes)
        self._file, self._size = _open_file(self.path)
        # closes the file when the reader is dropped without close() (sources do not close it)
        self._finalizer = weakref.finalize(self, self._file.close)
        try:
            self.format, self.linktype = self._sniff()
        except CaptureError:
            self.close()
            raise

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._finalizer()

    def _read_at(self, offset: int, n: int) -> bytes:
        """Up to n bytes from byte offset, never past the size the file had when opened."""
        f = self._file
        try:
            f.seek(offset)
            return f.read(max(0, min(n, self._size - offset)))
        except (OSError, ValueError) as e:
            raise CaptureError(self.path, f"cannot read capture: {e}") from None

    def _refill(self, buf: bytes, base: int, pos: int, need: int) -> tuple[bytes, int]:
        """A new buffer starting at file offset pos with at least `need` bytes if the file has
        them: what `buf` (which starts at `base`) holds from pos on, plus the next chunk."""
        keep = buf[pos - base:]
        more = self._read_at(base + len(buf), max(self._chunk_bytes, need) - len(keep))
        return keep + more, pos

    def __iter__(self) -> Iterator[tuple[float, int, bytes]]:
        if self.format == "pcapng":
            return self._iter_pcapng()
        return self._iter_pcap()

    # -- format detection ------------------------------------------------------------------

    def _sniff(self) -> tuple[str, int | None]:
        buf = self._read_at(0, 24)
        if len(buf) < 4:
            raise CaptureError(self.path, "not a pcap or pcapng file: shorter than a header",
                               value=len(buf))
        (magic_le,) = struct.unpack_from("<I", buf, 0)
        (magic_be,) = struct.unpack_from(">I", buf, 0)
        if magic_le == _PCAPNG_SHB:
            return "pcapng", self._first_pcapng_linktype()
        for endian, magic in (("<", magic_le), (">", magic_be)):
            if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS, _PCAP_MAGIC_KUZNETSOV):
                if len(buf) < 24:
                    raise CaptureError(self.path, "pcap global header is truncated",
                                       field="header", value=len(buf))
                self._endian = endian
                self._ts_scale = 1e-9 if magic == _PCAP_MAGIC_NS else 1e-6
                self._rec_hdr_len = 24 if magic == _PCAP_MAGIC_KUZNETSOV else 16
                (network,) = struct.unpack_from(endian + "I", buf, 20)
                return "pcap", network & LINKTYPE_MASK
        raise CaptureError(self.path, "not a pcap or pcapng file: unknown magic number",
                           field="magic", value=f"0x{magic_be:08x}")

    def _first_pcapng_linktype(self) -> int | None:
        for block_type, endian, body in self._pcapng_blocks(count_errors=False):
            if block_type == _PCAPNG_IDB and len(body) >= 2:
                (lt,) = struct.unpack_from(endian + "H", body, 0)
                return int(lt)
            if block_type in (_PCAPNG_EPB, _PCAPNG_SPB, _PCAPNG_OPB):
                return None
        return None

    # -- classic pcap ----------------------------------------------------------------------

    def _iter_pcap(self) -> Iterator[tuple[float, int, bytes]]:
        end = self._size
        linktype = self.linktype if self.linktype is not None else 0
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        hdr_len = self._rec_hdr_len
        scale = self._ts_scale
        # buf holds the file's bytes from offset base on; p and n are positions in buf, so the
        # common case (a whole record in the buffer) costs two comparisons
        buf, base, p, n = b"", 24, 0, 0
        while True:
            if p + hdr_len > n:
                pos = base + p
                if pos >= end:
                    return
                if pos + hdr_len > end:
                    self._truncated(f"record header at byte {pos} is cut off")
                    return
                buf, base = self._refill(buf, base, pos, hdr_len)
                p, n = 0, len(buf)
                if hdr_len > n:
                    self._shrunk(base + n)
                    return
            ts_s, ts_frac, incl_len, _orig_len = unpack(buf, p)
            if incl_len > MAX_RECORD_BYTES:
                self.stats.skip("bad_record_length")
                self.stats.warn(f"{self.path}: record at byte {base + p} claims {incl_len} bytes "
                                "(corrupt header); stopped reading there")
                return
            start = p + hdr_len
            stop = start + incl_len
            if stop > n:
                pos = base + p
                if pos + hdr_len + incl_len > end:
                    self._truncated(f"last record at byte {pos} has {end - pos - hdr_len} of its "
                                    f"{incl_len} bytes")
                    return
                buf, base = self._refill(buf, base, pos, hdr_len + incl_len)
                p, n = 0, len(buf)
                start, stop = hdr_len, hdr_len + incl_len
                if stop > n:
                    self._shrunk(base + n)
                    return
            yield ts_s + ts_frac * scale, linktype, buf[start:stop]
            p = stop

    def _truncated(self, what: str) -> None:
        self.stats.skip("truncated_record")
        self.stats.warn(f"{self.path}: truncated capture: {what}; stopped at the last whole record")

    def _shrunk(self, at: int) -> None:
        self._truncated(f"the file ended at byte {at} while it was read")

    # -- pcapng ----------------------------------------------------------------------------

    def _pcapng_blocks(self, count_errors: bool = True) -> Iterator[tuple[int, str, bytes]]:
        """Yield (block_type, endian, body) for every whole block; stop at a corrupt one."""
        end = self._size
        pos = 0
        endian = "<"
        buf, base = b"", 0  # buf holds the file's bytes [base, buf_end)
        buf_end = 0
        while pos < end:
            if pos + 12 > end:
                if pos == 0:
                    raise CaptureError(self.path, "pcapng section header is truncated",
                                       field="header", value=end)
                if count_errors:
                    self._truncated(f"block header at byte {pos} is cut off")
                return
            if pos + 12 > buf_end:
                buf, base = self._refill(buf, base, pos, 12)
                buf_end = base + len(buf)
                if pos + 12 > buf_end:
                    if count_errors:
                        self._shrunk(buf_end)
                    return
            off = pos - base
            (block_type,) = struct.unpack_from(endian + "I", buf, off)
            if block_type == _PCAPNG_SHB:
                (bom_le,) = struct.unpack_from("<I", buf, off + 8)
                if bom_le == _PCAPNG_BYTE_ORDER_MAGIC:
                    endian = "<"
                elif struct.unpack_from(">I", buf, off + 8)[0] == _PCAPNG_BYTE_ORDER_MAGIC:
                    endian = ">"
                else:
                    if pos == 0:
                        raise CaptureError(self.path, "pcapng section header has a bad byte-order "
                                           "magic", field="byte_order_magic",
                                           value=f"0x{bom_le:08x}")
                    if count_errors:
                        self._corrupt(pos, "section header with a bad byte-order magic")
                    return
            (total_len,) = struct.unpack_from(endian + "I", buf, off + 4)
            if total_len < 12 or total_len % 4 or total_len > MAX_BLOCK_BYTES:
                if pos == 0:
                    raise CaptureError(self.path, "pcapng section header has a bad length",
                                       field="block_total_length", value=total_len)
                if count_errors:
                    self._corrupt(pos, f"block length {total_len}")
                return
            if pos + total_len > end:
                if pos == 0:
                    raise CaptureError(self.path, "pcapng section header is truncated",
                                       field="block_total_length", value=total_len)
                if count_errors:
                    self._truncated(f"last block at byte {pos} has {end - pos} of its "
                                    f"{total_len} bytes")
                return
            if pos + total_len > buf_end:
                buf, base = self._refill(buf, base, pos, total_len)
                buf_end = base + len(buf)
                if pos + total_len > buf_end:
                    if count_errors:
                        self._shrunk(buf_end)
                    return
                off = 0
            yield block_type, endian, buf[off + 8:off + total_len - 4]
            pos += total_len

    def _corrupt(self, pos: int, what: str) -> None:
        self.stats.skip("bad_block")
        self.stats.warn(f"{self.path}: corrupt pcapng block at byte {pos} ({what}); "
                        "stopped reading there")

    def _iter_pcapng(self) -> Iterator[tuple[float, int, bytes]]:
        # Per interface: (linktype, seconds per tick, offset seconds, snaplen)
        ifaces: list[tuple[int, float, float, int]] = []
        t_last = 0.0
        for block_type, endian, body in self._pcapng_blocks():
            if block_type in (_PCAPNG_EPB, _PCAPNG_OPB):
                if len(body) < 20:
                    self.stats.skip("bad_block")
                    continue
                if block_type == _PCAPNG_EPB:
                    if_id, ts_hi, ts_lo, cap_len = struct.unpack_from(endian + "IIII", body, 0)
                else:
                    if_id, _drops, ts_hi, ts_lo, cap_len = struct.unpack_from(
                        endian + "HHIII", body, 0)
                if if_id >= len(ifaces):
                    self.stats.skip("unknown_interface")
                    continue
                if 20 + cap_len > len(body):
                    self.stats.skip("bad_block")
                    continue
                linktype, tick_s, offset_s, _snap = ifaces[if_id]
                t_last = ((ts_hi << 32) | ts_lo) * tick_s + offset_s
                yield t_last, linktype, body[20:20 + cap_len]
            elif block_type == _PCAPNG_SPB:
                if not ifaces or len(body) < 4:
                    self.stats.skip("unknown_interface" if not ifaces else "bad_block")
                    continue
                (orig_len,) = struct.unpack_from(endian + "I", body, 0)
                linktype, _tick, _off, snaplen = ifaces[0]
                cap_len = min(orig_len, len(body) - 4)
                if snaplen:
                    cap_len = min(cap_len, snaplen)
                # A simple packet block has no timestamp: it takes the previous packet's time.
                yield t_last, linktype, body[4:4 + cap_len]
            elif block_type == _PCAPNG_IDB:
                ifaces.append(self._parse_idb(endian, body))
            elif block_type == _PCAPNG_SHB:
                ifaces = []  # a new section starts its own interface numbering

    def _parse_idb(self, endian: str, body: bytes) -> tuple[int, float, float, int]:
        if len(body) < 8:
            self.stats.skip("bad_block")
            return (0, 1e-6, 0.0, 0)
        linktype, _res, snaplen = struct.unpack_from(endian + "HHI", body, 0)
        tick_s = 1e-6
        offset_s = 0.0
        pos = 8
        while pos + 4 <= len(body):
            code, length = struct.unpack_from(endian + "HH", body, pos)
            if code == 0:
                break
            value = body[pos + 4:pos + 4 + length]
            if code == _OPT_IF_TSRESOL and length >= 1:
                r = value[0]
                tick_s = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
            elif code == _OPT_IF_TSOFFSET and length >= 8:
                (offset,) = struct.unpack_from(endian + "q", value, 0)
                offset_s = float(offset)
            pos += 4 + ((length + 3) & ~3)
        return (linktype & LINKTYPE_MASK, tick_s, offset_s, snaplen)


def _open_file(path: Path) -> tuple[BinaryIO, int]:
    """The open file and its size at opening: a capture still growing is read up to that size."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise CaptureError(path, f"cannot open capture: {e.strerror or e}") from None
    try:
        return f, os.fstat(f.fileno()).st_size
    except OSError as e:
        f.close()
        raise CaptureError(path, f"cannot read capture: {e.strerror or e}") from None


def open_pcap(path: str | Path, stats: SourceStats | None = None) -> PcapReader:
    """Open a pcap or pcapng file; CaptureError (naming the file) when it is neither."""
    return PcapReader(path, stats)
