"""The SQLite outbox: what the agent must publish (windows, health, positions), kept until acked.

One database file (WAL) also holds, when enabled, raw observations and positions that stay on the
device. Everything is bounded by size and age; what goes first, and every drop, is counted.

Durability (why synchronous=NORMAL, and FULL for windows): in WAL mode NORMAL makes each commit
survive a crash of the process (SIGKILL, OOM, a Python exception) because the WAL is written before
COMMIT returns; only a loss of power can undo the last commits not yet synced to the SD card, and
never corrupts the file. That is right for the bulk raw data (many commits a second, fsync each
would cost more than the radio work). A heatmap window is the product itself and comes once a
minute, so its commit runs at FULL (the WAL is fsynced before COMMIT returns): a Pi that loses
power keeps every window it had closed; it loses only the window still open in RAM and raw rows of
the last seconds. Acknowledgements are written at NORMAL: losing one re-sends a window with the
same id.

Retention order under the size bound: raw observations, raw positions, acknowledged bookkeeping,
unsent positions, unsent health, and only then unsent windows (oldest first), each drop counted.
The age bound is measured on data time (the newest timestamp in the database), not the wall clock,
and never removes an unsent window.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.errors import InputError
from edge_agent.estimate import Estimate
from edge_agent.observations import BleObs, GnssFix, Observation, WifiObs

# Defaults match edge_agent.config.BufferSection (max_mb = 100, max_age_h = 168): 24 h offline
# at default settings (windows + health) is ~25 MB, see docs/benchmarks.md "Buffer and MQTT".
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
# Prune down to this fraction of max_bytes, so the bound is not re-checked on every insert.
PRUNE_TARGET_FRACTION = 0.9
# Rows deleted per step while pruning raw tables; small enough to keep a step under ~50 ms.
RAW_PRUNE_CHUNK_ROWS = 20_000
# Check size and age once per this many inserted raw rows (a PRAGMA pair costs ~10 us).
RETENTION_CHECK_EVERY_ROWS = 50_000
# WAL is truncated back to this after checkpoints, so the -wal file cannot grow without bound.
JOURNAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024
# Concurrent readers (`edge-agent status`) wait this long for a writer instead of failing.
BUSY_TIMEOUT_MS = 5000

KINDS = ("heatmap", "health", "positions")
# Sending order: windows first (the product), health next, positions last.
PRIORITY = {"heatmap": 0, "health": 1, "positions": 2}
PENDING, ACKED, REJECTED = "pending", "acked", "rejected"



@dataclass(frozen=True)
class OutboxItem:
    """One message waiting in the outbox: its stable id, kind (topic suffix) and payload bytes."""

    id: str
    kind: str
    t_s: float
    payload: bytes
    attempts: int


class Outbox:
    """SQLite WAL outbox with a size and an age bound; safe for one writer and many readers."""

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_age_s: float = DEFAULT_MAX_AGE_S, durable_windows: bool = True,
                 check_same_thread: bool = True, checkpoint_on_close: bool = True) -> None:
        self.path = Path(path)
        if max_bytes <= 0:
            raise InputError(self.path, "must be positive", field="max_bytes", value=max_bytes)
        if max_age_s <= 0:
            raise InputError(self.path, "must be positive", field="max_age_s", value=max_age_s)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.durable_windows = durable_windows
        # Readers (`edge-agent status`) leave the WAL to the agent, which writes it anyway.
        self.checkpoint_on_close = checkpoint_on_close
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # check_same_thread=False only for callers that serialise access themselves
            # (OutboxForwarder holds a lock around every use).
            conn = sqlite3.connect(str(self.path), isolation_level=None,
                                   timeout=BUSY_TIMEOUT_MS / 1000.0,
                                   check_same_thread=check_same_thread)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as e:
            raise InputError(self.path, f"cannot open the outbox database: {e}") from None
        self.conn = conn
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.db = sqlite_utils.Database(conn)
        self._create_schema()
        self._rows_since_check = 0

    # --- schema ---------------------------------------------------------------------------------

    def _create_schema(self) -> None:
        db = self.db
        if "outbox" not in db.table_names():
            # id is the primary key: a message put twice is stored once. rowid keeps arrival order.
            db["outbox"].create({"id": str, "kind": str, "prio": int, "t_s": float,  # type: ignore[union-attr]
                                 "state": str, "reason": int, "attempts": int, "payload": bytes},
                                pk="id", not_null={"kind", "prio", "t_s", "state", "attempts"},
                                defaults={"attempts": 0})
            db["outbox"].create_index(["state", "prio"], if_not_exists=True)  # type: ignore[union-attr]
        if "observations" not in db.table_names():
            db["observations"].create({"t_s": float, "kind": str, "key": str, "a": float,  # type: ignore[union-attr]
                                       "b": float, "c": float, "d": float, "n": int})
        if "positions" not in db.table_names():
            db["positions"].create({"t_s": float, "x_m": float, "y_m": float,  # type: ignore[union-attr]
                                    "sigma_m": float, "speed_mps": float, "moving": int,
                                    "valid": int})
        if "counters" not in db.table_names():
            db["counters"].create({"name": str, "value": int}, pk="name")  # type: ignore[union-attr]
        if "meta" not in db.table_names():
            db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]

    # --- putting --------------------------------------------------------------------------------

    def put(self, item_id: str, kind: str, t_s: float, payload: bytes) -> bool:
        """Store one message; False (and counted) when that id is already here, sent or not."""
        return self.put_many([(item_id, kind, t_s, payload)]) == 1

    def put_many(self, items: Iterable[tuple[str, str, float, bytes]]) -> int:
        """Store several messages in one commit; returns how many were new."""
        rows = []
        for item_id, kind, t_s, payload in items:
            if kind not in PRIORITY:
                raise ValueError(f"unknown outbox kind {kind!r}; expected one of {KINDS}")
            rows.append((item_id, kind, PRIORITY[kind], float(t_s), PENDING, bytes(payload)))
        if not rows:
            return 0
        durable = self.durable_windows and any(r[1] == "heatmap" for r in rows)
        if durable:
            self.conn.execute("PRAGMA synchronous=FULL")
        try:
            with self._tx():
                before = self.conn.total_changes
                self.conn.executemany(
                    "INSERT OR IGNORE INTO outbox (id, kind, prio, t_s, state, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
                new = self.conn.total_changes - before
                if new < len(rows):
                    self._bump("duplicate_puts", len(rows) - new)
        finally:
            if durable:
                self.conn.execute("PRAGMA synchronous=NORMAL")
        self.enforce_retention()
        return new

    def add_observations(self, observations: Iterable[Observation]) -> int:
        """Append raw observations (kept on the device, never published) in one commit."""
        rows = [_obs_row(o) for o in observations]
        if rows:
            with self._tx():
                self.conn.executemany(
                    "INSERT INTO observations (t_s, kind, key, a, b, c, d, n) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._after_raw(len(rows))
        return len(rows)

    def add_positions(self, estimates: Iterable[Estimate]) -> int:
        """Append position estimates (the raw track, kept on the device) in one commit."""
        rows = [(e.t, e.x_m, e.y_m, e.sigma_m, e.speed_mps, int(e.moving), int(e.valid))
                for e in estimates]
        if rows:
            with self._tx():
                self.conn.executemany(
                    "INSERT INTO positions (t_s, x_m, y_m, sigma_m, speed_mps, moving, valid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._after_raw(len(rows))
        return len(rows)

    def _after_raw(self, n: int) -> None:
        self._rows_since_check += n
        if self._rows_since_check >= RETENTION_CHECK_EVERY_ROWS:
            self.enforce_retention()

    # --- sending --------------------------------------------------------------------------------

    def pending(self, limit: int, exclude: Sequence[str] | set[str] = ()) -> list[OutboxItem]:
        """Up to `limit` unsent messages, windows first then oldest first, skipping `exclude`."""
        skip = set(exclude)
        rows = self.conn.execute(
            "SELECT id, kind, t_s, payload, attempts FROM outbox WHERE state = ? "
            "ORDER BY prio, rowid LIMIT ?", (PENDING, limit + len(skip))).fetchall()
        items = [OutboxItem(r[0], r[1], r[2], bytes(r[3] or b""), r[4])
                 for r in rows if r[0] not in skip]
        return items[:limit]

    def settle(self, *, sent: Iterable[str] = (), acked: Iterable[str] = (),
               rejected: Iterable[tuple[str, int]] = (), acked_at_s: float | None = None) -> None:
        """Record in one commit: messages handed to the broker, acknowledged, or refused.

        An acknowledged message keeps its id (so putting it again is ignored) but loses its
        payload; a refused one keeps both, in state "rejected", until `requeue_rejected`.
        """
        sent, acked, rejected = list(sent), list(acked), list(rejected)
        if not (sent or acked or rejected):
            return
        with self._tx():
            self.conn.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?",
                                  [(i,) for i in sent])
            if acked:
                kinds = self._kinds_of(acked, PENDING)
                self.conn.executemany(
                    "UPDATE outbox SET state = ?, payload = NULL, reason = 0 WHERE id = ? "
                    "AND state = ?", [(ACKED, i, PENDING) for i in acked])
                for kind, n in kinds.items():
                    self._bump(f"acked_{kind}", n)
                self._set_meta("last_ack_id", acked[-1])
                if acked_at_s is not None:
                    self._set_meta("last_publish_t", repr(float(acked_at_s)))
            if rejected:
                kinds = self._kinds_of([i for i, _ in rejected], PENDING)
                self.conn.executemany(
                    "UPDATE outbox SET state = ?, reason = ? WHERE id = ? AND state = ?",
                    [(REJECTED, int(rc), i, PENDING) for i, rc in rejected])
                for kind, n in kinds.items():
                    self._bump(f"rejected_{kind}", n)
                self._set_meta("last_reject_reason", str(int(rejected[-1][1])))

    def requeue_rejected(self) -> int:
        """Put refused messages back in line (after the broker's ACL was fixed)."""
        with self._tx():
            cur = self.conn.execute("UPDATE outbox SET state = ?, reason = NULL WHERE state = ?",
                                    (PENDING, REJECTED))
        return int(cur.rowcount)

    def _kinds_of(self, ids: Sequence[str], state: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for kind, n in self.conn.execute(
                    f"SELECT kind, count(*) FROM outbox WHERE state = ? AND id IN ({marks}) "
                    "GROUP BY kind", (state, *chunk)):
                counts[kind] = counts.get(kind, 0) + int(n)
        return counts

    # --- retention ------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages minus free pages); the size bound applies to this."""
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def newest_t_s(self, *, health: bool = False) -> float | None:
        """The newest data time: the reference for the age bound.

        Health records carry wall-clock time while windows, positions and raw rows carry data
        time (a replayed capture may be years old), so each is aged against its own newest row.
        """
        if health:
            row = self.conn.execute("SELECT max(t_s) FROM outbox WHERE kind = 'health'")
            v = row.fetchone()[0]
            return None if v is None else float(v)
        # Raw tables are appended in time order: their last row is (about) their newest, found
        # through the rowid without scanning millions of rows.
        rows = [self.conn.execute(q).fetchone() for q in (
            "SELECT max(t_s) FROM outbox WHERE kind != 'health'",
            "SELECT t_s FROM observations ORDER BY rowid DESC LIMIT 1",
            "SELECT t_s FROM positions ORDER BY rowid DESC LIMIT 1")]
        present = [float(r[0]) for r in rows if r is not None and r[0] is not None]
        return max(present) if present else None

    def enforce_retention(self) -> dict[str, int]:
        """Apply the age bound, then the size bound; returns what was removed, by counter name."""
        self._rows_since_check = 0
        removed: dict[str, int] = {}
        newest = self.newest_t_s()
        if newest is not None:
            self._age_out(newest - self.max_age_s, removed)
        newest_health = self.newest_t_s(health=True)
        if newest_health is not None:
            self._age_out_outbox("health", newest_health - self.max_age_s, removed)
        if self.used_bytes() > self.max_bytes:
            self._shrink(removed)
        return removed

    def _age_out(self, cutoff: float, removed: dict[str, int]) -> None:
        for table, counter in (("observations", "dropped_observations"),
                               ("positions", "dropped_positions")):
            n = 0
            while True:
                first = self.conn.execute(
                    f"SELECT t_s FROM {table} ORDER BY rowid LIMIT 1").fetchone()
                if first is None or first[0] >= cutoff:
                    break
                with self._tx():
                    cur = self.conn.execute(
                        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                        f"ORDER BY rowid LIMIT ?) AND t_s < ?", (RAW_PRUNE_CHUNK_ROWS, cutoff))
                    if cur.rowcount > 0:
                        self._bump(counter, cur.rowcount)
                n += cur.rowcount
                if cur.rowcount < RAW_PRUNE_CHUNK_ROWS:
                    break
            if n:
                removed[counter] = removed.get(counter, 0) + n
        for kind in ("heatmap", "positions"):
            self._age_out_outbox(kind, cutoff, removed)

    def _age_out_outbox(self, kind: str, cutoff: float, removed: dict[str, int]) -> None:
        """Settled rows of `kind` older than cutoff go; unsent ones too, except windows."""
        with self._tx():
            cur = self.conn.execute(
                "DELETE FROM outbox WHERE kind = ? AND state != ? AND t_s < ?",
                (kind, PENDING, cutoff))
            if cur.rowcount > 0:
                self._bump("expired_settled", cur.rowcount)
            if kind != "heatmap":
                cur = self.conn.execute(
                    "DELETE FROM outbox WHERE kind = ? AND state = ? AND t_s < ?",
                    (kind, PENDING, cutoff))
                if cur.rowcount > 0:
                    self._bump(f"dropped_unsent_{kind}", cur.rowcount)
                    removed[f"dropped_unsent_{kind}"] = cur.rowcount

    def _shrink(self, removed: dict[str, int]) -> None:
        target = int(self.max_bytes * PRUNE_TARGET_FRACTION)
        steps: list[tuple[str, str, str]] = [
            ("observations", "", "dropped_observations"),
            ("positions", "", "dropped_positions"),
            ("outbox", f"state != '{PENDING}'", "expired_settled"),
            ("outbox", f"state = '{PENDING}' AND kind = 'positions'", "dropped_unsent_positions"),
            ("outbox", f"state = '{PENDING}' AND kind = 'health'", "dropped_unsent_health"),
            ("outbox", f"state = '{PENDING}' AND kind = 'heatmap'", "dropped_unsent_windows"),
        ]
        for table, where, counter in steps:
            clause = f"WHERE {where}" if where else ""
            while self.used_bytes() > target:
                total = self.conn.execute(f"SELECT count(*) FROM {table} {clause}").fetchone()[0]
                if total == 0:
                    break
                # Raw tables go in big chunks; outbox rows in ~5 % steps so few windows go at once.
                chunk = (min(RAW_PRUNE_CHUNK_ROWS, max(1000, total // 10)) if table != "outbox"
                         else max(1, total // 20))
                with self._tx():
                    cur = self.conn.execute(
                        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} {clause} "
                        f"ORDER BY rowid LIMIT ?)", (chunk,))
                    self._bump(counter, cur.rowcount)
                removed[counter] = removed.get(counter, 0) + cur.rowcount
            if self.used_bytes() <= target:
                break

    # --- reading --------------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Messages per kind and state: {"heatmap": {"pending": 3, "acked": 10, ...}, ...}."""
        out: dict[str, dict[str, int]] = {k: {PENDING: 0, ACKED: 0, REJECTED: 0} for k in KINDS}
        for kind, state, n in self.conn.execute(
                "SELECT kind, state, count(*) FROM outbox GROUP BY kind, state"):
            out.setdefault(kind, {})[state] = int(n)
        return out

    def counters(self) -> dict[str, int]:
        """Every drop, rejection, acknowledgement and duplicate counted since the database began."""
        return {str(k): int(v) for k, v in self.conn.execute("SELECT name, value FROM counters")}

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._set_meta(key, value)

    def raw_counts(self) -> dict[str, int]:
        return {t: int(self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("observations", "positions")}

    def rejected(self) -> list[tuple[str, str, int]]:
        """(id, kind, reason code) of every refused message still held."""
        return [(str(i), str(k), int(r or 0)) for i, k, r in self.conn.execute(
            "SELECT id, kind, reason FROM outbox WHERE state = ? ORDER BY rowid", (REJECTED,))]

    def summary(self) -> dict[str, Any]:
        """Buffer depth, drops and last publish as one JSON-able dict (health and `status`)."""
        counts = self.counts()
        last = self.meta("last_publish_t")
        return {
            "db": str(self.path),
            "used_bytes": self.used_bytes(),
            "max_bytes": self.max_bytes,
            "pending": {k: v[PENDING] for k, v in counts.items()},
            "rejected": {k: v[REJECTED] for k, v in counts.items()},
            "acked_held": {k: v[ACKED] for k, v in counts.items()},
            "raw": self.raw_counts(),
            "counters": self.counters(),
            "last_publish_t": float(last) if last is not None else None,
            "last_ack_id": self.meta("last_ack_id"),
        }

    def close(self) -> None:
        """Checkpoint the WAL into the database and close."""
        # A reader holding the WAL makes this fail: the next writer checkpoints it then.
        if self.checkpoint_on_close:
            with contextlib.suppress(sqlite3.OperationalError):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self.conn)

    def _bump(self, name: str, n: int) -> None:
        if n:
            self.conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                              "DO UPDATE SET value = value + excluded.value", (name, int(n)))

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value = excluded.value", (key, value))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _obs_row(o: Observation) -> tuple[float, str, str, float | None, float | None, float | None,
                                      float | None, int | None]:
    if isinstance(o, WifiObs):
        return (o.t, "wifi", o.bssid, o.rssi_dbm, None, None, None, o.channel)
    if isinstance(o, BleObs):
        return (o.t, "ble", o.beacon_id, o.rssi_dbm, None, None, None, None)
    if isinstance(o, GnssFix):
        return (o.t, "gnss", "", o.x_m, o.y_m, o.sigma_m, o.hdop, o.fix_quality)
    return (o.t, "gnss_nofix", "", None, None, None, None, None)
