"""Classic pcap writing (little-endian, microsecond timestamps), one record at a time or in bulk.

The bulk path builds every record header with numpy and interleaves groups of equal-length frames
by time, which is what lets the simulator write a 30-minute capture in well under a second.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256

_PCAP_MAGIC_US = 0xA1B2C3D4
SNAPLEN = 65535  # any frame we write is far shorter
_US_PER_S = 1_000_000


def pcap_time_s(t_us: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The float time a pcap reader computes (sec + usec * 1e-6) for integer microseconds."""
    sec = (t_us // _US_PER_S).astype(np.float64)
    usec = (t_us % _US_PER_S).astype(np.float64)
    out: npt.NDArray[np.float64] = sec + usec * 1e-6
    return out


def to_us(t_s: float) -> int:
    """Seconds to whole microseconds, rounding to nearest (the pcap record resolution)."""
    return round(t_s * _US_PER_S)


class PcapWriter:
    """A pcap file being written: use as a context manager; `.write(t_s, frame)` per record."""

    def __init__(self, path: str | Path, linktype: int) -> None:
        self.path = Path(path)
        self.linktype = linktype
        self.records = 0
        self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()/__exit__
        self._f.write(struct.pack("<IHHiIII", _PCAP_MAGIC_US, 2, 4, 0, 0, SNAPLEN, linktype))

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def flush(self) -> None:
        """Hand what was written to the OS (a reader or a crash then sees whole records)."""
        self._f.flush()

    def write(self, t_s: float, frame: bytes) -> None:
        """One record stamped `t_s` (UTC seconds, kept to the microsecond)."""
        self.write_us(to_us(t_s), frame)

    def write_us(self, t_us: int, frame: bytes) -> None:
        sec, usec = divmod(t_us, _US_PER_S)
        self._f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        self._f.write(frame)
        self.records += 1

    def write_groups(self, groups: Sequence[tuple[npt.NDArray[np.int64],
                                                  npt.NDArray[np.uint8]]]) -> None:
        """Write several groups of records merged in time order (stable: ties keep group order).

        Each group is (t_us, frames) with frames an (n, L) uint8 array: n frames of L bytes.
        """
        chunks: list[npt.NDArray[np.uint8]] = []
        lengths: list[npt.NDArray[np.int64]] = []
        times: list[npt.NDArray[np.int64]] = []
        for t_us, frames in groups:
            n, flen = frames.shape
            if n == 0:
                continue
            hdr = np.empty((n, 4), dtype="<u4")
            hdr[:, 0] = t_us // _US_PER_S
            hdr[:, 1] = t_us % _US_PER_S
            hdr[:, 2] = flen
            hdr[:, 3] = flen
            rec = np.concatenate([hdr.view(np.uint8).reshape(n, 16), frames], axis=1)
            chunks.append(rec.reshape(-1))
            lengths.append(np.full(n, 16 + flen, dtype=np.int64))
            times.append(np.asarray(t_us, dtype=np.int64))
        if not chunks:
            return
        flat = np.concatenate(chunks)
        rec_len = np.concatenate(lengths)
        t_all = np.concatenate(times)
        starts = np.concatenate(([0], np.cumsum(rec_len)[:-1]))
        order = np.argsort(t_all, kind="stable")
        ol = rec_len[order]
        out_starts = np.concatenate(([0], np.cumsum(ol)[:-1]))
        idx = np.repeat(starts[order] - out_starts, ol) + np.arange(int(ol.sum()))
        self._f.write(flat[idx].tobytes())
        self.records += len(t_all)
