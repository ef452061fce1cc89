"""OutboxForwarder: stores every window in the SQLite outbox first, then publishes it at QoS 1.

A message leaves the outbox only on a PUBACK with a success reason; a refusal (135 not authorised,
any other code >= 0x80 but "quota exceeded") sets it aside as "rejected", counted, never retried
on its own. At most `max_inflight` messages are in paho's RAM queue; everything else waits in the
database and goes out oldest first (windows before health before positions) after a reconnect.
Implements the WindowSink protocol (put / close) the pipeline and `replay` use.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.buffer.outbox import DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES, PENDING, Outbox
from edge_agent.clock import Clock, system_clock
from edge_agent.errors import BrokerError
from edge_agent.estimate import Estimate
from edge_agent.observations import Observation
from edge_agent.publish.broker_url import BrokerUrl
from edge_agent.publish.client import RECONNECT_MAX_S, resolve_url
from edge_agent.publish.mqtt import (
    RC_QUOTA_EXCEEDED,
    RC_SUCCESS_LIMIT,
    MqttLink,
    refusal_error,
    tls_diagnosis,
)
from edge_agent.publish.options import check_topic_level

if TYPE_CHECKING:
    from edge_agent.heatmap.window import Window

log = logging.getLogger(__name__)

# paho's default in-flight window is 20; keeping ours the same keeps paho's RAM queue at <= 20
# messages (~20 windows of a few kB) whatever the backlog in the database.
DEFAULT_MAX_INFLIGHT = 20
# With the broker never reached, close() gives up after this long (replay must still complete).
UNREACHABLE_GIVE_UP_S = 3.0
# After close() has drained, wait this long for the retained "offline" status to be acknowledged.
STATUS_ACK_WAIT_S = 1.0
# Raw rows are committed in batches of this many (one transaction each, see outbox.py).
RAW_BATCH_ROWS = 2000
# Published positions (only when enabled) go out as one message per this many data seconds.
POSITIONS_BATCH_S = 10.0
# The pump thread wakes on every broker event, and at least this often.
PUMP_IDLE_S = 0.2
HEALTH_VERSION = 1
STATUS_VERSION = 1


def topic(site: str, agent: str, kind: str) -> str:
    """plants/{site}/agents/{agent}/{heatmap,status,health,positions}."""
    return f"plants/{site}/agents/{agent}/{kind}"


class OutboxForwarder:
    """The outbox plus an MQTT link: put() stores (and sends when connected); close() drains."""

    def __init__(self, db_path: str | Path, broker_url: str | None, site: str, agent: str, *,
                 tls_ca: str | Path | None = None, tls_cert: str | Path | None = None,
                 tls_key: str | Path | None = None, mqtt_version: int = 5,
                 username: str | None = None, password: str | None = None,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_age_s: float = DEFAULT_MAX_AGE_S, publish_positions: bool = False,
                 record_raw: bool = False, record_positions: bool = False,
                 keepalive_s: int = 30, reconnect_max_s: int = RECONNECT_MAX_S,
                 close_timeout_s: float = 10.0, clock: Clock = system_clock) -> None:
        # Both become topic levels and window ids: 'a/#' would publish into other topics.
        check_topic_level(agent, "--agent")
        check_topic_level(site, "site", "site.json or --site")
        self.site, self.agent = site, agent
        self.clock = clock
        self.close_timeout_s = close_timeout_s
        self.max_inflight = max(1, int(max_inflight))
        self.publish_positions = publish_positions
        self.record_raw, self.record_positions = record_raw, record_positions
        self.url: BrokerUrl | None = None
        self.tls_ca: str | None = None
        self.mqtt_version = 5 if mqtt_version == 5 else 3
        self.link: MqttLink | None = None
        self.error: BrokerError | None = None
        self.inflight: dict[int, str] = {}  # paho mid -> outbox id
        self._sent: list[str] = []
        self._status_mids: set[int] = set()
        self._more = True  # the outbox may hold something sendable
        self._raw: list[Observation] = []
        self._positions: list[Estimate] = []
        self._pos_batch: list[Estimate] = []
        self.connect_failures = 0
        self.run_acked = 0
        self.run_rejected = 0
        self.run_put = 0
        self.closed = False
        # What put_health() adds when not given an `extra` (e.g. run's tracker health), so the
        # last record close() stores carries it too.
        self.health_extra: Callable[[], dict[str, Any]] | None = None
        # One lock around every outbox use: the caller's thread (put, close) and the pump thread.
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self.outbox = Outbox(db_path, max_bytes=max_bytes, max_age_s=max_age_s,
                             check_same_thread=False)
        self.outbox.set_meta("max_bytes", str(int(max_bytes)))  # for `status`
        for key, value in (("site", site), ("agent", agent)):
            old = self.outbox.meta(key)
            if old is None:
                self.outbox.set_meta(key, value)
            elif old != value:
                log.warning("outbox %s was written for %s %r, now used for %r", db_path, key,
                            old, value)
        if broker_url:
            try:
                url = resolve_url(broker_url, username, password)
                self.url = url
                self.tls_ca = str(tls_ca) if tls_ca else None
                self.link = MqttLink(
                    url, f"edge-agent-{site}-{agent}", will_topic=topic(site, agent, "status"),
                    will_payload=self._status_payload("offline", with_time=False),
                    tls_ca=self.tls_ca, tls_cert=str(tls_cert) if tls_cert else None,
                    tls_key=str(tls_key) if tls_key else None, mqtt_version=mqtt_version,
                    keepalive_s=keepalive_s, max_inflight=self.max_inflight,
                    reconnect_max_s=reconnect_max_s)
            except BrokerError:
                self.outbox.close()
                raise
            self.link.start()
            self._thread = threading.Thread(target=self._pump_loop, name="outbox-pump",
                                            daemon=True)
            self._thread.start()

    # --- WindowSink ------------------------------------------------------------------------------

    def put(self, window: Window) -> None:
        """Store one heatmap window (durably), then send what the in-flight window allows."""
        from edge_agent.heatmap.codec import encode_window

        self.put_payload(window.id, float(window.end), encode_window(window))

    def put_payload(self, item_id: str, t_s: float, payload: bytes, kind: str = "heatmap") -> None:
        """Store an already-encoded message under a stable id (a second put is ignored)."""
        self._check_thread()
        with self._lock:
            if self.outbox.put(item_id, kind, t_s, payload) and kind == "heatmap":
                self.run_put += 1
            self._more = True
            self.pump()

    def add_observations(self, observations: Iterable[Observation]) -> None:
        """Raw observations to keep on the device (when record_raw), committed in batches."""
        if not self.record_raw:
            return
        self._raw.extend(observations)
        if len(self._raw) >= RAW_BATCH_ROWS:
            with self._lock:
                self._flush_raw()

    def add_positions(self, estimates: Iterable[Estimate]) -> None:
        """Positions: kept on the device (record_positions), published only if publish_positions."""
        for e in estimates:
            if self.record_positions:
                self._positions.append(e)
            if self.publish_positions:
                if self._pos_batch and e.t - self._pos_batch[0].t >= POSITIONS_BATCH_S:
                    self._put_positions_batch()
                self._pos_batch.append(e)
        if len(self._positions) >= RAW_BATCH_ROWS:
            with self._lock:
                self._flush_raw()

    # --- the loop --------------------------------------------------------------------------------

    def pump(self, *, send: bool = True) -> None:
        """Handle broker events, settle acknowledgements, and send more (never blocks).

        A background thread calls it on every broker event; callers may call it too.
        """
        link = self.link
        if link is None or self.closed:
            return
        with self._lock:
            self._pump(link, send)

    def _pump_loop(self) -> None:
        link = self.link
        assert link is not None
        try:
            while not self._stopping.is_set():
                link.wait(PUMP_IDLE_S)
                if not self._stopping.is_set():
                    self.pump()
        except BaseException as e:  # surfaced by the next put() or close()
            log.exception("outbox pump thread failed")
            self._thread_error = e

    def _check_thread(self) -> None:
        if self._thread_error is not None:
            raise RuntimeError("the outbox pump thread failed") from self._thread_error

    def _pump(self, link: MqttLink, send: bool) -> None:
        acked: list[str] = []
        rejected: list[tuple[str, int]] = []
        for ev in link.drain():
            if ev.kind == "puback":
                self._status_mids.discard(ev.mid)
                item = self.inflight.pop(ev.mid, None)
                if item is None:
                    continue
                if ev.reason < RC_SUCCESS_LIMIT:
                    acked.append(item)
                elif ev.reason == RC_QUOTA_EXCEEDED:
                    self._more = True  # stays pending: sent again later
                else:
                    log.warning("broker refused %s with reason %d (%s): set aside", item,
                                ev.reason, ev.text)
                    rejected.append((item, ev.reason))
                self._more = True
            elif ev.kind == "connected":
                log.info("connected to %s", self.url)
                self._more = True
                mid = link.publish(topic(self.site, self.agent, "status"),
                                   self._status_payload("online"), retain=True)
                if mid is not None:
                    self._status_mids.add(mid)
            elif ev.kind == "refused":
                assert self.url is not None
                self.error = refusal_error(self.url, ev.reason, ev.text, self.mqtt_version)
                # Raised by close(); `run` logs it at once and keeps storing.
                log.debug("%s", self.error)
            elif ev.kind == "connect_failed":
                self.connect_failures += 1
            elif ev.kind == "disconnected":
                log.info("disconnected from %s: %s", self.url, ev.text)
        if acked or rejected or self._sent:
            self.outbox.settle(sent=self._sent, acked=acked, rejected=rejected,
                               acked_at_s=self.clock() if acked else None)
            self._sent = []
            self.run_acked += len(acked)
            self.run_rejected += len(rejected)
        if self.error is not None:
            link.stop()
            return
        if send and link.connected and self._more:
            room = self.max_inflight - len(self.inflight)
            if room <= 0:
                return
            items = self.outbox.pending(room, exclude=set(self.inflight.values()))
            if len(items) < room:
                self._more = False
            for it in items:
                mid = link.publish(topic(self.site, self.agent, it.kind), it.payload)
                if mid is None:
                    self._more = True
                    break
                self.inflight[mid] = it.id
                self._sent.append(it.id)

    def waiting(self) -> int:
        """Messages in the outbox still to be sent (not counting refused ones)."""
        with self._lock:
            return sum(v[PENDING] for v in self.outbox.counts().values())

    # --- health and status ---------------------------------------------------------------------

    def health(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Drop counters, buffer depth, last publish, CPU: the `health` payload (JSON-able)."""
        with self._lock:
            s = self.outbox.summary()
            last_reject = self.outbox.meta("last_reject_reason")
        counters = s["counters"]
        times = os.times()
        try:
            load_1m: float | None = os.getloadavg()[0]
        except OSError:
            load_1m = None
        h: dict[str, Any] = {
            "v": HEALTH_VERSION, "site": self.site, "agent": self.agent, "t": self.clock(),
            "buffer": {"pending": s["pending"], "rejected": s["rejected"],
                       "used_bytes": s["used_bytes"], "max_bytes": s["max_bytes"],
                       "raw_rows": s["raw"]},
            "drops": {k: v for k, v in counters.items() if k.startswith("dropped_")},
            "rejected_total": sum(v for k, v in counters.items() if k.startswith("rejected_")),
            "last_reject_reason": last_reject,
            "last_publish_t": s["last_publish_t"],
            "connected": bool(self.link and self.link.connected),
            "cpu": {"process_s": round(times.user + times.system, 3), "load_1m": load_1m},
        }
        if extra:
            h["extra"] = extra
        return h

    def put_health(self, extra: dict[str, Any] | None = None) -> None:
        """Store a health record in the outbox (published at QoS 1 like a window)."""
        if extra is None and self.health_extra is not None:
            extra = self.health_extra()
        h = self.health(extra)
        item_id = f"{self.agent}-health-{int(h['t'] * 1000)}"
        self.put_payload(item_id, float(h["t"]), json.dumps(h, sort_keys=True).encode(),
                         kind="health")

    def _status_payload(self, state: str, *, with_time: bool = True) -> bytes:
        d: dict[str, Any] = {"v": STATUS_VERSION, "state": state, "site": self.site,
                             "agent": self.agent}
        if with_time:
            d["t"] = self.clock()
        return json.dumps(d, sort_keys=True).encode()

    # --- closing ---------------------------------------------------------------------------------

    def close(self, timeout_s: float | None = None, *, health: bool = True) -> str:
        """Send what the broker takes within `timeout_s` (default close_timeout_s); the rest
        waits in the database.

        Returns a one-line summary. Raises BrokerError when the broker refused the credentials
        (after everything was stored).
        """
        if self.closed:
            return "outbox already closed"
        if timeout_s is None:
            timeout_s = self.close_timeout_s
        self._check_thread()
        with self._lock:
            self._flush_raw()
            if self._pos_batch:
                self._put_positions_batch()
        if health:
            self.put_health()
        link = self.link
        start = time.monotonic()
        diagnosis: str | None = None
        if link is not None:
            while self.error is None:
                self.pump()
                with self._lock:
                    if not self.inflight and (not self._more or self.waiting() == 0):
                        break
                elapsed = time.monotonic() - start
                if elapsed >= timeout_s:
                    break
                if (not link.ever_connected and self.connect_failures > 0
                        and elapsed >= min(timeout_s, UNREACHABLE_GIVE_UP_S)):
                    break
                link.wait(min(0.1, max(0.0, timeout_s - elapsed)))
            if link.connected and self.error is None:
                mid = link.publish(topic(self.site, self.agent, "status"),
                                   self._status_payload("offline"), retain=True)
                if mid is not None:
                    self._status_mids.add(mid)
                    end = time.monotonic() + STATUS_ACK_WAIT_S
                    while mid in self._status_mids and time.monotonic() < end:
                        link.wait(0.05)
                        self.pump()
            if not link.ever_connected and self.error is None and self.url is not None \
                    and self.url.tls:
                diagnosis = tls_diagnosis(self.url, self.tls_ca)
            self._stopping.set()
            link.wakeup.set()
            if self._thread is not None:
                self._thread.join()
            link.stop()
            self.pump(send=False)  # acknowledgements that arrived while stopping
        with self._lock:
            waiting = self.waiting()
            rejected = sum(self.outbox.summary()["rejected"].values())
            drops = sum(v for k, v in self.outbox.counters().items()
                        if k.startswith("dropped_"))
            self.outbox.close()
            self.closed = True
        where = str(self.url) if self.url else "no broker"
        if self.error is not None:
            raise self.error
        if self.url is None:
            return (f"{self.run_put} new windows in outbox, {waiting} waiting (no broker), "
                    f"{drops} dropped")
        line = (f"{self.run_put} new windows in outbox, {self.run_acked} messages acknowledged "
                f"by {where}, {waiting} waiting, {rejected} rejected, {drops} dropped")
        if self.link is not None and not self.link.ever_connected:
            line += f" (broker not reached: {diagnosis or 'connection failed'})"
        return line

    # --- internals -------------------------------------------------------------------------------

    def _flush_raw(self) -> None:
        if self._raw:
            self.outbox.add_observations(self._raw)
            self._raw = []
        if self._positions:
            self.outbox.add_positions(self._positions)
            self._positions = []

    def _put_positions_batch(self) -> None:
        batch, self._pos_batch = self._pos_batch, []
        payload = {"v": 1, "site": self.site, "agent": self.agent,
                   "positions": [[round(e.t, 3), round(e.x_m, 2), round(e.y_m, 2),
                                  round(e.sigma_m, 2), int(e.moving)] for e in batch if e.valid]}
        if payload["positions"]:
            self.put_payload(f"{self.agent}-pos-{int(batch[0].t * 1000)}", batch[-1].t,
                             json.dumps(payload).encode(), kind="positions")
