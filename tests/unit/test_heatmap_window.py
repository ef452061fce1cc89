"""Window merge laws (property-based, exact), payload round trip and validation, id stability."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.examples import scaled

from edge_agent.errors import InputError
from edge_agent.heatmap.window import (
    Window,
    _PayloadReader,
    _plain_cells,
    from_ms,
    merge_windows,
    window_id,
)

T0 = 1_795_000_000.0


@st.composite
def windows(draw: st.DrawFn) -> Window:
    """Random windows of one site grid, values on the 1 ms lattice like the accumulator's."""
    k = draw(st.integers(0, 50))
    agent = draw(st.sampled_from(["fl-01", "fl-02"]))
    start = T0 + 60.0 * k
    cells: dict[tuple[int, int], tuple[float, float]] = {}
    for key in draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=8,
                             unique=True)):
        m = draw(st.integers(0, 60_000))
        i = draw(st.integers(0, 60_000))
        if m + i:
            cells[key] = (from_ms(m + i), from_ms(m))
    moving = sum(round(m * 1000) for _, m in cells.values())
    dwell = sum(round(d * 1000) for d, _ in cells.values())
    zones = {name: (from_ms(a + b), from_ms(a), from_ms(b))
             for name in draw(st.lists(st.sampled_from(["hall", "yard", "dock"]), unique=True))
             for a, b in [(draw(st.integers(0, 60_000)), draw(st.integers(0, 60_000)))]}
    return Window(id=window_id("plant-a", agent, start, start + 60), site="plant-a", agent=agent,
                  start=start, end=start + 60.0, cell_m=2.0, x0=0.0, y0=0.0, nx=10, ny=10,
                  cells=cells, dwell_s=from_ms(dwell), moving_s=from_ms(moving),
                  idle_s=from_ms(dwell - moving),
                  no_position_s=from_ms(draw(st.integers(0, 60_000))),
                  distance_m=draw(st.integers(0, 10**7)) / 1000, zones=zones)


@settings(max_examples=scaled(150), deadline=None)
@given(windows(), windows(), windows())
def test_merge_is_exactly_associative(a: Window, b: Window, c: Window) -> None:
    left = merge_windows([merge_windows([a, b]), c])
    right = merge_windows([a, merge_windows([b, c])])
    assert left == right
    assert left == merge_windows([a, b, c])


@settings(max_examples=scaled(150), deadline=None)
@given(st.lists(windows(), min_size=1, max_size=6), st.randoms())
def test_merge_is_commutative_in_any_order(ws: list[Window], rnd: Any) -> None:
    shuffled = list(ws)
    rnd.shuffle(shuffled)
    assert merge_windows(ws) == merge_windows(shuffled)


@settings(max_examples=scaled(100), deadline=None)
@given(st.lists(windows(), min_size=1, max_size=6))
def test_merge_keeps_sums_exact(ws: list[Window]) -> None:
    m = merge_windows(ws)
    assert round(m.dwell_s * 1000) == sum(round(w.dwell_s * 1000) for w in ws)
    assert round(m.moving_s * 1000) + round(m.idle_s * 1000) == round(m.dwell_s * 1000)
    assert round(sum(d for d, _ in m.cells.values()) * 1000) == round(m.dwell_s * 1000)
    assert m.start == min(w.start for w in ws) and m.end == max(w.end for w in ws)


@settings(max_examples=scaled(100), deadline=None)
@given(windows())
def test_payload_round_trip_is_exact(w: Window) -> None:
    back = Window.from_payload(json.loads(json.dumps(w.to_payload())))
    assert back == w


def test_merge_of_two_agents_is_a_fleet_window() -> None:
    a = _window("fl-01", 0)
    b = _window("fl-02", 0)
    m = merge_windows([a, b])
    assert m.agent == "*"
    assert m.cells[(1, 1)] == (20.0, 8.0)


def test_merge_refuses_other_sites_and_grids() -> None:
    a = _window("fl-01", 0)
    with pytest.raises(ValueError, match="sites"):
        merge_windows([a, _replace(a, site="plant-b")])
    with pytest.raises(ValueError, match="grids"):
        merge_windows([a, _replace(a, cell_m=5.0)])
    with pytest.raises(ValueError):
        merge_windows([])


def test_id_is_stable_and_names_the_window() -> None:
    assert window_id("plant-a", "fl-07", T0, T0 + 60) == "plant-a/fl-07/1795000000/60"
    assert window_id("plant-a", "fl-07", T0, T0 + 60, T0) == "plant-a/fl-07/1795000000/60"
    # data starting mid-window (agent restarted) gets its own id, so both parts are kept
    assert window_id("plant-a", "fl-07", T0, T0 + 60, T0 + 12.5) == \
        "plant-a/fl-07/1795000000/60@12500"


def test_heatmap_json_has_exactly_the_spec_keys() -> None:
    d = _window("fl-01", 0).to_heatmap_json()
    assert list(d) == ["site", "agent", "start", "end", "grid", "cells", "totals"]
    assert set(d["totals"]) == {"dwell_s", "moving_s", "idle_s", "distance_m"}
    assert d["cells"] == [[1, 1, 10.0, 4.0]]


@pytest.mark.parametrize(("path", "value", "field"), [
    (("v",), 2, "v"),
    (("grid", "nx"), 0, "grid.nx"),
    (("grid", "cell_m"), "2", "grid.cell_m"),
    (("cells",), [[1, 1, 10.0]], "cells[0]"),
    (("cells",), [[10, 1, 10.0, 4.0]], "cells[0][0]"),
    (("cells",), [[1, 1, 10.0, 12.0]], "cells[0]"),
    (("cells",), [[1, 1, 9.0, 4.0]], "cells"),
    (("totals", "idle_s"), 1.0, "totals"),
    (("totals", "distance_m"), float("nan"), "totals.distance_m"),
    (("id",), "", "id"),
    (("zones",), [], "zones"),
    (("zones", "hall", "idle_s"), 7.0, "zones.hall"),
    (("end",), T0 - 1, "end"),
    (("cells",), [[1, 1, 10.0, 4.0], [1, 1, 0.0, 0.0]], "cells[1]"),
    (("cells",), [[0, 0, 2.0, 0.0], [1, -1, 8.0, 4.0]], "cells[1][1]"),
    (("cells",), [[True, 1, 10.0, 4.0]], "cells[0][0]"),
    (("cells",), [[1, 1, float("nan"), 4.0]], "cells[0][2]"),
    (("cells",), [[1, 1, 10.0, float("inf")]], "cells[0][3]"),
    (("cells",), [[1, 1, -10.0, 4.0]], "cells[0][2]"),
    (("cells",), [[1, 1, "10", 4.0]], "cells[0][2]"),
    (("cells",), [[1, 1, 10**400, 4.0]], "cells[0][2]"),
    (("cells",), [(1, 1, 10.0, 4.0)], "cells[0]"),
    (("cells",), {"1,1": [10.0, 4.0]}, "cells"),
    (("totals", "dwell_s"), 10**400, "totals.dwell_s"),
])
def test_malformed_payload_is_an_input_error_naming_the_field(path: tuple[str, ...], value: Any,
                                                              field: str) -> None:
    d = _window("fl-01", 0).to_payload()
    target = d
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    with pytest.raises(InputError) as e:
        Window.from_payload(d)
    assert e.value.field == field


def _window(agent: str, k: int) -> Window:
    start = T0 + 60 * k
    return Window(id=window_id("plant-a", agent, start, start + 60), site="plant-a", agent=agent,
                  start=start, end=start + 60, cell_m=2.0, x0=0.0, y0=0.0, nx=10, ny=10,
                  cells={(1, 1): (10.0, 4.0)}, dwell_s=10.0, moving_s=4.0, idle_s=6.0,
                  no_position_s=50.0, distance_m=12.5, zones={"hall": (10.0, 4.0, 6.0)})


def _replace(w: Window, **kw: Any) -> Window:
    from dataclasses import replace
    return replace(w, **kw)


def test_integer_seconds_are_read_like_floats() -> None:
    d = _window("fl-01", 0).to_payload()
    d["cells"] = [[1, 1, 10, 4]]
    assert Window.from_payload(d) == _window("fl-01", 0)


_cell_value = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                        st.integers(-2, 70_000), st.booleans(), st.none(), st.text(max_size=2))


@settings(max_examples=scaled(150), deadline=None)
@given(st.lists(st.one_of(
    st.lists(st.one_of(st.integers(-1, 4), _cell_value), min_size=3, max_size=5),
    st.tuples(st.integers(0, 3), st.integers(0, 3),
              st.floats(0, 60, allow_subnormal=False), st.floats(0, 60)).map(list)),
    max_size=6))
def test_fast_cell_check_agrees_with_the_field_by_field_one(raw: list[Any]) -> None:
    """The dashboard's fast path accepts only what the careful path accepts, with equal values."""
    fast = _plain_cells(raw, 4, 4)
    try:
        slow = _PayloadReader("test").cells(raw, 4, 4)
    except InputError:
        assert fast is None
        return
    if fast is not None:
        assert fast == (slow, sum(round(d * 1000) for d, _ in slow.values()))


@settings(max_examples=scaled(50), deadline=None)
@given(windows())
def test_encoded_cells_take_the_fast_path(w: Window) -> None:
    assert _plain_cells(w.to_payload()["cells"], w.nx, w.ny) is not None
