"""aisle_coverage: which sites the route filter may run on (the simulator's plants, the spec's
example site, sites without zones, small zones without aisles, hall-only aisles)."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest
from support.spec import spec_site

from edge_agent.fusion.aisle_coverage import (
    MAX_OPEN_CELLS,
    MIN_INDOOR_COVERAGE,
    MIN_OUTDOOR_COVERAGE,
    aisles_cover_site,
    open_area_cells,
    open_ground_zones,
    segment_distance_m,
    zone_coverage,
)
from edge_agent.site import Aisle, Site, site_from_dict

firmware_sim = pytest.importorskip("firmware_sim")

SPEC_EXAMPLE = spec_site()  # ../shared/spec/capture-bundle.md, "site.json"


@cache
def _plant() -> Site:
    site: Site = firmware_sim.simulate("indoor_shift", seed=0, duration_s=30).site
    return site


def _bare(zones: list[dict[str, object]], aisles: list[dict[str, object]],
          xmax: float = 100.0, ymax: float = 60.0) -> Site:
    return site_from_dict({"site": "t", "origin": {"lat": 47.0, "lon": 6.0},
                           "bounds": {"xmin": 0, "ymin": 0, "xmax": xmax, "ymax": ymax},
                           "zones": zones, "aisles": aisles})


def _rect(name: str, x0: float, y0: float, x1: float, y1: float) -> dict[str, object]:
    return {"name": name, "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}


def test_simulator_plant_is_covered() -> None:
    site = _plant()
    ok, cov = aisles_cover_site(site)
    assert ok
    assert set(cov) == {"hall", "yard"}
    assert cov["hall"] >= 0.9
    assert cov["yard"] >= 0.8
    # sampled on the 2 m raster: 100 m x 60 m hall, 100 m x 30 m yard
    assert {k: (n, indoor) for k, (_, n, indoor) in zone_coverage(site).items()} == {
        "hall": (1500, True), "yard": (750, False)}


def test_spec_example_site_is_not_covered() -> None:
    site = site_from_dict(SPEC_EXAMPLE)
    ok, cov = aisles_cover_site(site)
    assert not ok
    # 10 m x 3.5 m aisle + 5 m reach: about 20 m x 13.5 m of a 6000 m^2 hall; nothing of the yard
    assert 0.01 <= cov["hall"] <= 0.06
    assert cov["yard"] == 0.0


def test_site_without_zones_is_measured_as_one_zone() -> None:
    # one 4 m aisle along y = 10 through a 40 m x 20 m site: samples at y = 1, 3, ..., 19 are
    # covered when |y - 10| <= 2 + 5, i.e. 8 rows of 10
    site = _bare([], [{"from": [0, 10], "to": [40, 10], "width_m": 4.0}], 40.0, 20.0)
    ok, cov = aisles_cover_site(site)
    assert cov == {"(site)": 0.8}
    assert ok
    narrow = _bare([], [{"from": [0, 10], "to": [40, 10], "width_m": 0.5}], 40.0, 20.0)
    assert aisles_cover_site(narrow)[1] == {"(site)": 0.6}  # |y - 10| <= 5.25: 6 rows


def test_small_zone_without_aisles_does_not_veto() -> None:
    # an office of 40 m^2 (0.7 % of the zoned area) far from every aisle does not count ...
    aisles = [{"from": [10, y], "to": [95, y], "width_m": 4.0} for y in (5, 15, 25, 35, 45)]
    site = _bare([_rect("hall", 0, 0, 100, 60), _rect("office", 0, 56, 10, 60)], aisles)
    ok, cov = aisles_cover_site(site)
    assert cov["office"] == 0.0
    assert cov["hall"] >= MIN_INDOOR_COVERAGE  # zones are indoor unless site.json says not
    assert ok
    # ... a zone of 20 % of the zoned area without aisles near it vetoes
    site2 = _bare([_rect("hall", 0, 0, 100, 40), _rect("office", 0, 45, 100, 60)],
                  [a for a in aisles if a["from"][1] < 40])  # type: ignore[index]
    ok2, cov2 = aisles_cover_site(site2)
    assert cov2["hall"] >= MIN_INDOOR_COVERAGE
    assert cov2["office"] < MIN_INDOOR_COVERAGE
    assert not ok2


def test_hall_only_aisles_do_not_cover_the_yard() -> None:
    site = _plant()
    hall = tuple(a for a in site.aisles if max(a.start[1], a.end[1]) <= 60.0)
    assert 0 < len(hall) < len(site.aisles)
    ok, cov = aisles_cover_site(dataclasses.replace(site, aisles=hall))
    assert not ok
    assert cov["hall"] >= 0.9
    assert cov["yard"] < MIN_OUTDOOR_COVERAGE


def test_indoor_zones_need_more_coverage_than_outdoor_ones() -> None:
    # one 4 m aisle along y = 10 through a 40 m x 20 m zone: 80 % covered (see above); with
    # aisles at y = 10 only over half the length, 40 % + the reach around its end
    aisles = [{"from": [0, 10], "to": [40, 10], "width_m": 4.0}]
    short = [{"from": [0, 10], "to": [26, 10], "width_m": 4.0}]
    for indoor in (True, False):
        zone = {**_rect("z", 0, 0, 40, 20), "indoor": indoor}
        assert aisles_cover_site(_bare([zone], aisles, 40.0, 20.0))[0]
        ok, cov = aisles_cover_site(_bare([zone], short, 40.0, 20.0))
        assert MIN_OUTDOOR_COVERAGE <= cov["z"] < MIN_INDOOR_COVERAGE
        assert ok is not indoor


def test_no_aisles_means_no_route_mode() -> None:
    assert aisles_cover_site(dataclasses.replace(_plant(), aisles=())) == (False, {})


def test_segment_distance_is_to_the_segment_not_the_line() -> None:
    a = Aisle((0.0, 0.0), (10.0, 0.0), 2.0)
    d = segment_distance_m(np.array([5.0, -3.0, 13.0, 10.0]), np.array([4.0, 0.0, 4.0, 0.0]), a)
    assert np.allclose(d, [4.0, 3.0, 5.0, 0.0])


def test_open_ground_only_in_the_zones_the_aisles_do_not_cover() -> None:
    site = _plant()
    assert open_ground_zones(site) == (True, [])  # every zone covered: no open ground
    hall = tuple(a for a in site.aisles if max(a.start[1], a.end[1]) <= 60.0)
    hall_only = dataclasses.replace(site, aisles=hall)
    assert open_ground_zones(hall_only) == (True, ["yard"])
    x, y, cell_m = open_area_cells(hall_only, ["yard"], 2.0)
    assert cell_m == 2.0
    assert np.all(y > 60.0)  # the yard (uncovered), not the pockets by the hall's walls
    # the whole 100 m x 30 m yard but its cells on the aisles (none reach past the wall)
    assert 700 <= x.size <= 750
    d = np.min([segment_distance_m(x, y, a) - a.width_m / 2 for a in hall], axis=0)
    assert np.all(d > 0.0)
    assert float(np.min(d)) < 5.0  # it meets the aisles (the door stubs end 2.5 m inside)


def test_open_ground_keeps_clear_of_the_aisles_and_grows_back_to_them() -> None:
    # one 4 m aisle along y = 10 through a 40 m x 40 m outdoor zone (rows y = 1, 3, .. 39):
    # farther than 5 m beyond its edge are y = 1 and y >= 19; grown back by 5 m: y <= 5 and
    # y >= 15 (y = 7 and 13 are 6 m from the nearest far row)
    zone = {**_rect("z", 0, 0, 40, 40), "indoor": False}
    site = _bare([zone], [{"from": [0, 10], "to": [40, 10], "width_m": 4.0}], 40.0, 40.0)
    assert open_ground_zones(site) == (True, ["z"])
    x, y, _ = open_area_cells(site, ["z"], 2.0)
    assert set(np.unique(y).tolist()) == {1, 3, 5, *range(15, 40, 2)}
    assert x.size == 20 * 16


def test_open_ground_cells_coarsen_on_a_huge_site_and_still_meet_the_aisles() -> None:
    zone = {**_rect("z", 0, 0, 2000, 2000), "indoor": False}
    site = _bare([zone], [{"from": [0, 10], "to": [100, 10], "width_m": 4.0}], 2000.0, 2000.0)
    x, y, cell_m = open_area_cells(site, ["z"], 2.0)
    assert cell_m > 2.0
    assert x.size <= MAX_OPEN_CELLS
    d = segment_distance_m(x, y, site.aisles[0]) - 2.0
    assert float(d.min()) <= cell_m  # grown back by at least one (coarse) cell


def test_the_open_raster_is_budgeted_on_the_open_zones_not_the_site() -> None:
    # a 100 m x 30 m yard in a 1 km x 1 km site: still 2 m cells
    hall = {**_rect("hall", 0, 0, 100, 60), "indoor": True}
    yard = {**_rect("yard", 0, 60, 100, 90), "indoor": False}
    aisles = [{"from": [5.0, y], "to": [95.0, y], "width_m": 3.0} for y in range(5, 60, 10)]
    site = _bare([hall, yard], aisles, 1000.0, 1000.0)
    assert open_ground_zones(site) == (True, ["yard"])
    x, y, cell_m = open_area_cells(site, ["yard"], 2.0)
    assert cell_m == 2.0
    assert 600 <= x.size <= 750 and np.all(y > 60.0)


def test_an_uncovered_indoor_zone_leaves_the_site_to_the_2d_tracker() -> None:
    # the spec's example: one aisle, hall and yard uncovered; and a plant without zones
    assert open_ground_zones(site_from_dict(SPEC_EXAMPLE)) == (False, [])
    site = _bare([], [{"from": [0, 10], "to": [10, 10], "width_m": 4.0}], 40.0, 40.0)
    assert open_ground_zones(site) == (False, [])
    assert open_ground_zones(dataclasses.replace(_plant(), aisles=())) == (False, [])
