"""Aisle snapping of the dwell map: onto the nearest centre line within reach, else unchanged."""

from __future__ import annotations

import pytest

from edge_agent.estimate import Estimate
from edge_agent.heatmap.accumulator import WindowAccumulator
from edge_agent.heatmap.aisles import AisleSnap
from edge_agent.heatmap.window import merge_windows
from edge_agent.site import Site, site_from_dict

T0 = 1_794_999_600.0


@pytest.fixture
def site() -> Site:
    return site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "aisles": [{"from": [10, 10], "to": [90, 10], "width_m": 4},
                   {"from": [50, 10], "to": [50, 60], "width_m": 4}]})


def test_positions_near_an_aisle_go_onto_its_centre_line(site: Site) -> None:
    snap = AisleSnap(site)
    assert snap.snap(30.0, 13.5) == (30.0, 10.0)  # 3.5 m off, reach 2 + 3 m
    assert snap.snap(52.0, 40.0) == (50.0, 40.0)
    assert snap.snap(95.0, 10.0) == (90.0, 10.0)  # past the end: onto the end point
    assert snap.snap(30.0, 30.0) == (30.0, 30.0)  # 20 m from any aisle: open area, unchanged


def test_no_aisles_changes_nothing() -> None:
    bare = site_from_dict({"site": "s", "origin": {"lat": 0, "lon": 0},
                           "bounds": {"xmin": 0, "ymin": 0, "xmax": 10, "ymax": 10}})
    assert AisleSnap(bare).snap(3.3, 4.4) == (3.3, 4.4)


def test_accumulator_snaps_by_default_and_keeps_dwell(site: Site) -> None:
    seq = [Estimate(T0 + k, 30.0, 13.5, (1.0, 0.0, 1.0), 0.0, False) for k in range(20)]

    def cells(**kw: bool) -> dict[tuple[int, int], tuple[float, float]]:
        acc = WindowAccumulator(site, "fl-01", **kw)
        out = [w for e in seq for w in acc.add(e)] + acc.flush()
        return merge_windows(out).cells

    assert cells() == {(15, 5): (20.0, 0.0)}
    assert cells(snap_to_aisles=False) == {(15, 6): (20.0, 0.0)}
