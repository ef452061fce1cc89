"""MQTT 5 ingest for the dashboard: a shared subscription to every agent's heatmap windows.

Several dashboard instances in one share group split the windows between them (and write one
shared --db). A message is acknowledged only after its batch is committed to the store, so a
crash loses nothing; the broker's redelivery and the agents' resends are absorbed by window id.
Status and site plans are retained topics every instance needs in full, whatever a broker does
with retained messages on shared subscriptions, so each instance subscribes to those directly
(they are few and idempotent).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import queue
import socket
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent.dashboard.store import DashboardStore
from edge_agent.errors import BrokerError, EdgeAgentError
from edge_agent.heatmap.codec import decode_window
from edge_agent.heatmap.window import Window
from edge_agent.publish.client import configure_client, resolve_url
from edge_agent.publish.mqtt import MQTT_311_NAMES
from edge_agent.site import site_from_dict

log = logging.getLogger(__name__)

HEATMAP_TOPIC = "plants/+/agents/+/heatmap"
STATUS_TOPIC = "plants/+/agents/+/status"
SITE_TOPIC = "plants/+/site"
DEFAULT_GROUP = "dashboard"
# Windows committed per SQLite transaction at most: big enough that commits are not the bottleneck
# at >= 5000 windows/s, small enough that a batch's acknowledgements are not held back long.
BATCH_MAX = 500
# MQTT 5 Receive Maximum: unacknowledged windows the broker may have in flight to us. We ack after
# each batch's commit, so this must cover several batches: the next ones arrive while one is
# being stored (with a whole batch only, the broker would wait on every commit).
RECEIVE_MAXIMUM = 10 * BATCH_MAX
# The broker keeps our session (and queues windows for it) this long while we are down: a day
# covers a night's outage of the central server; agents' outboxes cover longer ones.
SESSION_EXPIRY_S = 86_400
KEEPALIVE_S = 30
# Pause before retrying a batch the database refused (full disk, long lock).
DB_RETRY_S = 1.0
# Bound on waiting for the store process to finish its last batch when stopping.
WORKER_STOP_S = 30.0
# A status payload longer than this is not a status word; it is stored cut short.
STATUS_MAX_CHARS = 32


@dataclass
class IngestStats:
    """Counters since start: messages received, windows stored, duplicates ignored, rejects."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    statuses: int = 0
    site_plans: int = 0

    def add(self, other: IngestStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        return (f"{self.received} messages: {self.stored} windows stored, {self.duplicates} "
                f"duplicates ignored, {self.rejected} rejected, {self.statuses} status updates, "
                f"{self.site_plans} site plans")


class DashboardIngest:
    """Subscribe to the agents' topics on one broker and write what arrives into the store."""

    def __init__(self, store: DashboardStore, broker_url: str, *, group: str = DEFAULT_GROUP,
                 client_id: str | None = None, tls_ca: str | Path | None = None,
                 tls_cert: str | Path | None = None, tls_key: str | Path | None = None,
                 username: str | None = None, password: str | None = None,
                 mqtt_version: int = 5, session_expiry_s: int = SESSION_EXPIRY_S,
                 store_process: bool = False) -> None:
        if mqtt_version not in (5, *MQTT_311_NAMES):
            raise BrokerError(f"mqtt_version must be 5, or 3/311 for 3.1.1; got {mqtt_version}")
        self.store = store
        self.url = resolve_url(broker_url, username, password)
        self.group = group
        self.mqtt_version = 5 if mqtt_version == 5 else 3
        self.stats = IngestStats()
        self.connected = threading.Event()
        self.last_error: str | None = None
        self._queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._leaving = False  # we asked to disconnect: not worth a warning
        self._writer: threading.Thread | None = None
        self._session_expiry_s = session_expiry_s
        self._store_process = store_process
        self._worker: StoreWorker | None = None
        if client_id is None:
            # Stable per host, group and database: the broker keeps this session's queue.
            digest = hashlib.sha1(str(store.path.resolve()).encode()).hexdigest()[:8]
            client_id = f"edge-dashboard-{group}-{socket.gethostname()}-{digest}"
        if self.mqtt_version == 5:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv5, manual_ack=True)
        else:
            # 3.1.1 has no session expiry: a persistent session unless asked for none.
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv311, manual_ack=True,
                            clean_session=session_expiry_s == 0)
        configure_client(c, self.url, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying while the broker is away) and start writing."""
        if self._store_process:
            self._worker = StoreWorker(self.store.path)
        self._writer = threading.Thread(target=self._write_loop, name="dashboard-ingest",
                                        daemon=True)
        self._writer.start()
        try:
            if self.mqtt_version == 5:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self._session_expiry_s
                props.ReceiveMaximum = RECEIVE_MAXIMUM
                self.client.connect_async(self.url.host, self.url.port, keepalive=KEEPALIVE_S,
                                          clean_start=self._session_expiry_s == 0,
                                          properties=props)
            else:
                self.client.connect_async(self.url.host, self.url.port, keepalive=KEEPALIVE_S)
        except (OSError, ValueError) as e:
            raise BrokerError(f"cannot connect to {self.url}: {e}") from None
        self.client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected and subscribed (SUBACK received); False on timeout."""
        return self.connected.wait(timeout_s)

    def stop(self) -> str:
        """Disconnect, then store what was received; returns the summary line. Windows of the
        last batch may go unacknowledged: the broker redelivers them, the store absorbs them."""
        self._leaving = True
        self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        if self._worker is not None:
            self._worker.close()
        self.store.close()
        return self.stats.summary()

    # --- paho callbacks (network thread) --------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                    props: Properties | None) -> None:
        if rc.is_failure:
            self.last_error = f"broker {self.url} refused the connection: {rc}"
            log.error("%s", self.last_error)
            return
        topics = (f"$share/{self.group}/{HEATMAP_TOPIC}", STATUS_TOPIC, SITE_TOPIC)
        if self.mqtt_version == 5:
            opts = SubscribeOptions(qos=1)
            client.subscribe([(t, opts) for t in topics])
        else:
            client.subscribe([(t, 1) for t in topics])
        log.info("connected to %s (group %s)", self.url, self.group)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      codes: list[ReasonCode], props: Properties | None) -> None:
        refused = [str(c) for c in codes if c.is_failure]
        if refused:
            # E.g. "Not authorized": the dashboard user lacks read access to plants/#.
            self.last_error = f"broker {self.url} refused the subscriptions: {', '.join(refused)}"
            log.error("%s", self.last_error)
            return
        self.last_error = None
        self.connected.set()  # subscribed: from now on nothing published is missed

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                       props: Properties | None) -> None:
        self.connected.clear()
        if rc.is_failure and not self._leaving:
            log.warning("disconnected from %s: %s; reconnecting", self.url, rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(msg)

    # --- writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            while True:
                try:
                    self.handle_batch(batch)
                    break
                except sqlite3.Error as e:
                    log.error("cannot write to %s: %s; retrying in %.0f s (messages stay "
                              "unacknowledged)", self.store.path, e, DB_RETRY_S)
                    if self._stop.is_set():
                        return  # unacknowledged: the broker redelivers them to the session
                    time.sleep(DB_RETRY_S)

    def handle_batch(self, batch: list[mqtt.MQTTMessage]) -> None:
        """Store a batch in one transaction, then acknowledge every message of it.

        A database error (disk full, lock held too long) leaves the batch unacknowledged and
        propagates; the caller retries it, so the broker never drops what we did not store.
        """
        items = [(msg.topic, bytes(msg.payload)) for msg in batch]
        if self._worker is not None:
            done = self._worker.store(items)
        else:
            done = store_messages(self.store, items)
        for msg in batch:
            if msg.qos > 0:
                self.client.ack(msg.mid, msg.qos)
        self.stats.add(done)


def store_messages(store: DashboardStore, items: list[tuple[str, bytes]]) -> IngestStats:
    """Decode and store (topic, payload) messages, windows in one transaction; what it did.

    Malformed messages are counted and logged, not raised; sqlite3.Error propagates.
    """
    windows: list[Window] = []
    texts: list[str] = []
    done = IngestStats()
    for topic, payload in items:
        done.received += 1
        try:
            _handle_one(store, topic, payload, windows, texts, done)
        except (EdgeAgentError, ValueError, KeyError, TypeError) as e:
            done.rejected += 1
            log.warning("rejected message on %s: %s", topic, e)
    if windows:
        res = store.add_windows(windows, texts)
        done.stored, done.duplicates = res.stored, res.duplicates
    return done


def _handle_one(store: DashboardStore, topic: str, payload: bytes, windows: list[Window],
                texts: list[str], done: IngestStats) -> None:
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "plants" and parts[2] == "agents":
        site, agent, kind = parts[1], parts[3], parts[4]
        if kind == "heatmap":
            w = decode_window(payload)
            if (w.site, w.agent) != (site, agent):
                raise ValueError(f"window {w.id!r} says {w.site}/{w.agent}, topic says "
                                 f"{site}/{agent}")
            # decode_window accepted it: plain JSON, or deflated JSON of a bounded size.
            raw = payload if payload[:1] == b"{" else zlib.decompress(payload)
            texts.append(raw.decode("utf-8"))
            windows.append(w)
            return
        if kind == "status":
            if payload:
                status, t_s = parse_status(payload)
                store.set_status(site, agent, status, t_s)
                done.statuses += 1
            return
    if len(parts) == 3 and parts[0] == "plants" and parts[2] == "site":
        if not payload:
            return
        plan = json.loads(payload)
        site_obj = site_from_dict(plan, topic)  # validate before keeping
        if site_obj.site != parts[1]:
            raise ValueError(f"site plan {site_obj.site!r} on topic of site {parts[1]!r}")
        store.set_site_plan(site_obj.to_dict(), f"mqtt:{topic}")
        done.site_plans += 1
        return
    raise ValueError("unexpected topic")


class StoreWorker:
    """store_messages in a child process: decoding and SQLite off this process's GIL, so the
    MQTT thread and the store run on two cores. The parent still acknowledges, after the
    child's commit."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._ctx = multiprocessing.get_context("spawn")  # safe with paho's threads running
        self._proc: Any = None
        self._conn: Any = None
        self._start()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_store_worker_main, args=(str(self.db_path), child),
                                       name="dashboard-store", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def store(self, items: list[tuple[str, bytes]]) -> IngestStats:
        """Have the child store a batch; sqlite3.Error if it could not (the caller retries)."""
        try:
            self._conn.send(items)
            reply = self._conn.recv()
        except (EOFError, OSError) as e:  # the child died: start a new one, retry the batch
            self.close()
            self._start()
            raise sqlite3.OperationalError(f"store process ended: {e!r}") from None
        if isinstance(reply, str):
            raise sqlite3.OperationalError(reply)
        return IngestStats(*reply)

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError):  # already gone: nothing to tell it
            self._conn.send(None)
        self._proc.join(WORKER_STOP_S)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(WORKER_STOP_S)
        self._conn.close()


def _store_worker_main(db_path: str, conn: Any) -> None:
    """The child's loop: batches in, IngestStats fields (or a database error text) out."""
    store = DashboardStore(db_path)
    while True:
        try:
            items = conn.recv()
        except EOFError:
            return
        if items is None:
            return
        try:
            done = store_messages(store, items)
        except sqlite3.Error as e:
            conn.send(f"{type(e).__name__}: {e}")
            continue
        conn.send(tuple(getattr(done, f.name) for f in fields(done)))


def parse_status(payload: bytes) -> tuple[str, float | None]:
    """An agent status payload: JSON {"status"|"state": ..., "t": ...} or a bare word."""
    text = payload.decode("utf-8", errors="replace").strip()
    t_s: float | None = None
    status = text
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        status = str(doc.get("status", doc.get("state", "unknown")))
        t = doc.get("t", doc.get("t_s"))
        if isinstance(t, int | float) and not isinstance(t, bool):
            t_s = float(t)
    elif isinstance(doc, str):
        status = doc
    return status.lower()[:STATUS_MAX_CHARS] or "unknown", t_s
