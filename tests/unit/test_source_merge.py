"""merged_batches: exactly heapq.merge's order (ties, sources going back in time, errors)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.errors import CaptureError
from edge_agent.observations import GnssNoFix
from edge_agent.sources.merge import merged_batches


def _t(o: GnssNoFix) -> float:
    return o.t


def _source(items: list[GnssNoFix], fail_after: int | None) -> Iterator[GnssNoFix]:
    for k, o in enumerate(items):
        if k == fail_after:
            raise CaptureError("x.pcap", f"cannot read capture {k}")
        yield o
    if fail_after is not None and fail_after >= len(items):
        raise CaptureError("x.pcap", "cannot read capture at the end")


def _drain(it: Iterator[GnssNoFix]) -> tuple[list[int], str | None]:
    """ids of the items (ties must come from the right source), and the error text."""
    got: list[int] = []
    try:
        for item in it:
            got.append(id(item))
    except CaptureError as e:
        return got, str(e)
    return got, None


times = st.lists(st.integers(0, 6), max_size=12)


@given(st.lists(times, min_size=0, max_size=4), st.integers(1, 5))
def test_same_order_as_heapq_merge(seqs: list[list[int]], size: int) -> None:
    # integer times make ties frequent; unsorted lists exercise the running-maximum rule
    items = [[GnssNoFix(float(t)) for t in s] for s in seqs]
    want = list(heapq.merge(*(_source(s, None) for s in items), key=_t))
    batches = list(merged_batches([_source(s, None) for s in items], size))
    assert [id(o) for b in batches for o in b] == [id(o) for o in want]
    assert all(batches)


@given(st.lists(st.tuples(times, st.none() | st.integers(0, 13)), min_size=1, max_size=4),
       st.integers(1, 5))
def test_error_comes_out_where_heapq_merge_raises_it(
        specs: list[tuple[list[int], int | None]], size: int) -> None:
    items = [([GnssNoFix(float(t)) for t in s], f) for s, f in specs]
    want = _drain(heapq.merge(*(_source(s, f) for s, f in items), key=_t))
    got = _drain(iter(o for b in merged_batches([_source(s, f) for s, f in items], size)
                      for o in b))
    assert got == want


def test_tie_order_and_identity() -> None:
    a = [GnssNoFix(1.0), GnssNoFix(2.0), GnssNoFix(2.0)]
    b = [GnssNoFix(2.0), GnssNoFix(3.0)]
    got = [o for batch in merged_batches([iter(b), iter(a)], 2) for o in batch]
    assert [id(o) for o in got] == [id(a[0]), id(b[0]), id(a[1]), id(a[2]), id(b[1])]


@pytest.mark.parametrize("size", [1, 1024])
def test_no_sources_and_empty_sources(size: int) -> None:
    assert list(merged_batches([], size)) == []
    assert list(merged_batches([iter([]), iter([])], size)) == []
