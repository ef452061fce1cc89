"""The plant: hall and yard zones, the exterior wall with its dock doors, and the route graph.

A layout is a list of drivable segments (centre lines with width and speed limit) plus named
places (rack locations, docks, yard spots, the parking bay). The graph splits segments wherever
they meet; its segments become site.json "aisles".
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge_agent.site import Aisle, Bounds, Zone

Array = npt.NDArray[np.float64]

_SNAP_M = 1e-6  # points closer than this are the same node


@dataclass(frozen=True)
class Segment:
    """A drivable centre line: from a to b, width_m wide, at most speed_mps."""

    a: tuple[float, float]
    b: tuple[float, float]
    width_m: float
    speed_mps: float


@dataclass(frozen=True)
class Door:
    """An opening in the exterior wall (y = wall_y), centred on x_m."""

    x_m: float
    width_m: float
    height_m: float


@dataclass
class RouteGraph:
    """Nodes (site metres) and undirected edges with their speed limit."""

    nodes: list[tuple[float, float]] = field(default_factory=list)
    adj: dict[int, list[tuple[int, float, float]]] = field(default_factory=dict)  # to, len, v
    edges: list[tuple[int, int, float, float]] = field(default_factory=list)  # i, j, width, v

    def node(self, p: tuple[float, float]) -> int:
        for i, q in enumerate(self.nodes):
            if abs(q[0] - p[0]) < _SNAP_M and abs(q[1] - p[1]) < _SNAP_M:
                return i
        self.nodes.append((float(p[0]), float(p[1])))
        self.adj[len(self.nodes) - 1] = []
        return len(self.nodes) - 1

    def add_edge(self, i: int, j: int, width_m: float, speed_mps: float) -> None:
        if i == j:
            return
        length = math.dist(self.nodes[i], self.nodes[j])
        self.adj[i].append((j, length, speed_mps))
        self.adj[j].append((i, length, speed_mps))
        self.edges.append((i, j, width_m, speed_mps))

    def shortest_path(self, src: int, dst: int) -> list[int]:
        """Fastest path (length / speed limit) by Dijkstra; [src] when src == dst."""
        best = {src: 0.0}
        prev: dict[int, int] = {}
        heap = [(0.0, src)]
        while heap:
            cost, u = heapq.heappop(heap)
            if u == dst:
                break
            if cost > best.get(u, math.inf):
                continue
            for v, length, speed in self.adj[u]:
                c = cost + length / speed
                if c < best.get(v, math.inf):
                    best[v] = c
                    prev[v] = u
                    heapq.heappush(heap, (c, v))
        if dst not in best:
            raise ValueError(f"no route from node {src} to node {dst}")
        path = [dst]
        while path[-1] != src:
            path.append(prev[path[-1]])
        return path[::-1]

    def edge_speed(self, i: int, j: int) -> float:
        return next(v for k, _, v in self.adj[i] if k == j)

    def aisles(self) -> tuple[Aisle, ...]:
        return tuple(Aisle(self.nodes[i], self.nodes[j], w) for i, j, w, _ in self.edges)


def build_graph(segments: list[Segment], places: list[tuple[float, float]]) -> RouteGraph:
    """Split every segment at the points where others meet it and at places lying on it."""
    pts: list[tuple[float, float]] = [s.a for s in segments] + [s.b for s in segments] + places
    for i, s in enumerate(segments):
        for t in segments[i + 1:]:
            p = _intersection(s, t)
            if p is not None:
                pts.append(p)
    g = RouteGraph()
    for s in segments:
        ax, ay = s.a
        dx, dy = s.b[0] - ax, s.b[1] - ay
        length2 = dx * dx + dy * dy
        on: list[tuple[float, tuple[float, float]]] = []
        for p in pts:
            u = ((p[0] - ax) * dx + (p[1] - ay) * dy) / length2
            if -1e-9 <= u <= 1 + 1e-9:
                cx, cy = ax + u * dx, ay + u * dy
                if math.hypot(cx - p[0], cy - p[1]) < 1e-6:
                    on.append((u, p))
        on.sort()
        ids: list[int] = []
        for _, p in on:
            n = g.node(p)
            if not ids or ids[-1] != n:
                ids.append(n)
        for i, j in itertools.pairwise(ids):
            g.add_edge(i, j, s.width_m, s.speed_mps)
    return g


def _intersection(s: Segment, t: Segment) -> tuple[float, float] | None:
    (x1, y1), (x2, y2) = s.a, s.b
    (x3, y3), (x4, y4) = t.a, t.b
    den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
    if abs(den) < 1e-12:
        return None
    u = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / den
    v = -((x1 - x2) * (y1 - y3) - (y1 - y2) * (x1 - x3)) / den
    if -1e-9 <= u <= 1 + 1e-9 and -1e-9 <= v <= 1 + 1e-9:
        return (x1 + u * (x2 - x1), y1 + u * (y2 - y1))
    return None


@dataclass
class Plant:
    """Geometry shared by every model: zones, wall, doors, graph and the named places."""

    name: str
    bounds: Bounds
    hall: Zone
    yard: Zone
    wall_y_m: float  # the exterior wall between hall (below) and yard (above)
    doors: tuple[Door, ...]
    graph: RouteGraph
    racks: list[int]  # node ids of rack locations
    docks: list[int]  # node ids just inside each door
    yard_spots: list[int]  # node ids of yard drop points
    park: int  # the parking/charging bay

    @property
    def zones(self) -> tuple[Zone, ...]:
        return (self.hall, self.yard)

    def wall_crossing(self, x_m: Array, y_m: Array, z_m: float | Array, ex_m: float,
                      ey_m: float, ez_m: float) -> tuple[npt.NDArray[np.bool_],
                                                         npt.NDArray[np.bool_]]:
        """For receivers at (x, y, z) and an emitter at (ex, ey, ez): (crosses wall, via door).

        The straight path crosses the exterior wall when the two ends are on either side; it
        goes through an open door when it meets the wall inside the door's opening.
        """
        w = self.wall_y_m
        crosses = (y_m - w) * (ey_m - w) < 0
        frac = np.where(crosses, (w - y_m) / np.where(crosses, ey_m - y_m, 1.0), 0.0)
        xc = x_m + (ex_m - x_m) * frac
        zc = z_m + (ez_m - z_m) * frac
        via = np.zeros(np.shape(x_m), dtype=bool)
        for d in self.doors:
            via |= (np.abs(xc - d.x_m) <= d.width_m / 2) & (zc <= d.height_m)
        return crosses, crosses & via

    def door_distance(self, x_m: Array, y_m: Array) -> Array:
        """Distance to the nearest door opening (metres)."""
        best = np.full(np.shape(x_m), np.inf)
        for d in self.doors:
            dx = np.maximum(np.abs(x_m - d.x_m) - d.width_m / 2, 0.0)
            best = np.minimum(best, np.hypot(dx, y_m - self.wall_y_m))
        return best


def hall_with_yard(name: str, *, width_m: float = 100.0, hall_depth_m: float = 60.0,
                   yard_depth_m: float = 30.0, aisle_pitch_m: float = 10.0,
                   door_xs: tuple[float, ...] = (25.0, 55.0, 85.0)) -> Plant:
    """A rectangular hall (y < hall_depth) with parallel rack aisles, two cross aisles, dock
    doors in the north wall and a yard road beyond them."""
    wall = hall_depth_m
    main_v, rack_v, door_v, yard_v = 3.2, 2.2, 1.5, 3.5  # plant speed rules (m/s)
    segs = [Segment((5.0, 5.0), (width_m - 5, 5.0), 4.0, main_v),
            Segment((5.0, wall - 5), (width_m - 5, wall - 5), 4.0, main_v)]
    rack_xs = np.arange(aisle_pitch_m, width_m - 5 + 1e-9, aisle_pitch_m)
    for x in rack_xs:
        segs.append(Segment((float(x), 5.0), (float(x), wall - 5), 3.0, rack_v))
    road_y = wall + 10.0
    for dx in door_xs:
        segs.append(Segment((dx, wall - 5), (dx, wall - 2.5), 4.0, door_v))
        segs.append(Segment((dx, wall - 2.5), (dx, road_y), 4.0, door_v))
    segs.append(Segment((10.0, road_y), (width_m - 5, road_y), 8.0, yard_v))
    spots = [(15.0, road_y + 12), (45.0, road_y + 14), (75.0, road_y + 12),
             (width_m - 10, road_y + 10)]
    for sx, sy in spots:
        segs.append(Segment((sx, road_y), (sx, sy), 6.0, door_v + 0.5))
    rack_pts = [(float(x), float(y)) for x in rack_xs
                for y in np.arange(10.0, wall - 9.99, 5.0)]
    dock_pts = [(dx, wall - 2.5) for dx in door_xs]
    park_pt = (width_m - 5, 5.0)
    g = build_graph(segs, rack_pts + dock_pts + spots + [park_pt])
    hall = Zone("hall", ((0.0, 0.0), (width_m, 0.0), (width_m, wall), (0.0, wall)), True)
    yard = Zone("yard", ((0.0, wall), (width_m, wall), (width_m, wall + yard_depth_m),
                         (0.0, wall + yard_depth_m)), False)
    return Plant(name, Bounds(0.0, 0.0, width_m, wall + yard_depth_m), hall, yard, wall,
                 tuple(Door(dx, 4.0, 4.5) for dx in door_xs), g,
                 [g.node(p) for p in rack_pts], [g.node(p) for p in dock_pts],
                 [g.node(p) for p in spots], g.node(park_pt))
