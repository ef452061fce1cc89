"""The drivable aisles of site.json as a graph of short directed cells, for the route filter.

Aisles are split where they cross or where one ends on another (a T-junction: an end within half
the other's width of its centre line); ends drawn near a junction are snapped onto it first (an L
with a gap at its corner, a T stem drawn past the main aisle's centre line). Each edge between
two junctions is cut into cells of about `cell_m`; every cell exists twice, once per direction of
travel. `steps(k)` says where the mass of each directed cell goes after moving k cells: straight
on along the edge and, past a junction, split evenly over every way out but the way back (a dead
end holds the truck: it turns around through `reverse`, like a forklift at a rack face).

Open areas (a yard the plan draws no aisles in) are square cells after the aisle cells. A truck
there drives any way: moving k cells, its mass goes to a ring of radius k cells around it
(`steps(k)`), onto the forward state (the two directed states of an open cell are one place);
it drives between open ground and the aisle cells beside it through `open_links` (hops: see
route_filter.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.fusion.models import Array, IntArray
from edge_agent.site import Aisle

NODE_MERGE_M = 0.5
"""Points closer than this are one junction (survey drawings are not exact)."""
HOP_CHUNK_CELLS = 128
"""gap_hops measures distances for this many cells at a time (1 MB per 1 000 cells)."""
OPEN_LINK_M = 5.0
"""An aisle cell and an open cell this far beyond the aisle's edge are linked (a truck drives
off an aisle's end, or its side, onto open ground; the zone border may lie between them)."""
RING_SIGMA_M = 0.7
"""Open ground: a truck moving at k cells per second lands within about this of the ring of
radius k cells (a speed bin is 1 cell/s wide)."""
RING_MIN_W = 1e-3
"""Ring weights below this share of the largest are left out."""
_RING_SUB = 6  # sub-points per cell side and ...
_RING_ANGLES = 48  # ... headings integrating the ring over each cell
MAX_ROUTE_CELLS = 8_000
"""Cell budget (undirected): a network longer than 8 km gets longer cells, not bigger tables.
Every edge keeps at least one cell, so a network of more edges than this exceeds it (one cell
per edge between junctions)."""


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

    def __init__(self, aisles: tuple[Aisle, ...], cell_m: float = 1.0,
                 open_x_m: Array | None = None, open_y_m: Array | None = None,
                 open_cell_m: float = 2.0) -> None:
        """open_x_m, open_y_m: centres of the open-area cells, on a raster of open_cell_m."""
        self.nodes: list[tuple[float, float]] = []
        self.edges = _split(aisles, self.nodes)
        total_m = sum(e.length_m for e in self.edges)
        cell_m = max(cell_m, total_m / MAX_ROUTE_CELLS)
        cx: list[float] = []
        cy: list[float] = []
        half: list[float] = []
        length: list[float] = []
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
            length.extend([e.length_m / n] * n)
            heading.extend([math.atan2(e.by - e.ay, e.bx - e.ax)] * n)
        self.n_aisle_cells = len(cx)
        n_open = 0 if open_x_m is None or open_y_m is None else int(open_x_m.size)
        if n_open:
            assert open_x_m is not None and open_y_m is not None
            cx.extend(open_x_m.tolist())
            cy.extend(open_y_m.tolist())
            # no width, no heading; speed bin k moves k aisle cells' length (see _ring)
            half.extend([open_cell_m / 2.0] * n_open)
            length.extend([cell_m] * n_open)
            heading.extend([0.0] * n_open)
        self.cell_m = cell_m
        self.open_cell_m = open_cell_m
        self.is_open: npt.NDArray[np.bool_] = np.arange(len(cx)) >= self.n_aisle_cells
        # per cell, its side (the extent a posterior over cells adds to the covariance)
        self.cell_size_m: Array = np.where(self.is_open, open_cell_m, cell_m)
        self.cx: Array = np.array(cx, dtype=np.float64)
        self.cy: Array = np.array(cy, dtype=np.float64)
        self.half_width_m: Array = np.array(half, dtype=np.float64)
        n_cells = len(cx)
        self.n_cells = n_cells
        # directed states: forward s = c (a -> b), backward s = n_cells + c (b -> a)
        self.n_states = 2 * n_cells
        self.state_cell: IntArray = np.concatenate([np.arange(n_cells), np.arange(n_cells)]
                                                   ).astype(np.intp)
        cell_len = np.array(length, dtype=np.float64)
        # per directed state: the real length of its cell (between 0.5 and 1.5 cell_m, or the
        # whole edge when an edge is shorter than that): speed is cells/s times this
        self.cell_len_m: Array = np.concatenate([cell_len, cell_len])
        self.cell_edge: IntArray = np.concatenate([  # (open cells: -1)
            np.repeat(np.arange(len(self.edges)), count), np.full(n_open, -1)]).astype(np.intp)
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

    def open_links(self) -> tuple[IntArray, IntArray]:
        """Pairs (aisle cell, open cell) within reach: the open cell's centre within the aisle's
        half width + OPEN_LINK_M (1.5 open cells if more) of the aisle cell's centre."""
        na = self.n_aisle_cells
        if self.n_cells == na or na == 0:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        ox, oy = self.cx[na:], self.cy[na:]
        aa: list[IntArray] = []
        oo: list[IntArray] = []
        for a in range(0, na, HOP_CHUNK_CELLS):
            b = min(na, a + HOP_CHUNK_CELLS)
            d = np.hypot(self.cx[a:b, None] - ox[None, :], self.cy[a:b, None] - oy[None, :])
            r, c = np.nonzero(d <= self.half_width_m[a:b, None]
                              + max(OPEN_LINK_M, 1.5 * self.open_cell_m))
            aa.append(r + a)
            oo.append(c + na)
        return (np.concatenate(aa).astype(np.intp), np.concatenate(oo).astype(np.intp))

    def gap_hops(self, radius_m: float) -> tuple[IntArray, IntArray, Array]:
        """Hops between cells of edges that do not meet (no common junction) yet lie within
        radius_m of each other: gaps the drawing left between aisles that meet on the floor.
        (src state, dst state, weight), weights of each src summing to 1; empty for a plan
        whose aisles all meet. Each cell hops to the other cells in both directions."""
        n = self.n_cells
        na = self.n_aisle_cells  # (open cells move by rings: see moves)
        ea = np.array([e.a for e in self.edges], dtype=np.intp)[self.cell_edge[:na]]
        eb = np.array([e.b for e in self.edges], dtype=np.intp)[self.cell_edge[:na]]
        src: list[IntArray] = []
        dst: list[IntArray] = []
        cx, cy = self.cx[:na], self.cy[:na]
        for a in range(0, na, HOP_CHUNK_CELLS):
            b = min(na, a + HOP_CHUNK_CELLS)
            d2 = ((cx[a:b, None] - cx[None, :]) ** 2 + (cy[a:b, None] - cy[None, :]) ** 2)
            r, c = np.nonzero(d2 <= radius_m * radius_m)
            r += a
            meet = ((ea[r] == ea[c]) | (ea[r] == eb[c]) | (eb[r] == ea[c]) | (eb[r] == eb[c]))
            keep = ~meet  # (cells of one edge share both its ends)
            src.append(r[keep])
            dst.append(c[keep])
        s_c = np.concatenate(src).astype(np.intp)
        d_c = np.concatenate(dst).astype(np.intp)
        if s_c.size == 0:
            return s_c, d_c, np.zeros(0)
        w = 1.0 / np.bincount(s_c, minlength=n)[s_c] / 2.0  # two directions at the target
        s_all = np.concatenate([s_c, s_c, s_c + n, s_c + n])
        d_all = np.concatenate([d_c, d_c + n, d_c, d_c + n])
        return s_all, d_all, np.concatenate([w, w, w, w]).astype(np.float64)

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

    def moves(self, k: int) -> tuple[IntArray, IntArray, Array]:
        """`steps(k)` along the aisles and, on open ground, the ring of radius k cells."""
        s0, d0, w0 = self.steps(k)
        s1, d1, w1 = self.ring(k)
        return np.concatenate([s0, s1]), np.concatenate([d0, d1]), np.concatenate([w0, w1])

    def ring(self, k: int) -> tuple[IntArray, IntArray, Array]:
        """Open ground's moves at k cells per second (src, dst, weight), sorted by source: the
        forward state of each open cell in turn (empty for k = 0 or without open ground)."""
        if k == 0 or self.n_cells == self.n_aisle_cells:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), np.zeros(0)
        return self._ring(k * self.cell_m)

    def _ring(self, radius_m: float) -> tuple[IntArray, IntArray, Array]:
        """From the forward state of each open cell to the forward states of the open cells
        about radius_m away (weights renormalised over the open cells that exist). The filter
        keeps an open cell's mass on its forward state (`RouteFilter.predict`)."""
        na = self.n_aisle_cells
        s = self.open_cell_m
        ox, oy = self.cx[na:], self.cy[na:]  # on a raster of s: whole steps from the corner
        fx, fy = (ox - ox.min()) / s, (oy - oy.min()) / s
        ix, iy = np.round(fx).astype(np.int64), np.round(fy).astype(np.int64)
        if max(np.abs(fx - ix).max(), np.abs(fy - iy).max()) > 1e-6:
            raise ValueError("open cells must lie on a raster of open_cell_m")
        at = {(i, j): na + k for k, (i, j) in enumerate(zip(ix.tolist(), iy.tolist(),
                                                              strict=True))}
        offsets = _ring_offsets(radius_m, s)
        src: list[int] = []
        dst: list[int] = []
        w: list[float] = []
        for k, (i, j) in enumerate(zip(ix.tolist(), iy.tolist(), strict=True)):
            got = [(at[(i + di, j + dj)], wo) for di, dj, wo in offsets if (i + di, j + dj) in at]
            if not got:  # an isolated cell (a sliver of a zone) holds its mass
                got = [(na + k, 1.0)]
            total = sum(wo for _, wo in got)
            for c, wo in got:
                src.append(na + k)
                dst.append(c)
                w.append(wo / total)
        return (np.array(src, dtype=np.intp), np.array(dst, dtype=np.intp),
                np.array(w, dtype=np.float64))

    def cell_distance_m(self, x_m: float, y_m: float) -> Array:
        """Distance from a point to every cell centre."""
        out: Array = np.hypot(self.cx - x_m, self.cy - y_m)
        return out


def _split(aisles: tuple[Aisle, ...], nodes: list[tuple[float, float]]) -> list[Edge]:
    """Aisles cut at crossings and T-junctions into edges between junction nodes.

    Ends are snapped first (`_snap_ends`), so an L drawn with a gap at its corner and a T stem
    drawn past the main aisle's centre line meet at one node on the centre lines; edges shorter
    than NODE_MERGE_M are then contracted into a node.
    """
    raw = [(a.start, a.end, a.width_m) for a in aisles
           if math.hypot(a.end[0] - a.start[0], a.end[1] - a.start[1]) > 1e-6]
    if not raw:
        return []
    ends = np.array([[s, e] for s, e, _ in raw], dtype=np.float64)  # (S, 2 ends, xy)
    width = np.array([w for _, _, w in raw], dtype=np.float64)
    _snap_ends(ends, width)
    keep = np.hypot(*(ends[:, 1] - ends[:, 0]).T) > 1e-6
    ends, width = ends[keep], width[keep]
    index = _NodeIndex(nodes)
    on: list[list[tuple[float, int]]] = [[] for _ in range(len(width))]
    for si in range(len(width)):
        on[si].append((0.0, index.node(float(ends[si, 0, 0]), float(ends[si, 0, 1]))))
        on[si].append((1.0, index.node(float(ends[si, 1, 0]), float(ends[si, 1, 1]))))
    # an end lying on another segment (within half of that one's width): a T-junction
    seg_i, end_i, u = _ends_on_interiors(ends, width)
    for si, ei, ui in zip(seg_i.tolist(), end_i.tolist(), u.tolist(), strict=True):
        p = ends[ei // 2, ei % 2]
        on[si].append((ui, index.node(float(p[0]), float(p[1]))))
    for si, ti, us, vt, x, y in _crossings(ends):
        n = index.node(x, y)
        on[si].append((us, n))
        on[ti].append((vt, n))
    edges: list[Edge] = []
    for si in range(len(width)):
        (ax, ay), (bx, by) = ends[si].tolist()
        w = float(width[si])
        ids: list[tuple[float, int]] = []
        for u0, n in sorted(on[si]):
            if not ids or ids[-1][1] != n:
                ids.append((u0, n))
        for (u0, n0), (u1, n1) in itertools.pairwise(ids):
            if n0 != n1:
                edges.append(Edge(n0, n1, ax + u0 * (bx - ax), ay + u0 * (by - ay),
                                  ax + u1 * (bx - ax), ay + u1 * (by - ay), w))
    return _contract_short(edges, nodes)


class _NodeIndex:
    """Junction lookup in a dict of NODE_MERGE_M buckets: a point within NODE_MERGE_M of a node
    is that node (the nearest one), else a new node."""

    def __init__(self, nodes: list[tuple[float, float]]) -> None:
        self.nodes = nodes
        self.buckets: dict[tuple[int, int], list[int]] = {}

    def node(self, x: float, y: float) -> int:
        kx, ky = math.floor(x / NODE_MERGE_M), math.floor(y / NODE_MERGE_M)
        best, best_d = -1, NODE_MERGE_M
        for i in (kx - 1, kx, kx + 1):
            for j in (ky - 1, ky, ky + 1):
                for n in self.buckets.get((i, j), ()):
                    d = math.hypot(x - self.nodes[n][0], y - self.nodes[n][1])
                    if d < best_d:
                        best, best_d = n, d
        if best >= 0:
            return best
        self.nodes.append((x, y))
        self.buckets.setdefault((kx, ky), []).append(len(self.nodes) - 1)
        return len(self.nodes) - 1


def _snap_ends(ends: Array, width: Array) -> None:
    """Move aisle ends drawn near a junction onto it, in place (ends: segment x end x xy).

    Ends of different aisles within max(w_a, w_b)/2 (at least NODE_MERGE_M) of each other become
    one point: where the two centre lines meet if that is as close to both, else their mean (an
    L drawn with a gap at the corner). Then an end within max(w/2, NODE_MERGE_M) of another
    aisle's interior moves to its projection on that centre line (a T stem drawn short of the
    main aisle's centre line or past it).
    """
    n_ends = 2 * width.size
    pts = ends.reshape(n_ends, 2)  # a view: writing pts moves the ends
    owner = np.repeat(np.arange(width.size), 2)
    tol = np.maximum(np.maximum(width[owner][:, None], width[owner][None, :]) / 2.0,
                     NODE_MERGE_M)
    gap = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
    close = (gap <= tol) & (owner[:, None] != owner[None, :])
    parent = list(range(n_ends))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(close, 1)), strict=True):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(n_ends):
        groups.setdefault(find(i), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        target = pts[members].mean(axis=0)
        if len(members) == 2:
            i, j = members
            meet = _line_meet(ends[owner[i]], ends[owner[j]])
            if meet is not None and max(math.hypot(meet[0] - pts[m, 0], meet[1] - pts[m, 1])
                                        for m in members) <= tol[i, j]:
                target = np.array(meet)
        pts[members] = target
    seg_i, end_i, u = _ends_on_interiors(ends, width)
    if not seg_i.size:
        return
    a = ends[seg_i, 0]
    proj = a + u[:, None] * (ends[seg_i, 1] - a)
    dist = np.hypot(*(pts[end_i] - proj).T)
    moved: set[int] = set()
    for k in np.argsort(dist, kind="stable").tolist():  # nearest aisle first
        root = find(int(end_i[k]))
        if root not in moved:
            moved.add(root)
            pts[groups[root]] = proj[k]


def _ends_on_interiors(ends: Array, width: Array) -> tuple[IntArray, IntArray, Array]:
    """Ends lying on another segment strictly inside it, within max(w/2, NODE_MERGE_M) of its
    centre line: (segment, end = 2 x segment + 0|1, position u along the segment)."""
    n_seg = width.size
    pts = ends.reshape(2 * n_seg, 2)
    owner = np.repeat(np.arange(n_seg), 2)
    a = ends[:, 0]
    dv = ends[:, 1] - a
    rel = pts[:, None, :] - a[None, :, :]  # (end, segment, xy)
    u = (rel * dv[None]).sum(axis=2) / (dv * dv).sum(axis=1)[None, :]
    off = rel - u[:, :, None] * dv[None]
    dist = np.hypot(off[:, :, 0], off[:, :, 1])
    hit = ((u > 0.0) & (u < 1.0) & (dist <= np.maximum(width / 2.0, NODE_MERGE_M)[None, :])
           & (owner[:, None] != np.arange(n_seg)[None, :]))
    e, s = np.nonzero(hit)
    return s.astype(np.intp), e.astype(np.intp), u[e, s]


def _crossings(ends: Array) -> list[tuple[int, int, float, float, float, float]]:
    """Pairs of segments crossing strictly inside both: (s, t > s, u on s, v on t, x, y)."""
    a = ends[:, 0]
    r = ends[:, 1] - a
    den = r[:, None, 0] * r[None, :, 1] - r[:, None, 1] * r[None, :, 0]
    q = a[None, :, :] - a[:, None, :]  # start of t minus start of s
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (q[..., 0] * r[None, :, 1] - q[..., 1] * r[None, :, 0]) / den
        v = (q[..., 0] * r[:, None, 1] - q[..., 1] * r[:, None, 0]) / den
    hit = (np.abs(den) >= 1e-12) & (u > 0.0) & (u < 1.0) & (v > 0.0) & (v < 1.0)
    si, ti = np.nonzero(np.triu(hit, 1))
    us, vt = u[si, ti], v[si, ti]
    x = a[si, 0] + us * r[si, 0]
    y = a[si, 1] + us * r[si, 1]
    return list(zip(si.tolist(), ti.tolist(), us.tolist(), vt.tolist(), x.tolist(), y.tolist(),
                    strict=True))


def _line_meet(s: Array, t: Array) -> tuple[float, float] | None:
    """Where the infinite centre lines of segments s and t (2 x xy each) meet, if not parallel."""
    rx, ry = s[1] - s[0]
    sx, sy = t[1] - t[0]
    den = rx * sy - ry * sx
    if abs(den) < 1e-9 * math.hypot(rx, ry) * math.hypot(sx, sy):
        return None
    qx, qy = t[0] - s[0]
    u = (qx * sy - qy * sx) / den
    return float(s[0, 0] + u * rx), float(s[0, 1] + u * ry)


def _contract_short(edges: list[Edge], nodes: list[tuple[float, float]]) -> list[Edge]:
    """Edges shorter than NODE_MERGE_M merged into one node; duplicates dropped; nodes renumbered
    (`nodes` is rewritten to the ones still used)."""
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for e in edges:
        if e.length_m < NODE_MERGE_M:
            ra, rb = find(e.a), find(e.b)
            parent[max(ra, rb)] = min(ra, rb)
    new_id: dict[int, int] = {}
    kept: list[tuple[float, float]] = []

    def renumber(i: int) -> int:
        r = find(i)
        if r not in new_id:
            new_id[r] = len(kept)
            kept.append(nodes[r])
        return new_id[r]

    out: list[Edge] = []
    seen: set[tuple[int, int]] = set()
    for e in edges:
        if find(e.a) == find(e.b):
            continue
        a, b = renumber(e.a), renumber(e.b)
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        out.append(Edge(a, b, e.ax, e.ay, e.bx, e.by, e.width_m))
    nodes[:] = kept
    return out


def _ring_offsets(radius_m: float, cell_m: float) -> list[tuple[int, int, float]]:
    """(di, dj, share) per cell offset: how much of a ring of radius_m around a cell's centre,
    blurred by RING_SIGMA_M, falls in the cell di, dj cells away (integrated over the cell)."""
    reach = math.ceil((radius_m + 3.0 * RING_SIGMA_M) / cell_m + 0.5)
    theta = np.arange(_RING_ANGLES) * (2.0 * math.pi / _RING_ANGLES)
    rx, ry = radius_m * np.cos(theta), radius_m * np.sin(theta)
    sub = ((np.arange(_RING_SUB) + 0.5) / _RING_SUB - 0.5) * cell_m
    out: list[tuple[int, int, float]] = []
    for di in range(-reach, reach + 1):
        for dj in range(-reach, reach + 1):
            px = (di * cell_m + sub)[:, None, None]
            py = (dj * cell_m + sub)[None, :, None]
            d2 = (px - rx[None, None, :]) ** 2 + (py - ry[None, None, :]) ** 2
            out.append((di, dj, float(np.mean(np.exp(-0.5 * d2 / RING_SIGMA_M ** 2)))))
    top = max(w for _, _, w in out)
    return [o for o in out if o[2] >= RING_MIN_W * top]
