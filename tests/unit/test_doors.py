"""Doors inferred from the aisles, and the share of the wall's loss on a radio path."""

from __future__ import annotations

import numpy as np
import pytest
from support.spec import spec_site

from edge_agent.fusion.doors import DOOR_WALL_SHARE, Door, WallModel, doors_from_aisles
from edge_agent.site import Site, site_from_dict


def _site(aisles: list[dict[str, object]]) -> Site:
    raw = spec_site()  # hall y < 60 (indoor), yard above
    raw["aisles"] = aisles
    return site_from_dict(raw)


def test_an_aisle_into_the_yard_makes_a_door_where_it_crosses_the_wall() -> None:
    site = _site([{"from": [30.0, 20.0], "to": [30.0, 80.0], "width_m": 4.0},
                  {"from": [10.0, 50.0], "to": [90.0, 50.0], "width_m": 3.0}])
    (door,) = doors_from_aisles(site)
    assert door.x_m == pytest.approx(30.0)
    assert door.y_m == pytest.approx(60.0, abs=1e-3)
    assert door.half_width_m == 2.0


def test_aisles_drawn_up_to_the_wall_or_the_zoned_area_s_edge_make_no_door() -> None:
    # rack aisles wall to wall (y 0..60: their ends lie on the boundary, and the hall's top edge
    # belongs to the yard), a cross aisle to the east wall with no zone beyond
    site = _site([{"from": [30.0, 0.0], "to": [30.0, 60.0], "width_m": 3.0},
                  {"from": [40.0, 60.0], "to": [40.0, 0.0], "width_m": 3.0},
                  {"from": [0.0, 30.0], "to": [100.0, 30.0], "width_m": 3.0}])
    assert doors_from_aisles(site) == ()
    # ... also with a yard road along the outside of the wall, 2 m out
    site = _site([{"from": [30.0, 0.0], "to": [30.0, 60.0], "width_m": 3.0},
                  {"from": [0.0, 62.0], "to": [100.0, 62.0], "width_m": 3.0}])
    assert doors_from_aisles(site) == ()
    raw = spec_site()
    raw["zones"] = raw["zones"][:1]  # the hall alone: outside it is no outdoor zone
    raw["aisles"] = [{"from": [30.0, 10.0], "to": [30.0, 80.0], "width_m": 3.0}]
    assert doors_from_aisles(site_from_dict(raw)) == ()


def test_a_dock_aisle_drawn_in_two_pieces_that_meet_at_the_wall_is_one_door() -> None:
    site = _site([{"from": [30.0, 45.0], "to": [30.0, 60.0], "width_m": 4.0},
                  {"from": [30.0, 60.0], "to": [30.0, 80.0], "width_m": 4.0}])
    (door,) = doors_from_aisles(site)
    assert door.x_m == pytest.approx(30.0)
    assert (door.wall_dx, door.wall_dy) == (1.0, 0.0)  # the hall's top edge runs along x


def test_the_wall_direction_comes_from_the_hall_s_polygon() -> None:
    raw = spec_site()  # a hall whose north wall is a diagonal from (0, 50) to (100, 70)
    raw["zones"] = [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 70], [0, 50]],
                     "indoor": True},
                    {"name": "yard", "polygon": [[0, 50], [100, 70], [100, 90], [0, 90]],
                     "indoor": False}]
    raw["aisles"] = [{"from": [50.0, 40.0], "to": [50.0, 80.0], "width_m": 4.0}]
    (door,) = doors_from_aisles(site_from_dict(raw))
    assert door.y_m == pytest.approx(60.0, abs=1e-3)
    assert (door.wall_dx, door.wall_dy) == pytest.approx((100 / 101.98, 20 / 101.98), abs=1e-4)


def test_aisles_that_stay_on_one_side_make_no_door() -> None:
    assert doors_from_aisles(_site([{"from": [5.0, 10.0], "to": [95.0, 10.0], "width_m": 3.0},
                                    {"from": [5.0, 70.0], "to": [95.0, 70.0],
                                     "width_m": 3.0}])) == ()


def test_two_aisles_through_one_doorway_give_one_door_the_wider() -> None:
    site = _site([{"from": [40.0, 50.0], "to": [40.0, 70.0], "width_m": 3.0},
                  {"from": [40.5, 70.0], "to": [40.5, 50.0], "width_m": 5.0}])
    (door,) = doors_from_aisles(site)
    assert door.half_width_m == 2.5


def _walls(doors: tuple[Door, ...]) -> WallModel:
    # one AP inside at (30, 40) 6 m up, one outside at (30, 80) 5 m up; receivers 2 m up
    return WallModel(np.array([30.0, 30.0]), np.array([40.0, 80.0]), np.array([4.0, 3.0]),
                     np.array([True, False]), 2.0, doors)


def test_wall_share_on_one_side_through_the_wall_and_through_a_door() -> None:
    door = Door(30.0, 60.0, 2.0)
    # receivers: in the hall (its path to the yard AP meets the wall at x = 40); in the yard
    # just outside the door; in the yard beside it (10 m along the wall); in the yard far out
    rx = np.array([45.0, 30.0, 40.0, 30.0])
    ry = np.array([50.0, 61.0, 61.0, 89.0])
    indoor = np.array([True, False, False, False])
    share = _walls((door,)).share(rx, ry, indoor)
    assert share[0].tolist() == [0.0, 1.0]  # hall receiver: outside AP through the wall
    assert share[1, 0] == DOOR_WALL_SHARE  # outside the door: the hall AP through the opening
    assert share[2, 0] == 1.0  # beside the door: through the wall
    assert share[1, 1] == 0.0 and share[3, 1] == 0.0  # yard AP from the yard
    # from 29 m out, a path from 6 m up meets the wall at 2 + 4 x 29/49 = 4.4 m: under the top
    assert share[3, 0] == DOOR_WALL_SHARE
    high = WallModel(np.array([30.0]), np.array([40.0]), np.array([10.0]), np.array([True]),
                     2.0, (door,))
    # a 12 m high AP seen from 29 m out: the path meets the wall at 2 + 10 x 29/49 = 7.9 m
    assert high.share(rx[3:], ry[3:], indoor[3:])[0, 0] == 1.0


def test_a_path_that_passes_near_the_door_but_crosses_the_wall_beside_it_is_through_the_wall(
        ) -> None:
    # (25, 58) inside to (45, 61) outside meets the wall at x = 38.3, 6 m beyond the opening,
    # though it passes within 2 m of the door's centre
    w = WallModel(np.array([45.0]), np.array([61.0]), np.array([3.0]), np.array([False]), 2.0,
                  (Door(30.0, 60.0, 2.0),))
    assert w.share(np.array([25.0]), np.array([58.0]), np.array([True])).tolist() == [[1.0]]
    # ... and through a door at x = 38 (2 + 3 x 2/3 = 4 m up there, under its top)
    w38 = WallModel(np.array([45.0]), np.array([61.0]), np.array([3.0]), np.array([False]),
                    2.0, (Door(38.0, 60.0, 2.0),))
    assert w38.share(np.array([25.0]), np.array([58.0]), np.array([True])).tolist() == [
        [DOOR_WALL_SHARE]]


def test_without_doors_the_share_is_one_side_or_the_other() -> None:
    share = _walls(()).share(np.array([30.0, 30.0]), np.array([50.0, 61.0]),
                             np.array([True, False]))
    assert share.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_share_for_a_subset_of_emitters() -> None:
    w = _walls((Door(30.0, 60.0, 2.0),))
    sub = w.share(np.array([30.0]), np.array([61.0]), np.array([False]), np.array([1, 0]))
    assert sub.tolist() == [[0.0, DOOR_WALL_SHARE]]


def test_many_doors_are_taken_a_few_at_a_time_with_the_same_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.fusion import doors as doors_mod

    rng = np.random.default_rng(3)
    doors = tuple(Door(float(x), 60.0, 2.0) for x in np.arange(2.0, 100.0, 3.0))  # 33 doors
    k = 12
    ey = rng.uniform(0.0, 90.0, k)
    w = WallModel(rng.uniform(0.0, 100.0, k), ey, rng.uniform(0.0, 5.0, k), ey < 60.0, 2.0,
                  doors)
    rx, ry = rng.uniform(0.0, 100.0, 200), rng.uniform(0.0, 90.0, 200)
    whole = w.share(rx, ry, ry < 60.0)
    monkeypatch.setattr(doors_mod, "DOOR_CHUNK_CELLS", 1)  # one door at a time
    assert np.array_equal(w.share(rx, ry, ry < 60.0), whole)
    assert (whole == DOOR_WALL_SHARE).sum() > 10  # many paths do pass a door


def _hall_plan(extra: list[dict[str, object]]) -> Site:
    """Rack aisles every 10 m across the spec's hall (y 5..50) on two cross aisles, no yard
    aisles: the yard is open ground (aisle_coverage.open_ground_zones)."""
    racks: list[dict[str, object]] = [{"from": [float(x), 5.0], "to": [float(x), 50.0],
                                       "width_m": 3.0} for x in range(10, 100, 10)]
    cross: list[dict[str, object]] = [
        {"from": [5.0, y], "to": [95.0, y], "width_m": 4.0} for y in (5.0, 50.0)]
    return _site(racks + cross + extra)


def test_a_dock_stub_pointing_at_open_ground_makes_a_door() -> None:
    # a 7.5 m stub north off the cross aisle, ending 2.5 m inside the wall at y = 60
    site = _hall_plan([{"from": [35.0, 50.0], "to": [35.0, 57.5], "width_m": 4.0}])
    (door,) = doors_from_aisles(site)
    assert door.x_m == pytest.approx(35.0)
    assert door.y_m == pytest.approx(60.0, abs=1e-3)
    assert door.half_width_m == 2.0
    assert (door.wall_dx, door.wall_dy) == (1.0, 0.0)


def test_a_dock_stub_drawn_to_the_wall_line_makes_a_door() -> None:
    # the hall's top edge (y = 60) belongs to the yard: the end itself is not indoors
    site = _hall_plan([{"from": [35.0, 50.0], "to": [35.0, 60.0], "width_m": 4.0}])
    (door,) = doors_from_aisles(site)
    assert (door.x_m, door.y_m) == pytest.approx((35.0, 60.0), abs=1e-3)


@pytest.mark.parametrize("stub", [
    {"from": [35.0, 50.0], "to": [35.0, 56.0], "width_m": 4.0},  # ends 4 m inside: too far
    {"from": [35.0, 50.0], "to": [41.0, 57.5], "width_m": 4.0},  # 39 degrees off square
    {"from": [35.0, 57.5], "to": [65.0, 57.5], "width_m": 3.0},  # along the wall
])
def test_stubs_too_far_askew_or_along_the_wall_make_no_door(stub: dict[str, object]) -> None:
    assert doors_from_aisles(_hall_plan([stub])) == ()


def test_no_dock_doors_where_the_yard_has_aisles_or_the_hall_is_open() -> None:
    stub: dict[str, object] = {"from": [35.0, 50.0], "to": [35.0, 57.5], "width_m": 4.0}
    roads: list[dict[str, object]] = [
        {"from": [0.0, float(y)], "to": [100.0, float(y)], "width_m": 6.0} for y in (68, 82)]
    # the yard covered by roads that do not reach the stub: not open ground, no door
    assert doors_from_aisles(_hall_plan([stub, *roads])) == ()
    # a hall the aisles do not cover goes to the 2-D tracker: nothing is open ground
    assert doors_from_aisles(_site([{"from": [35.0, 45.0], "to": [35.0, 57.5], "width_m": 4.0}])
                             ) == ()


def test_a_dock_stub_through_an_east_wall_makes_a_door_along_it() -> None:
    # the yard east of the hall (x > 100): the stub points east, the wall runs north-south
    d: dict[str, object] = {
        "site": "t", "origin": {"lat": 47.0, "lon": 6.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 140, "ymax": 60},
        "zones": [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]],
                   "indoor": True},
                  {"name": "east yard", "polygon": [[100, 0], [140, 0], [140, 60], [100, 60]],
                   "indoor": False}],
        "aisles": [*({"from": [5.0, y], "to": [95.0, y], "width_m": 3.0} for y in range(5, 60, 10)),
                   *({"from": [x, 5.0], "to": [x, 55.0], "width_m": 3.0} for x in (5.0, 95.0)),
                   {"from": [95.0, 30.0], "to": [98.0, 30.0], "width_m": 4.0}]}
    (door,) = doors_from_aisles(site_from_dict(d))
    assert (door.x_m, door.y_m) == pytest.approx((100.0, 30.0), abs=1e-3)
    assert (door.wall_dx, door.wall_dy) == (0.0, 1.0)
    assert door.half_width_m == 2.0
