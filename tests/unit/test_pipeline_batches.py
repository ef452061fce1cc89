"""Replay's batching: the same items in the same order, and a failing source loses nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge_agent.errors import CaptureError
from edge_agent.observations import GnssNoFix, Observation
from edge_agent.pipeline import _batches


def _obs(n: int) -> list[Observation]:
    return [GnssNoFix(float(i)) for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 9])
def test_batches_keep_every_item_in_order(n: int) -> None:
    items = _obs(n)
    batches = list(_batches(iter(items), 4))
    assert [o for b in batches for o in b] == items
    assert all(len(b) == 4 for b in batches[:-1])
    assert all(0 < len(b) <= 4 for b in batches)


def test_items_before_a_source_error_still_come_out() -> None:
    def failing() -> Iterator[Observation]:
        yield from _obs(6)
        raise CaptureError("x.pcap", "cannot read capture")

    got: list[Observation] = []
    with pytest.raises(CaptureError, match=r"x\.pcap"):
        for b in _batches(failing(), 4):
            got.extend(b)
    assert got == _obs(6)
