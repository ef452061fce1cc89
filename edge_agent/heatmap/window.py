"""One utilisation window: dwell and moving seconds per grid cell, totals and zones, with its id.

Every time value is held as a float that is an exact multiple of 1 ms, and merging adds the
integer milliseconds, so `merge_windows` is exactly associative and commutative (no float drift).
Payload format: docs/heatmap.md (the spec's heatmap shape plus "v", "id", "zones", "totals").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.errors import InputError

PAYLOAD_VERSION = 1
MS_PER_S = 1000
"""Seconds are quantised to whole milliseconds: far below any dwell worth reporting, and integer
sums of milliseconds are exact, which is what makes merging order-free."""
MM_PER_M = 1000
"""Distances are quantised to whole millimetres for the same reason."""
MAX_CELLS_PER_AXIS = 100_000
"""A grid wider than this (200 km at 2 m) is a corrupt payload, not a plant."""
ANY_AGENT = "*"
"""The agent of a merge over several agents (a fleet)."""

Cell = tuple[int, int]


def to_ms(seconds: float) -> int:
    """Seconds to whole milliseconds (round half to even)."""
    return round(seconds * MS_PER_S)


def from_ms(ms: int) -> float:
    return ms / MS_PER_S


def quantise_s(seconds: float) -> float:
    """The float a Window stores for `seconds`: an exact multiple of 1 ms."""
    return from_ms(to_ms(seconds))


def window_id(site: str, agent: str, start: float, end: float, first_s: float | None = None) -> str:
    """The stable id "{site}/{agent}/{start}/{length}" (+ "@{ms after start}" for a window whose
    data begins after its start, e.g. an agent restarted mid-window, so both parts are kept)."""
    base = f"{site}/{agent}/{math.floor(start)}/{round(end - start)}"
    if first_s is not None and to_ms(first_s) > to_ms(start):
        base += f"@{to_ms(first_s) - to_ms(start)}"
    return base


@dataclass(frozen=True)
class Window:
    """Utilisation of one agent (or a merge of several) over [start, end) on one site grid.

    `cells` maps (ix, iy) to (dwell_s, moving_s); cell (ix, iy) covers x0 + ix*cell_m <= x <
    x0 + (ix+1)*cell_m, likewise y. `zones` maps a zone name to (dwell_s, moving_s, idle_s).
    dwell_s = moving_s + idle_s is time with a position; no_position_s is covered time without.
    """

    id: str
    site: str
    agent: str
    start: float
    end: float
    cell_m: float
    x0: float
    y0: float
    nx: int
    ny: int
    cells: dict[Cell, tuple[float, float]]
    dwell_s: float
    moving_s: float
    idle_s: float
    no_position_s: float
    distance_m: float
    zones: dict[str, tuple[float, float, float]]

    # --- payload -------------------------------------------------------------------------------

    def grid(self) -> dict[str, Any]:
        return {"x0": self.x0, "y0": self.y0, "cell_m": self.cell_m, "nx": self.nx, "ny": self.ny}

    def cells_list(self) -> list[list[float]]:
        """Sparse cells [ix, iy, dwell_s, moving_s], sorted, cells without dwell left out."""
        return [[ix, iy, d, m] for (ix, iy), (d, m) in sorted(self.cells.items()) if d > 0]

    def totals(self) -> dict[str, float]:
        return {"dwell_s": self.dwell_s, "moving_s": self.moving_s, "idle_s": self.idle_s,
                "no_position_s": self.no_position_s, "distance_m": self.distance_m}

    def to_payload(self) -> dict[str, Any]:
        """The MQTT heatmap payload as a JSON-able dict (docs/heatmap.md)."""
        return {
            "v": PAYLOAD_VERSION, "id": self.id, "site": self.site, "agent": self.agent,
            "start": self.start, "end": self.end, "grid": self.grid(), "cells": self.cells_list(),
            "totals": self.totals(),
            "zones": {name: {"dwell_s": d, "moving_s": m, "idle_s": i}
                      for name, (d, m, i) in sorted(self.zones.items())},
        }

    def to_heatmap_json(self) -> dict[str, Any]:
        """The spec's heatmap.json shape exactly: site, agent, start, end, grid, cells, totals."""
        totals = self.totals()
        del totals["no_position_s"]
        return {"site": self.site, "agent": self.agent, "start": self.start, "end": self.end,
                "grid": self.grid(), "cells": self.cells_list(), "totals": totals}

    @classmethod
    def from_payload(cls, d: Any, source: str = "heatmap payload") -> Window:
        """Parse and validate a payload dict; anything malformed is an InputError naming a field."""
        return _PayloadReader(source).window(d)


# --- merging -----------------------------------------------------------------------------------

def merge_windows(windows: Iterable[Window]) -> Window:
    """Sum windows of one site grid into one (hours, shifts, a fleet); exact in any order or
    grouping. Deduplicates nothing: callers drop repeated ids first."""
    ws = list(windows)
    if not ws:
        raise ValueError("merge_windows needs at least one window")
    first = ws[0]
    for w in ws[1:]:
        if w.site != first.site:
            raise ValueError(f"cannot merge windows of sites {first.site!r} and {w.site!r}")
        if (w.cell_m, w.x0, w.y0) != (first.cell_m, first.x0, first.y0):
            raise ValueError(f"cannot merge windows on different grids: {w.id!r} and {first.id!r}")
    if len(ws) == 1:
        return first
    agents = {w.agent for w in ws}
    agent = first.agent if len(agents) == 1 else ANY_AGENT
    start = min(w.start for w in ws)
    end = max(w.end for w in ws)
    cells: dict[Cell, list[int]] = {}
    zones: dict[str, list[int]] = {}
    for w in ws:
        for key, (d, m) in w.cells.items():
            acc = cells.setdefault(key, [0, 0])
            acc[0] += to_ms(d)
            acc[1] += to_ms(m)
        for name, (d, m, i) in w.zones.items():
            zacc = zones.setdefault(name, [0, 0, 0])
            zacc[0] += to_ms(d)
            zacc[1] += to_ms(m)
            zacc[2] += to_ms(i)

    def total(attr: str) -> float:
        return from_ms(sum(to_ms(getattr(w, attr)) for w in ws))

    return Window(
        id=window_id(first.site, agent, start, end), site=first.site, agent=agent,
        start=start, end=end, cell_m=first.cell_m, x0=first.x0, y0=first.y0,
        nx=max(w.nx for w in ws), ny=max(w.ny for w in ws),
        cells={k: (from_ms(d), from_ms(m)) for k, (d, m) in cells.items()},
        dwell_s=total("dwell_s"), moving_s=total("moving_s"), idle_s=total("idle_s"),
        no_position_s=total("no_position_s"),
        distance_m=sum(round(w.distance_m * MM_PER_M) for w in ws) / MM_PER_M,
        zones={k: (from_ms(d), from_ms(m), from_ms(i)) for k, (d, m, i) in zones.items()})


# --- validation --------------------------------------------------------------------------------

class _PayloadReader:
    """Field checks of a decoded payload: the dashboard feeds it whatever the broker holds."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, field: str, value: object) -> InputError:
        shown = value if not isinstance(value, str | list | dict) or len(value) < 80 else "..."
        return InputError(self.source, message, field=field, value=shown)

    def obj(self, d: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(d, dict):
            raise self.fail("must be an object", field, type(d).__name__)
        return d

    def num(self, d: Mapping[str, Any], key: str, field: str, *, lo: float = -math.inf,
            hi: float = math.inf) -> float:
        val = d.get(key)
        if type(val) is float and lo <= val <= hi and val - val == 0.0:  # common case; inf-inf=NaN
            return val
        return self.finite(val, field, lo=lo, hi=hi)

    def finite(self, val: Any, field: str, *, lo: float = -math.inf,
               hi: float = math.inf) -> float:
        if type(val) is float and lo <= val <= hi and val - val == 0.0:  # common case; inf-inf=NaN
            return val
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise self.fail("must be a finite number", field, val)
        try:
            as_float = float(val)
        except OverflowError:  # an integer beyond float range
            raise self.fail("must be a finite number", field, val) from None
        if not math.isfinite(as_float):
            raise self.fail("must be a finite number", field, val)
        if not lo <= as_float <= hi:
            raise self.fail(f"must be between {lo} and {hi}", field, val)
        return as_float

    def int_(self, val: Any, field: str, lo: int, hi: int) -> int:
        if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
            raise self.fail(f"must be an integer from {lo} to {hi}", field, val)
        return val

    def string(self, d: Mapping[str, Any], key: str) -> str:
        val = d.get(key)
        if not isinstance(val, str) or not val:
            raise self.fail("must be a non-empty string", key, val)
        return val

    def seconds(self, d: Mapping[str, Any], key: str, field: str) -> float:
        return round(self.num(d, key, field, lo=0.0) * MS_PER_S) / MS_PER_S  # quantise_s

    def cells(self, raw_cells: list[Any], nx: int, ny: int) -> dict[Cell, tuple[float, float]]:
        """Cells checked one by one, naming the first bad one (the slow path of _plain_cells)."""
        cells: dict[Cell, tuple[float, float]] = {}
        for i, c in enumerate(raw_cells):
            f = f"cells[{i}]"
            if not isinstance(c, list) or len(c) != 4:
                raise self.fail("must be [ix, iy, dwell_s, moving_s]", f, c)
            ix = self.int_(c[0], f + "[0]", 0, nx - 1)
            iy = self.int_(c[1], f + "[1]", 0, ny - 1)
            dwell = quantise_s(self.finite(c[2], f + "[2]", lo=0.0))
            moving = quantise_s(self.finite(c[3], f + "[3]", lo=0.0))
            if moving > dwell:
                raise self.fail("moving_s exceeds dwell_s", f, c)
            if (ix, iy) in cells:
                raise self.fail("duplicate cell", f, c)
            cells[(ix, iy)] = (dwell, moving)
        return cells

    def window(self, raw: Any) -> Window:
        d = self.obj(raw, "payload")
        v = d.get("v")
        if v != PAYLOAD_VERSION:
            raise self.fail(f"unsupported payload version (this agent reads {PAYLOAD_VERSION})",
                            "v", v)
        start = self.num(d, "start", "start")
        end = self.num(d, "end", "end")
        if end < start:
            raise self.fail("must not be before start", "end", end)
        g = self.obj(d.get("grid"), "grid")
        cell_m = self.num(g, "cell_m", "grid.cell_m", lo=1e-3)
        x0 = self.num(g, "x0", "grid.x0")
        y0 = self.num(g, "y0", "grid.y0")
        nx = self.int_(g.get("nx"), "grid.nx", 1, MAX_CELLS_PER_AXIS)
        ny = self.int_(g.get("ny"), "grid.ny", 1, MAX_CELLS_PER_AXIS)
        raw_cells = d.get("cells")
        if not isinstance(raw_cells, list):
            raise self.fail("must be a list", "cells", raw_cells)
        plain = _plain_cells(raw_cells, nx, ny)
        if plain is None:
            cells = self.cells(raw_cells, nx, ny)
            cells_dwell_ms = sum(to_ms(c[0]) for c in cells.values())
        else:
            cells, cells_dwell_ms = plain
        t = self.obj(d.get("totals"), "totals")
        tot = {k: self.seconds(t, k, f"totals.{k}")
               for k in ("dwell_s", "moving_s", "idle_s", "no_position_s")}
        distance_m = round(self.num(t, "distance_m", "totals.distance_m", lo=0.0)
                           * MM_PER_M) / MM_PER_M
        if to_ms(tot["moving_s"]) + to_ms(tot["idle_s"]) != to_ms(tot["dwell_s"]):
            raise self.fail("dwell_s must equal moving_s + idle_s", "totals", dict(t))
        zones: dict[str, tuple[float, float, float]] = {}
        for name, z in self.obj(d.get("zones", {}), "zones").items():
            zd = self.obj(z, f"zones.{name}")
            zd_s, zm_s, zi_s = (self.seconds(zd, k, f"zones.{name}.{k}")
                                for k in ("dwell_s", "moving_s", "idle_s"))
            if to_ms(zm_s) + to_ms(zi_s) != to_ms(zd_s):
                raise self.fail("dwell_s must equal moving_s + idle_s", f"zones.{name}", dict(zd))
            zones[str(name)] = (zd_s, zm_s, zi_s)
        if cells_dwell_ms != to_ms(tot["dwell_s"]):
            raise self.fail("cells must add up to totals.dwell_s", "cells", len(cells))
        ident = self.string(d, "id")
        return Window(id=ident, site=self.string(d, "site"), agent=self.string(d, "agent"),
                      start=start, end=end, cell_m=cell_m, x0=x0, y0=y0, nx=nx, ny=ny,
                      cells=cells, zones=zones, distance_m=distance_m, **tot)


def _plain_cells(raw: list[Any], nx: int, ny: int
                 ) -> tuple[dict[Cell, tuple[float, float]], int] | None:
    """Cells of a well-formed payload checked in one tight loop (the dashboard's hot path), and
    their summed dwell in ms; None if any cell is not plainly valid (or seconds are JSON integers,
    which encode_window never writes): the caller then checks cell by cell to name the bad one."""
    cells: dict[Cell, tuple[float, float]] = {}
    dwell_ms_sum = 0
    inf = math.inf
    for c in raw:
        if type(c) is not list or len(c) != 4:
            return None
        ix, iy, d, m = c
        # type() is: bool and other int/float subclasses go the careful way; NaN fails 0.0 <= x
        if (type(ix) is not int or type(iy) is not int or type(d) is not float
                or type(m) is not float or not 0 <= ix < nx or not 0 <= iy < ny
                or not 0.0 <= d < inf or not 0.0 <= m < inf):
            return None
        d_ms = round(d * MS_PER_S)
        m_ms = round(m * MS_PER_S)
        if m_ms > d_ms:
            return None
        cells[(ix, iy)] = (d_ms / MS_PER_S, m_ms / MS_PER_S)
        dwell_ms_sum += d_ms
    if len(cells) != len(raw):  # a duplicate cell
        return None
    return cells, dwell_ms_sum
