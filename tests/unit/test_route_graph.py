"""Hand-made aisle networks through RouteGraph: junctions, cells, step mass and the cell budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.fusion import route_graph
from edge_agent.fusion.route_graph import RouteGraph
from edge_agent.site import Aisle

CROSS = (Aisle((0.0, 10.0), (20.0, 10.0), 3.0), Aisle((10.0, 0.0), (10.0, 20.0), 3.0))
T_ON = (Aisle((0.0, 0.0), (20.0, 0.0), 4.0), Aisle((10.0, 0.0), (10.0, 15.0), 3.0))
T_OFF = (Aisle((0.0, 0.0), (20.0, 0.0), 4.0), Aisle((10.0, 1.0), (10.0, 15.0), 3.0))
L_SHAPE = (Aisle((0.0, 0.0), (12.0, 0.0), 3.0), Aisle((12.0, 0.0), (12.0, 9.0), 3.0))
PARALLEL = (Aisle((0.0, 0.0), (20.0, 0.0), 3.0), Aisle((0.0, 6.0), (20.0, 6.0), 3.0))
NETWORKS = [CROSS, T_ON, T_OFF, L_SHAPE, PARALLEL]


def _degrees(g: RouteGraph) -> dict[int, int]:
    deg: dict[int, int] = {}
    for e in g.edges:
        deg[e.a] = deg.get(e.a, 0) + 1
        deg[e.b] = deg.get(e.b, 0) + 1
    return deg


def _components(g: RouteGraph) -> int:
    parent = list(range(len(g.nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for e in g.edges:
        parent[find(e.a)] = find(e.b)
    return len({find(e.a) for e in g.edges})


def test_cross_gives_four_edges_and_one_junction() -> None:
    g = RouteGraph(CROSS)
    assert len(g.edges) == 4
    deg = _degrees(g)
    assert sorted(deg.values()) == [1, 1, 1, 1, 4]
    hub = max(deg, key=lambda n: deg[n])
    assert g.nodes[hub] == pytest.approx((10.0, 10.0))


@pytest.mark.parametrize("aisles", [T_ON, T_OFF], ids=["on-centre", "1m-off"])
def test_t_junction_is_joined(aisles: tuple[Aisle, ...]) -> None:
    g = RouteGraph(aisles)
    assert len(g.edges) == 3
    assert sorted(_degrees(g).values()) == [1, 1, 1, 3]
    assert _components(g) == 1


def test_l_sharing_an_end_point_is_joined() -> None:
    g = RouteGraph(L_SHAPE)
    assert len(g.edges) == 2
    assert sorted(_degrees(g).values()) == [1, 1, 2]


def test_parallel_aisles_stay_unconnected() -> None:
    g = RouteGraph(PARALLEL)
    assert len(g.edges) == 2
    assert _components(g) == 2
    # no step ever carries mass from one aisle to the other
    for k in (1, 5, 25):
        src, dst, _ = g.steps(k)
        assert np.all((g.cy[g.state_cell[src]] > 3.0) == (g.cy[g.state_cell[dst]] > 3.0))


@pytest.mark.parametrize(("aisles", "snap_m"), [(CROSS, 0.0), (T_ON, 0.0), (T_OFF, 1.0),
                                               (L_SHAPE, 0.0), (PARALLEL, 0.0)])
def test_cells_lie_on_centre_lines_with_sane_lengths(aisles: tuple[Aisle, ...],
                                                     snap_m: float) -> None:
    g = RouteGraph(aisles, cell_m=1.0)
    for i in range(g.n_cells):
        d = min(_point_segment_m(g.cx[i], g.cy[i], a) for a in aisles)
        assert d < snap_m + 1e-9  # T_OFF: the stem is extended by 1 m onto the main aisle
    for ei, e in enumerate(g.edges):
        cells = np.nonzero(g.cell_edge == ei)[0]
        # neighbouring centres are one cell apart, the end cells half a cell from the junctions
        step = np.hypot(np.diff(g.cx[cells]), np.diff(g.cy[cells]))
        assert np.all((step >= 0.5 * g.cell_m) & (step <= 1.5 * g.cell_m))
        np.testing.assert_allclose(step, g.cell_len_m[cells[0]], rtol=1e-9)
        first = math.hypot(g.cx[cells[0]] - e.ax, g.cy[cells[0]] - e.ay)
        last = math.hypot(g.cx[cells[-1]] - e.bx, g.cy[cells[-1]] - e.by)
        assert first == pytest.approx(g.cell_len_m[cells[0]] / 2.0)
        assert last == pytest.approx(g.cell_len_m[cells[0]] / 2.0)
    assert g.n_states == 2 * g.n_cells


def test_cell_length_is_the_edge_length_over_its_cells() -> None:
    # edges of 10, 4.4 and 2.4 m: cells of 1.0, 1.1 and 1.2 m, not the nominal 1 m
    g = RouteGraph((Aisle((0.0, 0.0), (10.0, 0.0), 3.0), Aisle((10.0, 0.0), (14.4, 0.0), 3.0),
                    Aisle((14.4, 0.0), (14.4, 2.4), 3.0)), cell_m=1.0)
    lengths = sorted(round(e.length_m, 6) for e in g.edges)
    assert lengths == [2.4, 4.4, 10.0]
    assert g.cell_len_m.shape == (g.n_states,)
    np.testing.assert_array_equal(g.cell_len_m[:g.n_cells], g.cell_len_m[g.n_cells:])
    for ei, e in enumerate(g.edges):
        cells = np.nonzero(g.cell_edge == ei)[0]
        np.testing.assert_allclose(g.cell_len_m[cells], e.length_m / cells.size)
        assert g.cell_len_m[cells].sum() == pytest.approx(e.length_m)
    assert sorted(set(np.round(g.cell_len_m, 6).tolist())) == [1.0, 1.1, 1.2]


@pytest.mark.parametrize("aisles", [
    (Aisle((0.0, 0.0), (12.0, 0.0), 3.0), Aisle((12.0, 1.0), (12.0, 9.0), 3.0)),
    (Aisle((0.0, 0.0), (11.4, 0.0), 3.0), Aisle((12.0, 0.8), (12.0, 9.0), 3.0)),
    (Aisle((0.0, 0.0), (12.0, 0.0), 2.0), Aisle((12.0, 1.0), (12.0, 9.0), 1.0)),
], ids=["gap-along-stem", "gap-diagonal", "narrow-width-2"])
def test_l_with_a_1m_gap_at_its_corner_is_joined_at_the_corner(aisles: tuple[Aisle, ...]
                                                               ) -> None:
    g = RouteGraph(aisles)
    assert len(g.edges) == 2
    assert _components(g) == 1
    deg = _degrees(g)
    assert sorted(deg.values()) == [1, 1, 2]
    corner = next(n for n, d in deg.items() if d == 2)
    assert g.nodes[corner] == pytest.approx((12.0, 0.0))  # where the centre lines meet


def test_ends_further_apart_than_half_the_width_stay_apart() -> None:
    g = RouteGraph((Aisle((0.0, 0.0), (12.0, 0.0), 3.0), Aisle((12.0, 2.0), (12.0, 9.0), 3.0)))
    assert _components(g) == 2


@pytest.mark.parametrize("stem_y", [-0.8, -1.9, 1.0, 0.3])
def test_t_stem_past_or_short_of_the_main_aisle_meets_it_on_its_centre_line(stem_y: float
                                                                            ) -> None:
    g = RouteGraph((Aisle((0.0, 0.0), (20.0, 0.0), 4.0), Aisle((10.0, stem_y), (10.0, 15.0), 3.0)))
    assert len(g.edges) == 3
    assert min(e.length_m for e in g.edges) >= route_graph.NODE_MERGE_M
    deg = _degrees(g)
    assert sorted(deg.values()) == [1, 1, 1, 3]
    hub = max(deg, key=lambda n: deg[n])
    assert g.nodes[hub] == pytest.approx((10.0, 0.0), abs=1e-9)
    # every edge starts and ends at its nodes: no stub hanging off below the main aisle
    for e in g.edges:
        assert (e.ax, e.ay) == pytest.approx(g.nodes[e.a], abs=1e-9)
        assert (e.bx, e.by) == pytest.approx(g.nodes[e.b], abs=1e-9)
    assert np.all(g.cy >= -1e-9)


def test_a_stem_crossing_well_past_the_main_aisle_is_a_crossing() -> None:
    g = RouteGraph((Aisle((0.0, 0.0), (20.0, 0.0), 4.0), Aisle((10.0, -3.0), (10.0, 15.0), 3.0)))
    assert len(g.edges) == 4
    assert sorted(round(e.length_m, 6) for e in g.edges) == [3.0, 10.0, 10.0, 15.0]


def test_short_edges_are_contracted_into_one_node() -> None:
    nodes = [(0.0, 0.0), (10.0, 0.0), (10.3, 0.0), (20.3, 0.0), (10.3, 8.0)]
    E = route_graph.Edge
    edges = [E(0, 1, 0.0, 0.0, 10.0, 0.0, 3.0), E(1, 2, 10.0, 0.0, 10.3, 0.0, 3.0),
             E(2, 3, 10.3, 0.0, 20.3, 0.0, 3.0), E(2, 4, 10.3, 0.0, 10.3, 8.0, 3.0)]
    out = route_graph._contract_short(edges, nodes)
    assert len(out) == 3
    assert min(e.length_m for e in out) > 5.0
    assert len(nodes) == 4
    deg: dict[int, int] = {}
    for e in out:
        deg[e.a] = deg.get(e.a, 0) + 1
        deg[e.b] = deg.get(e.b, 0) + 1
    assert sorted(deg.values()) == [1, 1, 1, 3]


def test_a_dense_grid_of_aisles_has_every_crossing() -> None:
    n = 30
    aisles = tuple([Aisle((0.0, 5.0 * i + 2.0), (150.0, 5.0 * i + 2.0), 3.0) for i in range(n)]
                   + [Aisle((5.0 * i + 2.0, 0.0), (5.0 * i + 2.0, 150.0), 3.0) for i in range(n)])
    g = RouteGraph(aisles)
    assert len(g.nodes) == n * n + 4 * n
    assert len(g.edges) == 2 * n * (n + 1)
    assert sorted(set(_degrees(g).values())) == [1, 4]


def test_many_short_edges_get_one_cell_each_even_over_the_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # every edge keeps at least one cell: 10 x 10 aisles 5 m apart give 220 edges of <= 5 m,
    # more than a budget of 100 cells, and each becomes a single cell as long as its edge
    monkeypatch.setattr(route_graph, "MAX_ROUTE_CELLS", 100)
    n = 10
    aisles = tuple([Aisle((0.0, 5.0 * i + 2.0), (50.0, 5.0 * i + 2.0), 3.0) for i in range(n)]
                   + [Aisle((5.0 * i + 2.0, 0.0), (5.0 * i + 2.0, 50.0), 3.0) for i in range(n)])
    g = RouteGraph(aisles)
    assert g.cell_m == pytest.approx(1000.0 / 100)
    assert len(g.edges) == 2 * n * (n + 1)
    assert g.n_cells == len(g.edges) > 100
    np.testing.assert_array_equal(g.cell_edge, np.arange(len(g.edges)))
    np.testing.assert_allclose(g.cell_len_m[:g.n_cells], [e.length_m for e in g.edges])
    for k in (1, 3):
        src, _, w = g.steps(k)
        np.testing.assert_allclose(np.bincount(src, weights=w, minlength=g.n_states), 1.0,
                                   atol=1e-12)


@pytest.mark.parametrize("aisles", NETWORKS)
def test_steps_conserve_mass_and_stay_within_reach(aisles: tuple[Aisle, ...]) -> None:
    g = RouteGraph(aisles)
    for k in range(0, 8):
        src, dst, w = g.steps(k)
        assert np.all(w > 0)
        total = np.bincount(src, weights=w, minlength=g.n_states)
        np.testing.assert_allclose(total, 1.0, atol=1e-12)
        cs, cd = g.state_cell[src], g.state_cell[dst]
        # straight-line distance is a lower bound on the distance along the network
        gap = np.hypot(g.cx[cs] - g.cx[cd], g.cy[cs] - g.cy[cd])
        assert np.all(gap <= k * 1.5 * g.cell_m + 1.0)


def test_reverse_is_an_involution_flipping_heading() -> None:
    g = RouteGraph(CROSS)
    s = np.arange(g.n_states)
    np.testing.assert_array_equal(g.reverse[g.reverse], s)
    assert np.all(g.reverse != s)
    np.testing.assert_array_equal(g.state_cell[g.reverse], g.state_cell)
    diff = np.angle(np.exp(1j * (g.heading_rad[g.reverse] - g.heading_rad)))
    np.testing.assert_allclose(np.abs(diff), math.pi, atol=1e-9)


def test_dead_end_holds_mass() -> None:
    g = RouteGraph((Aisle((0.0, 0.0), (10.0, 0.0), 3.0),))
    # the state heading +x at the far end cell
    end = int(np.argmax(np.where(np.cos(g.heading_rad) > 0.5, g.cx[g.state_cell], -1.0)))
    src, dst, w = g.steps(3)
    sel = src == end
    assert dst[sel].tolist() == [end]
    assert w[sel].tolist() == pytest.approx([1.0])
    # and three cells before the end moving towards it reaches it in 3 steps and stays
    sel = src == end - 3
    assert dst[sel].tolist() == [end]


def test_junction_splits_over_the_three_ways_out() -> None:
    g = RouteGraph(CROSS)
    # the state heading +x in the cell just before the centre
    east = np.cos(g.heading_rad) > 0.5
    on_row = np.abs(g.cy[g.state_cell] - 10.0) < 1e-9
    cand = np.where(east & (g.cx[g.state_cell] < 10.0) & on_row)[0]
    s = int(cand[np.argmax(g.cx[g.state_cell[cand]])])
    src, dst, w = g.steps(1)
    sel = src == s
    assert sel.sum() == 3
    np.testing.assert_allclose(w[sel], 1.0 / 3.0)
    hx = np.cos(g.heading_rad[dst[sel]])
    hy = np.sin(g.heading_rad[dst[sel]])
    assert sorted(np.round(hx).tolist()) == [0.0, 0.0, 1.0]  # east, north, south: not back west
    assert sorted(np.round(hy).tolist()) == [-1.0, 0.0, 1.0]


def test_cell_budget_coarsens_a_huge_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(route_graph, "MAX_ROUTE_CELLS", 100)
    g = RouteGraph((Aisle((0.0, 0.0), (1000.0, 0.0), 3.0),), cell_m=1.0)
    assert g.n_cells <= 100
    assert g.cell_m == pytest.approx(10.0)
    small = RouteGraph((Aisle((0.0, 0.0), (50.0, 0.0), 3.0),), cell_m=1.0)
    assert small.n_cells == 50 and small.cell_m == 1.0


def _point_segment_m(x: float, y: float, a: Aisle) -> float:
    (ax, ay), (bx, by) = a.start, a.end
    dx, dy = bx - ax, by - ay
    u = min(1.0, max(0.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - ax - u * dx, y - ay - u * dy)


def test_gap_hops_are_empty_where_every_aisle_meets() -> None:
    g = RouteGraph((Aisle((0.0, 20.0), (40.0, 20.0), 3.0), Aisle((20.0, 0.0), (20.0, 40.0), 3.0)))
    src, dst, _w = g.gap_hops(5.0)
    # cells of edges that meet at the junction do not hop: the motion model already links them
    for s, d in zip(src.tolist(), dst.tolist(), strict=True):
        ea, eb = g.edges[int(g.cell_edge[s % g.n_cells])], g.edges[int(g.cell_edge[d % g.n_cells])]
        assert not {ea.a, ea.b} & {eb.a, eb.b}
    assert src.size == 0


def test_gap_hops_bridge_a_stem_drawn_short_of_the_main_aisle() -> None:
    # the stem ends 3 m short of the main aisle's centre line (beyond half its 3 m width: the
    # drawing leaves a gap the snapping does not close)
    g = RouteGraph((Aisle((0.0, 0.0), (40.0, 0.0), 3.0), Aisle((20.0, 3.0), (20.0, 30.0), 3.0)))
    assert len(g.nodes) == 4  # two separate pieces
    src, dst, w = g.gap_hops(5.0)
    assert src.size > 0
    assert np.allclose(np.bincount(src, weights=w)[np.unique(src)], 1.0)
    near_end = np.hypot(g.cx - 20.0, g.cy - 3.5) < 1.0
    assert near_end[src % g.n_cells].any()
    # hops only land within 5 m, on the other aisle
    d = np.hypot(g.cx[src % g.n_cells] - g.cx[dst % g.n_cells],
                 g.cy[src % g.n_cells] - g.cy[dst % g.n_cells])
    assert d.max() <= 5.0
    assert np.all(g.cell_edge[src % g.n_cells] != g.cell_edge[dst % g.n_cells])


def _with_open_yard() -> RouteGraph:
    """A 40 m aisle along y = 0 and open ground north of it: 2 m cells over 0 < x < 40,
    4 < y < 24."""
    gx, gy = np.meshgrid(np.arange(1.0, 40.0, 2.0), np.arange(5.0, 24.0, 2.0))
    return RouteGraph((Aisle((0.0, 0.0), (40.0, 0.0), 4.0),), 1.0, gx.ravel(), gy.ravel(), 2.0)


def test_open_cells_follow_the_aisle_cells() -> None:
    g = _with_open_yard()
    assert g.n_aisle_cells == 40
    assert g.n_cells == 40 + 200
    assert not g.is_open[:40].any() and g.is_open[40:].all()
    np.testing.assert_array_equal(g.cell_size_m, np.r_[np.ones(40), np.full(200, 2.0)])
    assert np.all(g.cell_edge[40:] == -1)
    # the aisle's own moves ignore the open cells
    src, dst, _ = g.steps(3)
    assert not g.is_open[g.state_cell[src]].any() and not g.is_open[g.state_cell[dst]].any()


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_open_ground_moves_to_a_ring_of_radius_k_cells(k: int) -> None:
    g = _with_open_yard()
    src, dst, w = g.moves(k)
    total = np.bincount(src, weights=w, minlength=g.n_states)
    # every aisle state and the forward state of every open cell (the filter keeps an open
    # cell's mass there: its backward state has no moves)
    open_back = g.n_cells + np.flatnonzero(g.is_open)
    np.testing.assert_allclose(np.delete(total, open_back), 1.0, atol=1e-12)
    assert np.all(total[open_back] == 0.0)
    # from an open cell in the middle (21, 15) onto forward open states about k m away
    middle = g.n_aisle_cells + int(np.argmin(np.hypot(g.cx[40:] - 21.0, g.cy[40:] - 15.0)))
    sel = src == middle
    assert np.all(dst[sel] < g.n_cells) and g.is_open[dst[sel]].all()
    r = np.hypot(g.cx[dst[sel]] - 21.0, g.cy[dst[sel]] - 15.0)
    assert abs(float(w[sel] @ r) - k) < 0.3  # mean distance: k metres (1 m cells/s)


def test_open_ground_at_the_edge_keeps_its_mass_on_open_cells() -> None:
    g = _with_open_yard()
    corner = g.n_aisle_cells + int(np.argmin(np.hypot(g.cx[40:] - 39.0, g.cy[40:] - 23.0)))
    src, dst, w = g.moves(4)
    sel = src == corner
    assert float(w[sel].sum()) == pytest.approx(1.0)
    assert g.is_open[dst[sel]].all()


def test_open_links_join_aisle_cells_to_open_ground_within_reach() -> None:
    g = _with_open_yard()
    a, o = g.open_links()
    assert a.size and a.size == o.size
    assert np.all(a < g.n_aisle_cells) and g.is_open[o].all()
    gap = np.hypot(g.cx[a] - g.cx[o], g.cy[a] - g.cy[o])
    assert np.all(gap <= 2.0 + route_graph.OPEN_LINK_M)  # half width + the link's reach
    assert set(np.round(g.cy[o]).tolist()) <= {5.0}  # only the open row beside the aisle


def test_a_plan_without_open_ground_has_no_links_and_no_ring() -> None:
    g = RouteGraph(CROSS)
    assert g.n_aisle_cells == g.n_cells
    assert g.open_links()[0].size == 0
    for k in (0, 2):
        for a, b in zip(g.moves(k), g.steps(k), strict=True):
            np.testing.assert_array_equal(a, b)


def test_an_isolated_open_cell_holds_its_moving_mass() -> None:
    # two open cells 10 m apart, far from each other and from the aisle: no ring target exists
    g = RouteGraph((Aisle((0.0, 0.0), (10.0, 0.0), 3.0),), 1.0, np.array([30.0, 40.0]),
                   np.array([30.0, 30.0]), 2.0)
    for k in (1, 4):
        src, dst, w = g.moves(k)
        for c in (g.n_aisle_cells, g.n_aisle_cells + 1):
            sel = src == c
            assert dst[sel].tolist() == [c] and w[sel].tolist() == [1.0]


def test_open_cells_off_their_raster_are_refused() -> None:
    with pytest.raises(ValueError, match="raster"):
        RouteGraph((Aisle((0.0, 0.0), (10.0, 0.0), 3.0),), 1.0, np.array([30.0, 31.0]),
                   np.array([30.0, 30.0]), 2.0).moves(2)


def test_open_cells_report_speed_in_aisle_cells_per_second() -> None:
    # with 0.5 m aisle cells a speed bin is 0.5 m/s, on open ground too (a ring of k cells)
    gx, gy = np.meshgrid(np.arange(1.0, 40.0, 2.0), np.arange(5.0, 24.0, 2.0))
    g = RouteGraph((Aisle((0.0, 0.0), (40.0, 0.0), 4.0),), 0.5, gx.ravel(), gy.ravel(), 2.0)
    np.testing.assert_allclose(g.cell_len_m[g.n_aisle_cells:g.n_cells], 0.5)
