"""The drivable aisles of site.json as a graph of short directed cells, for the route filter.

Aisles are split where they cross or where one ends on another (a T-junction: an end within half
the other's width of its centre line). Each edge between two junctions is cut into cells of about
`cell_m`; every cell exists twice, once per direction of travel. `steps(k)` says where the mass of
each directed cell goes after moving k cells: straight on along the edge and, past a junction,
split evenly over every way out but the way back (a dead end holds the truck: it turns around
through `reverse`, like a forklift at a rack face).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from edge_agent.fusion.models import Array, IntArray
from edge_agent.site import Aisle

NODE_MERGE_M = 0.5
"""Points closer than this are one junction (survey drawings are not exact)."""
MAX_ROUTE_CELLS = 8_000
"""Cell budget (undirected): a network longer than 8 km gets longer cells, not bigger tables."""


@dataclass(frozen=True)
class Edge:
    a: int
    b: int
    ax: float
    ay: float
    bx: float
    by: float
    width_m: float

    @property
    def length_m(self) -> float:
        return math.hypot(self.bx - self.ax, self.by - self.ay)


class RouteGraph:
    """Cells along the aisles: centres (cx, cy) per undirected cell; directed states on top."""

    def __init__(self, aisles: tuple[Aisle, ...], cell_m: float = 1.0) -> None:
        self.nodes: list[tuple[float, float]] = []
        self.edges = _split(aisles, self.nodes)
        total_m = sum(e.length_m for e in self.edges)
        cell_m = max(cell_m, total_m / MAX_ROUTE_CELLS)
        cx: list[float] = []
        cy: list[float] = []
        half: list[float] = []
        heading: list[float] = []
        first: list[int] = []
        count: list[int] = []
        for e in self.edges:
            n = max(1, round(e.length_m / cell_m))
            first.append(len(cx))
            count.append(n)
            u = (np.arange(n) + 0.5) / n
            cx.extend((e.ax + u * (e.bx - e.ax)).tolist())
            cy.extend((e.ay + u * (e.by - e.ay)).tolist())
            half.extend([e.width_m / 2.0] * n)
            heading.extend([math.atan2(e.by - e.ay, e.bx - e.ax)] * n)
        self.cell_m = cell_m
        self.cx: Array = np.array(cx, dtype=np.float64)
        self.cy: Array = np.array(cy, dtype=np.float64)
        self.half_width_m: Array = np.array(half, dtype=np.float64)
        n_cells = len(cx)
        self.n_cells = n_cells
        # directed states: forward s = c (a -> b), backward s = n_cells + c (b -> a)
        self.n_states = 2 * n_cells
        self.state_cell: IntArray = np.concatenate([np.arange(n_cells), np.arange(n_cells)]
                                                   ).astype(np.intp)
        fwd = np.array(heading, dtype=np.float64)
        self.heading_rad: Array = np.concatenate([fwd, fwd + math.pi])  # per directed state
        self.reverse: IntArray = np.concatenate([np.arange(n_cells) + n_cells,
                                                 np.arange(n_cells)]).astype(np.intp)
        self._succ = self._successors(first, count)
        self._steps: dict[int, tuple[IntArray, IntArray, Array]] = {}

    def _successors(self, first: list[int], count: list[int]
                    ) -> tuple[IntArray, IntArray, Array]:
        """One cell ahead: (src, dst, weight) with the weights of each src summing to 1."""
        nc = self.n_cells
        # the states that start each edge when entered from node v
        entries: dict[int, list[int]] = {}
        for ei, e in enumerate(self.edges):
            entries.setdefault(e.a, []).append(first[ei])  # forward from a: its first cell
            entries.setdefault(e.b, []).append(nc + first[ei] + count[ei] - 1)  # back from b
        src: list[int] = []
        dst: list[int] = []
        w: list[float] = []
        for ei, e in enumerate(self.edges):
            f0, n = first[ei], count[ei]
            for direction, end_node, back_entry in ((0, e.b, nc + f0 + n - 1), (1, e.a, f0)):
                cells = range(f0, f0 + n) if direction == 0 else range(f0 + n - 1, f0 - 1, -1)
                states = [c + direction * nc for c in cells]
                for s, s_next in itertools.pairwise(states):
                    src.append(s)
                    dst.append(s_next)
                    w.append(1.0)
                last = states[-1]
                outs = [s for s in entries.get(end_node, []) if s != back_entry]
                if not outs:
                    outs = [last]  # dead end: stay (turning round is `reverse`)
                for s in outs:
                    src.append(last)
                    dst.append(s)
                    w.append(1.0 / len(outs))
        return (np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp),
                np.array(w, dtype=np.float64))

    def steps(self, k: int) -> tuple[IntArray, IntArray, Array]:
        """Where each directed cell's mass goes after k cells: (src, dst, weight), merged."""
        got = self._steps.get(k)
        if got is not None:
            return got
        if k == 0:
            s = np.arange(self.n_states, dtype=np.intp)
            out = (s, s.copy(), np.ones(self.n_states, dtype=np.float64))
        else:
            prev = self.steps(k - 1)
            ssrc, sdst, sw = self._succ
            order = np.argsort(ssrc, kind="stable")
            ssrc, sdst, sw = ssrc[order], sdst[order], sw[order]
            start = np.searchsorted(ssrc, np.arange(self.n_states))
            deg = np.bincount(ssrc, minlength=self.n_states)
            src0, mid, w0 = prev
            reps = deg[mid]
            rows = np.repeat(np.arange(src0.size), reps)
            within = np.arange(rows.size) - np.repeat(np.cumsum(reps) - reps, reps)
            j = start[mid[rows]] + within
            key = src0[rows] * self.n_states + sdst[j]
            uniq, inv = np.unique(key, return_inverse=True)
            wsum: Array = np.bincount(inv, weights=w0[rows] * sw[j]).astype(np.float64)
            out = ((uniq // self.n_states).astype(np.intp), (uniq % self.n_states).astype(np.intp),
                   wsum)
        self._steps[k] = out
        return out

    def cell_distance_m(self, x_m: float, y_m: float) -> Array:
        """Distance from a point to every cell centre."""
        out: Array = np.hypot(self.cx - x_m, self.cy - y_m)
        return out


def _split(aisles: tuple[Aisle, ...], nodes: list[tuple[float, float]]) -> list[Edge]:
    """Aisles cut at crossings and T-junctions into edges between junction nodes."""
    segs = [(a.start, a.end, a.width_m) for a in aisles
            if math.hypot(a.end[0] - a.start[0], a.end[1] - a.start[1]) > 1e-6]
    on: list[list[tuple[float, int]]] = [[] for _ in segs]

    def node(p: tuple[float, float]) -> int:
        for i, q in enumerate(nodes):
            if math.hypot(p[0] - q[0], p[1] - q[1]) < NODE_MERGE_M:
                return i
        nodes.append(p)
        return len(nodes) - 1

    for si, (a, b, _w) in enumerate(segs):
        on[si].append((0.0, node(a)))
        on[si].append((1.0, node(b)))
    for si, (a, b, w) in enumerate(segs):
        dx, dy = b[0] - a[0], b[1] - a[1]
        l2 = dx * dx + dy * dy
        for ti, (c, d, _wt) in enumerate(segs):
            if ti == si:
                continue
            # t's ends lying on s (within half of s's width): a T-junction at that end's node
            for p in (c, d):
                u = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2
                if 0.0 < u < 1.0:
                    px, py = a[0] + u * dx, a[1] + u * dy
                    if math.hypot(p[0] - px, p[1] - py) <= max(w / 2.0, NODE_MERGE_M):
                        on[si].append((u, node(p)))
            if ti > si:
                x = _crossing(a, b, c, d)
                if x is not None:
                    n = node(x[2])
                    on[si].append((x[0], n))
                    on[ti].append((x[1], n))
    edges: list[Edge] = []
    seen: set[tuple[int, int]] = set()
    for si, (a, b, w) in enumerate(segs):
        pts = sorted(on[si])
        ids: list[tuple[float, int]] = []
        for u, n in pts:
            if not ids or ids[-1][1] != n:
                ids.append((u, n))
        for (u0, n0), (u1, n1) in itertools.pairwise(ids):
            key = (min(n0, n1), max(n0, n1))
            if n0 == n1 or key in seen:
                continue
            seen.add(key)
            edges.append(Edge(n0, n1, a[0] + u0 * (b[0] - a[0]), a[1] + u0 * (b[1] - a[1]),
                              a[0] + u1 * (b[0] - a[0]), a[1] + u1 * (b[1] - a[1]), w))
    return edges


def _crossing(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float],
              d: tuple[float, float]) -> tuple[float, float, tuple[float, float]] | None:
    """Where segments a-b and c-d cross strictly inside both: (u on a-b, v on c-d, point)."""
    rx, ry = b[0] - a[0], b[1] - a[1]
    sx, sy = d[0] - c[0], d[1] - c[1]
    den = rx * sy - ry * sx
    if abs(den) < 1e-12:
        return None
    qx, qy = c[0] - a[0], c[1] - a[1]
    u = (qx * sy - qy * sx) / den
    v = (qx * ry - qy * rx) / den
    if 0.0 < u < 1.0 and 0.0 < v < 1.0:
        return u, v, (a[0] + u * rx, a[1] + u * ry)
    return None
