"""The dashboard store: each window id once, range semantics, sums per agent and zone, merging."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from support.dashboard import SITE_DOC, T0, fleet_windows, make_window

from edge_agent.dashboard.store import DashboardStore
from edge_agent.heatmap.window import merge_windows


@pytest.fixture
def store(tmp_path: Path) -> DashboardStore:
    return DashboardStore(tmp_path / "dash.db")


def test_a_window_sent_twice_is_stored_once(store: DashboardStore) -> None:
    w = make_window("fl-01", T0, {(1, 2): (30.0, 10.0)})
    first = store.add_windows([w])
    again = store.add_windows([w, w])
    assert (first.stored, first.duplicates) == (1, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert store.count_windows() == 1
    u = store.utilisation("plant-t", -math.inf, math.inf)
    assert u["agents"][0]["dwell_s"] == 30.0
    assert u["zones"] == [{"zone": "hall", "dwell_s": 30.0, "moving_s": 10.0, "idle_s": 20.0}]


def test_window_belongs_to_range_by_its_start_half_open(store: DashboardStore) -> None:
    wins = [make_window("fl-01", T0 + 60 * k, {(k, 1): (50.0, 20.0)}) for k in range(3)]
    store.add_windows(wins)
    # [T0+60, T0+120) holds only the window starting at T0+60, though T0's window ends at T0+60.
    u = store.utilisation("plant-t", T0 + 60, T0 + 120)
    assert u["totals"]["windows"] == 1
    h = store.heatmap("plant-t", T0 + 60, T0 + 120)
    assert [c[:2] for c in h["cells"]] == [[1, 1]]
    assert store.utilisation("plant-t", T0, T0 + 180)["totals"]["windows"] == 3


def test_utilisation_sums_equal_the_windows_per_agent(store: DashboardStore) -> None:
    wins = fleet_windows(3, 10, seed=4)
    store.add_windows(wins)
    u = store.utilisation("plant-t", -math.inf, math.inf)
    for a in u["agents"]:
        mine = [w for w in wins if w.agent == a["agent"]]
        assert a["windows"] == len(mine)
        assert a["moving_s"] == pytest.approx(sum(w.moving_s for w in mine))
        assert a["idle_s"] == pytest.approx(sum(w.idle_s for w in mine))
        assert a["no_position_s"] == pytest.approx(sum(w.no_position_s for w in mine))
        assert a["distance_m"] == pytest.approx(sum(w.distance_m for w in mine))
        assert a["last_seen"] == max(w.end for w in mine)
        covered = a["dwell_s"] + a["no_position_s"]
        assert a["utilisation_pct"] == pytest.approx(100 * a["moving_s"] / covered)
    zone_dwell = sum(z["dwell_s"] for z in u["zones"])
    assert zone_dwell == pytest.approx(sum(w.dwell_s for w in wins))


def test_heatmap_is_the_agents_merge_in_spec_shape(store: DashboardStore) -> None:
    wins = fleet_windows(2, 5, seed=1)
    store.add_windows(wins)
    h = store.heatmap("plant-t", -math.inf, math.inf)
    expected = merge_windows(wins).to_payload()
    assert sorted(map(tuple, h["cells"])) == sorted(map(tuple, expected["cells"]))
    assert h["grid"] == expected["grid"]
    assert h["totals"]["dwell_s"] == pytest.approx(expected["totals"]["dwell_s"])
    assert h["agents"] == ["fl-01", "fl-02"] and h["windows"] == 10
    for key in ("site", "start", "end", "grid", "cells", "totals"):
        assert key in h


def test_status_and_last_seen_without_windows_in_range(store: DashboardStore) -> None:
    store.add_windows([make_window("fl-01", T0, {(1, 1): (54.0, 0.0)})])
    store.set_status("plant-t", "fl-01", "offline", T0 + 500)
    store.set_status("plant-t", "fl-02", "online", None)
    u = store.utilisation("plant-t", T0 + 3600, T0 + 7200)
    by = {a["agent"]: a for a in u["agents"]}
    assert by["fl-01"]["status"] == "offline" and by["fl-01"]["last_seen"] == T0 + 500
    assert by["fl-01"]["windows"] == 0 and by["fl-01"]["utilisation_pct"] is None
    assert by["fl-02"]["status"] == "online" and by["fl-02"]["last_seen"] is None


def test_empty_range_heatmap_has_the_sites_grid(store: DashboardStore) -> None:
    store.set_site_plan(SITE_DOC, "test")
    h = store.heatmap("plant-t", T0, T0 + 60)
    assert h["cells"] == [] and h["windows"] == 0
    assert h["grid"] == {"x0": 0, "y0": 0, "cell_m": 2.0, "nx": 30, "ny": 20}


def test_version_grows_with_new_windows_not_with_duplicates(store: DashboardStore) -> None:
    w = make_window("fl-01", T0, {(1, 1): (54.0, 0.0)})
    v0 = store.version()
    store.add_windows([w])
    v1 = store.version()
    store.add_windows([w])
    assert v1 > v0 and store.version() == v1


def test_sites_lists_plan_and_data_span(store: DashboardStore) -> None:
    store.set_site_plan(SITE_DOC, "test")
    store.add_windows(fleet_windows(1, 3))
    store.add_windows(fleet_windows(1, 3))  # resent: the count must not grow
    (s,) = store.sites()
    assert s["site"] == "plant-t" and s["plan"]["zones"][0]["name"] == "hall"
    assert (s["first_start"], s["last_end"], s["windows"]) == (T0, T0 + 180, 3)


def test_hour_merges_are_reused_until_a_late_window_lands_in_them(store: DashboardStore) -> None:
    wins = fleet_windows(2, 150, seed=5)  # 2.5 hours
    store.add_windows(wins[:-1])
    t0, t1 = T0 + 30, T0 + 9000  # partial hours at both ends
    first = store.heatmap("plant-t", t0, t1)
    # A late window (an agent back from a dead zone) lands in a middle hour already merged.
    late = make_window("fl-07", T0 + 3650, {(5, 5): (20.0, 20.0)})
    store.add_windows([late])
    second = store.heatmap("plant-t", t0, t1)
    assert second["windows"] == first["windows"] + 1
    assert second["totals"]["moving_s"] == pytest.approx(first["totals"]["moving_s"] + 20.0)
    inside = [w for w in [*wins[:-1], late] if t0 <= w.start < t1]
    expected = merge_windows(inside).to_payload()
    assert sorted(map(tuple, second["cells"])) == sorted(map(tuple, expected["cells"]))
    assert "fl-07" in second["agents"]


def test_an_agent_on_another_grid_is_left_out_of_the_map_not_an_error(
        store: DashboardStore) -> None:
    wins = fleet_windows(2, 5, seed=6)
    odd = [replace(w, id=w.id + "-1m", agent="fl-09", cell_m=1.0, nx=60, ny=40)
           for w in fleet_windows(1, 3, seed=7)]
    store.add_windows(wins + odd)
    h = store.heatmap("plant-t", -math.inf, math.inf)
    assert h["grid"]["cell_m"] == 2.0 and h["windows"] == 10
    assert h["other_grid_windows"] == 3 and "fl-09" not in h["agents"]
    u = store.utilisation("plant-t", -math.inf, math.inf)
    assert u["totals"]["windows"] == 13  # the tables still count every window
