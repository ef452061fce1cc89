"""The dashboard's central SQLite store: every agent's windows (each id once), status, site plans.

Windows arrive at least once (agents resend until acknowledged), so `add_windows` ignores an id it
already holds. Totals are columns for fast SQL sums; heatmaps are merged with the agent's own code.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.heatmap.window import Window, merge_windows

# A writer (the ingest thread) and readers (HTTP requests) share the file; a reader waits at most
# this long for a write lock instead of failing at once.
BUSY_TIMEOUT_MS = 10_000
# Merged heatmaps kept in memory, keyed by (site, range, store version): the page re-asks the same
# range on every live update; a handful of ranges is all a supervisor's browser uses.
HEATMAP_CACHE_SIZE = 32
# Heatmaps are merged per hour first: a shift is 8 cached merges plus the changing current hour.
BUCKET_S = 3600.0
# Hour merges kept: two weeks of hours; each holds at most one plant grid (~2000 cells, ~0.3 MB).
BUCKET_CACHE_SIZE = 336
# Grid used for an empty range of a site whose agents never sent a window (the agent's default).
DEFAULT_CELL_M = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    agent TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    dwell_s REAL NOT NULL,
    moving_s REAL NOT NULL,
    idle_s REAL NOT NULL,
    no_position_s REAL NOT NULL,
    distance_m REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS windows_site_start ON windows (site, start);
CREATE TABLE IF NOT EXISTS window_zones (
    window_id TEXT NOT NULL,
    site TEXT NOT NULL,
    start REAL NOT NULL,
    zone TEXT NOT NULL,
    dwell_s REAL NOT NULL,
    moving_s REAL NOT NULL,
    idle_s REAL NOT NULL,
    PRIMARY KEY (window_id, zone)
);
CREATE INDEX IF NOT EXISTS window_zones_site_start ON window_zones (site, start);
CREATE TABLE IF NOT EXISTS agents (
    site TEXT NOT NULL,
    agent TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unknown',
    status_t REAL,
    last_window_end REAL,
    PRIMARY KEY (site, agent)
);
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY,
    plan TEXT,
    source TEXT NOT NULL,
    first_start REAL,
    last_end REAL,
    windows INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', 0);
"""


@dataclass(frozen=True, slots=True)
class _Part:
    """Windows of one grid merged: the merge, its agents and window count."""

    window: Window
    agents: frozenset[str]
    count: int


@dataclass(frozen=True, slots=True)
class _Bucket:
    """One hour's merges, one per grid (agents configured alike share one), and its stamp."""

    stamp: tuple[int, int]
    by_grid: dict[tuple[float, float, float], _Part]


def _grid_key(w: Window) -> tuple[float, float, float]:
    return (w.cell_m, w.x0, w.y0)


def _merge_parts(parts: list[_Part]) -> _Part:
    return _Part(merge_windows(p.window for p in parts),
                 frozenset().union(*(p.agents for p in parts)), sum(p.count for p in parts))


@dataclass(frozen=True, slots=True)
class AddResult:
    """What one add_windows call did: new windows stored, repeats ignored."""

    stored: int
    duplicates: int


class DashboardStore:
    """SQLite (WAL) store shared by the ingest thread and the web app; one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._cache: dict[tuple[str, float, float, int], dict[str, Any]] = {}
        self._cache_lock = threading.Lock()
        self._buckets: OrderedDict[tuple[str, float, float], _Bucket] = OrderedDict()
        db = self._db()
        db.executescript(_SCHEMA)
        db.commit()

    # --- connections ------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            # floor() is an optional SQLite build feature; this one is always there.
            db.create_function("bucket_of", 1, _bucket_of, deterministic=True)
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # --- writes -----------------------------------------------------------------------------

    def add_windows(self, windows: Iterable[Window],
                    payload_json: Sequence[str] | None = None) -> AddResult:
        """Store windows in one transaction; a window id already held is ignored (at-least-once).

        payload_json: the windows' JSON payloads as received (saves re-encoding them), if known.
        """
        db = self._db()
        stored = dups = 0
        zone_rows: list[tuple[str, str, float, str, float, float, float]] = []
        last_end: dict[tuple[str, str], float] = {}
        site_span: dict[str, tuple[float, float, int]] = {}
        with db:
            for k, w in enumerate(windows):
                text = (payload_json[k] if payload_json is not None
                        else json.dumps(w.to_payload(), separators=(",", ":")))
                cur = db.execute(
                    'INSERT OR IGNORE INTO windows (id, site, agent, start, "end", dwell_s, '
                    "moving_s, idle_s, no_position_s, distance_m, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (w.id, w.site, w.agent, w.start, w.end, w.dwell_s, w.moving_s, w.idle_s,
                     w.no_position_s, w.distance_m, text))
                if cur.rowcount != 1:
                    dups += 1
                    continue
                stored += 1
                zone_rows.extend((w.id, w.site, w.start, name, z[0], z[1], z[2])
                                 for name, z in w.zones.items())
                key = (w.site, w.agent)
                last_end[key] = max(last_end.get(key, w.end), w.end)
                lo, hi, n = site_span.get(w.site, (w.start, w.end, 0))
                site_span[w.site] = (min(lo, w.start), max(hi, w.end), n + 1)
            # Per batch, not per window: one row per zone, one upsert per agent and site.
            db.executemany(
                "INSERT OR IGNORE INTO window_zones (window_id, site, start, zone, dwell_s, "
                "moving_s, idle_s) VALUES (?, ?, ?, ?, ?, ?, ?)", zone_rows)
            db.executemany(
                "INSERT INTO agents (site, agent, last_window_end) VALUES (?, ?, ?) "
                "ON CONFLICT (site, agent) DO UPDATE SET last_window_end = "
                "max(coalesce(last_window_end, excluded.last_window_end), "
                "excluded.last_window_end)",
                [(site, agent, end) for (site, agent), end in last_end.items()])
            # The span and count of each site, kept here so /api/sites never scans the windows.
            db.executemany(
                "INSERT INTO sites (site, plan, source, first_start, last_end, windows) "
                "VALUES (?, NULL, 'windows', ?, ?, ?) ON CONFLICT (site) DO UPDATE SET "
                "first_start = min(coalesce(first_start, excluded.first_start), "
                "excluded.first_start), last_end = max(coalesce(last_end, excluded.last_end), "
                "excluded.last_end), windows = windows + excluded.windows",
                [(site, *span) for site, span in site_span.items()])
            if stored:
                db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        return AddResult(stored, dups)

    def set_status(self, site: str, agent: str, status: str, t_s: float | None = None) -> None:
        """Record an agent's reported state (online/offline) and, if given, when it said so."""
        db = self._db()
        with db:
            db.execute(
                "INSERT INTO agents (site, agent, status, status_t) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (site, agent) DO UPDATE SET status = excluded.status, "
                "status_t = coalesce(excluded.status_t, status_t)", (site, agent, status, t_s))
            db.execute("INSERT OR IGNORE INTO sites (site, plan, source) VALUES (?, NULL, ?)",
                       (site, "status"))
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")

    def set_site_plan(self, plan: dict[str, Any], source: str) -> None:
        """Keep a validated site.json document (from --site-file or the retained site topic)."""
        db = self._db()
        with db:
            db.execute("INSERT INTO sites (site, plan, source) VALUES (?, ?, ?) "
                       "ON CONFLICT (site) DO UPDATE SET plan = excluded.plan, "
                       "source = excluded.source",
                       (plan["site"], json.dumps(plan), source))
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")

    # --- reads ------------------------------------------------------------------------------

    def version(self) -> int:
        """A counter that grows on every change: the page polls it to know when to refresh."""
        row = self._db().execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0])

    def count_windows(self, site: str | None = None) -> int:
        q = "SELECT count(*) FROM windows" + (" WHERE site = ?" if site is not None else "")
        return int(self._db().execute(q, () if site is None else (site,)).fetchone()[0])

    def has_site(self, site: str) -> bool:
        return self._db().execute("SELECT 1 FROM sites WHERE site = ?",
                                  (site,)).fetchone() is not None

    def site_plan(self, site: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT plan FROM sites WHERE site = ?", (site,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def sites(self) -> list[dict[str, Any]]:
        """Every known site: its plan (or None), agent count, and the span of its windows."""
        db = self._db()
        out = []
        for site, plan, first, last, n in db.execute(
                "SELECT site, plan, first_start, last_end, windows FROM sites "
                "ORDER BY site").fetchall():
            agents = db.execute("SELECT count(*) FROM agents WHERE site = ?", (site,)).fetchone()
            out.append({"site": site, "plan": json.loads(plan) if plan else None,
                        "agents": int(agents[0]), "windows": int(n),
                        "first_start": first, "last_end": last})
        return out

    def utilisation(self, site: str, t0: float, t1: float) -> dict[str, Any]:
        """Per agent and per zone sums of the windows whose start is in [t0, t1)."""
        db = self._db()
        lo, hi = _sql_bound(t0), _sql_bound(t1)
        agents: dict[str, dict[str, Any]] = {}
        for agent, status, status_t, last_end in db.execute(
                "SELECT agent, status, status_t, last_window_end FROM agents WHERE site = ? "
                "ORDER BY agent", (site,)):
            seen = [t for t in (status_t, last_end) if t is not None]
            agents[agent] = {"agent": agent, "dwell_s": 0.0, "moving_s": 0.0, "idle_s": 0.0,
                             "no_position_s": 0.0, "distance_m": 0.0, "windows": 0,
                             "status": status, "last_seen": max(seen) if seen else None}
        for row in db.execute(
                "SELECT agent, sum(dwell_s), sum(moving_s), sum(idle_s), sum(no_position_s), "
                "sum(distance_m), count(*) FROM windows WHERE site = ? AND start >= ? "
                "AND start < ? GROUP BY agent", (site, lo, hi)):
            a = agents.setdefault(row[0], {"agent": row[0], "status": "unknown",
                                           "last_seen": None})
            a.update(dwell_s=row[1], moving_s=row[2], idle_s=row[3], no_position_s=row[4],
                     distance_m=row[5], windows=row[6])
        for a in agents.values():
            covered_s = a["dwell_s"] + a["no_position_s"]
            a["utilisation_pct"] = 100.0 * a["moving_s"] / covered_s if covered_s > 0 else None
        zones = [{"zone": r[0], "dwell_s": r[1], "moving_s": r[2], "idle_s": r[3]}
                 for r in db.execute(
                     "SELECT zone, sum(dwell_s), sum(moving_s), sum(idle_s) FROM window_zones "
                     "WHERE site = ? AND start >= ? AND start < ? GROUP BY zone ORDER BY zone",
                     (site, lo, hi))]
        keys = ("dwell_s", "moving_s", "idle_s", "no_position_s", "distance_m", "windows")
        totals: dict[str, Any] = {k: sum(a[k] for a in agents.values()) for k in keys}
        return {"site": site, "from": _json_bound(t0), "to": _json_bound(t1),
                "agents": list(agents.values()), "zones": zones, "totals": totals}

    def windows(self, site: str, t0: float, t1: float) -> list[Window]:
        """The stored windows of a site whose start is in [t0, t1), in start order."""
        rows = self._db().execute(
            "SELECT payload FROM windows WHERE site = ? AND start >= ? AND start < ? "
            "ORDER BY start, id", (site, _sql_bound(t0), _sql_bound(t1))).fetchall()
        return [_stored_window(json.loads(r[0])) for r in rows]

    def heatmap(self, site: str, t0: float, t1: float) -> dict[str, Any]:
        """The fleet's merged heatmap for [t0, t1) in the spec's heatmap.json shape.

        Merged per hour bucket (cached while the bucket's windows are unchanged), then across
        buckets: a live update re-merges only the current hour, not the whole shift.
        """
        key = (site, t0, t1, self.version())
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        grids: dict[tuple[float, float, float], list[_Part]] = {}
        for b, count, last_rowid in self._db().execute(
                "SELECT bucket_of(start) AS b, count(*), max(rowid) FROM windows "
                "WHERE site = ? AND start >= ? AND start < ? GROUP BY b ORDER BY b",
                (site, _sql_bound(t0), _sql_bound(t1))).fetchall():
            lo, hi = max(t0, b * BUCKET_S), min(t1, (b + 1) * BUCKET_S)
            for grid, part in self._bucket(site, lo, hi, (count, last_rowid)).by_grid.items():
                grids.setdefault(grid, []).append(part)
        merged = sorted((_merge_parts(parts) for parts in grids.values()),
                        key=lambda p: -p.count)
        if merged:
            # Agents with a different cell size or origin cannot be summed cell by cell: the
            # map shows the grid most windows use and says how many it left out.
            main = merged[0]
            payload = main.window.to_payload()
            payload.pop("id", None)
            agents = sorted(main.agents)
            left_out = sum(p.count for p in merged[1:])
        else:
            payload = self._empty_heatmap(site)
            agents, left_out = [], 0
        payload.update({"site": site, "agent": "*", "agents": agents,
                        "windows": merged[0].count if merged else 0,
                        "other_grid_windows": left_out,
                        "from": _json_bound(t0), "to": _json_bound(t1)})
        with self._cache_lock:
            if len(self._cache) >= HEATMAP_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = payload
        return payload

    def _bucket(self, site: str, lo: float, hi: float, stamp: tuple[int, int]) -> _Bucket:
        """The merge of the windows starting in [lo, hi) (one hour at most), from the cache when
        its stamp (count, newest rowid) is unchanged: rows are only ever added."""
        key = (site, lo, hi)
        with self._cache_lock:
            hit = self._buckets.get(key)
            if hit is not None and hit.stamp == stamp:
                self._buckets.move_to_end(key)
                return hit
        groups: dict[tuple[float, float, float], list[Window]] = {}
        for w in self.windows(site, lo, hi):
            groups.setdefault(_grid_key(w), []).append(w)
        bucket = _Bucket(stamp, {g: _Part(merge_windows(ws), frozenset(w.agent for w in ws),
                                          len(ws)) for g, ws in groups.items()})
        with self._cache_lock:
            self._buckets[key] = bucket
            while len(self._buckets) > BUCKET_CACHE_SIZE:
                self._buckets.popitem(last=False)
        return bucket

    def _empty_heatmap(self, site: str) -> dict[str, Any]:
        """No window in range: the grid of the site's latest window, or of its plan's bounds."""
        row = self._db().execute("SELECT payload FROM windows WHERE site = ? ORDER BY start DESC "
                                 "LIMIT 1", (site,)).fetchone()
        grid: dict[str, Any] | None = None
        if row:
            grid = json.loads(row[0]).get("grid")
        else:
            plan = self.site_plan(site)
            if plan:
                b = plan["bounds"]
                grid = {"x0": b["xmin"], "y0": b["ymin"], "cell_m": DEFAULT_CELL_M,
                        "nx": math.ceil((b["xmax"] - b["xmin"]) / DEFAULT_CELL_M),
                        "ny": math.ceil((b["ymax"] - b["ymin"]) / DEFAULT_CELL_M)}
        return {"start": None, "end": None, "grid": grid, "cells": [], "zones": {},
                "totals": {"dwell_s": 0.0, "moving_s": 0.0, "idle_s": 0.0,
                           "no_position_s": 0.0, "distance_m": 0.0}}


def _sql_bound(t: float) -> float:
    """SQLite has no infinity literal binding issue, but keep open ends explicit and finite."""
    return max(min(t, 1e300), -1e300)


def _json_bound(t: float) -> float | None:
    return t if math.isfinite(t) else None


def _bucket_of(start: float) -> int:
    return math.floor(start / BUCKET_S)


def _stored_window(d: dict[str, Any]) -> Window:
    """A Window from a payload this store holds. Every stored payload passed decode_window's
    validation on the way in, so reading it back maps fields only (4x faster than validating)."""
    g, t = d["grid"], d["totals"]
    return Window(id=d["id"], site=d["site"], agent=d["agent"], start=d["start"], end=d["end"],
                  cell_m=g["cell_m"], x0=g["x0"], y0=g["y0"], nx=g["nx"], ny=g["ny"],
                  cells={(c[0], c[1]): (c[2], c[3]) for c in d["cells"]},
                  dwell_s=t["dwell_s"], moving_s=t["moving_s"], idle_s=t["idle_s"],
                  no_position_s=t["no_position_s"], distance_m=t["distance_m"],
                  zones={name: (z["dwell_s"], z["moving_s"], z["idle_s"])
                         for name, z in d.get("zones", {}).items()})
