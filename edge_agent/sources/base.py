"""What every source shares: iteration over observations in time order, and counters.

A source is built live (radio, serial port, command output) or from a capture file; both feed the
same parse function and yield the same records. Every record a source cannot use is counted under
a short reason in `stats.skipped` ("no_signal", "bad_checksum", "not_surveyed", ...), never lost
silently and never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from edge_agent.observations import Observation


@dataclass
class SourceStats:
    """Counters of one source: observations emitted, records skipped by reason, warnings."""

    observations: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


class Source(Protocol):
    """An iterable of observations in non-decreasing `t` (per source), with its counters."""

    kind: str  # "wifi", "ble" or "gnss"
    stats: SourceStats

    def __iter__(self) -> Iterator[Observation]: ...
