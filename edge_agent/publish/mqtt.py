"""A thin paho-mqtt 2 client (CallbackAPIVersion.VERSION2) that turns its callbacks into events.

paho runs its network loop in its own thread; callbacks only enqueue events, and the forwarder
handles them on its own thread, so the SQLite outbox is only touched from one thread. paho's own
queue is RAM: the forwarder keeps at most `max_inflight` messages in it.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.errors import BrokerError
from edge_agent.publish.broker_url import BrokerUrl
from edge_agent.publish.client import RECONNECT_MAX_S, configure_client

log = logging.getLogger(__name__)

# MQTT 5 reason codes the agent acts on (OASIS MQTT 5.0, 2.4). Below 0x80 is success; 16 = "no
# matching subscribers" is a success too (the broker took the message).
RC_SUCCESS_LIMIT = 0x80
RC_UNSUPPORTED_PROTOCOL = 132
RC_BAD_USER_OR_PASSWORD = 134
RC_NOT_AUTHORIZED = 135
RC_QUOTA_EXCEEDED = 151  # the broker is busy: try the message again later
AUTH_FAILURES = (RC_BAD_USER_OR_PASSWORD, RC_NOT_AUTHORIZED)
# MQTT 3.1.1 as the CLI (3), the config file (311) and the protocol level byte (4) name it.
MQTT_311_NAMES = (3, 311, 4)
# A persistent session: the broker keeps it (and our in-flight QoS 1 state) for a day offline.
SESSION_EXPIRY_S = 24 * 3600
DEFAULT_KEEPALIVE_S = 30


@dataclass(frozen=True)
class LinkEvent:
    """What the network thread saw: "connected", "refused", "connect_failed", "disconnected",
    "puback" (with mid and reason code)."""

    kind: str
    reason: int = 0
    text: str = ""
    mid: int = 0


class MqttLink:
    """One MQTT connection with a Last Will, TLS, credentials and a persistent session."""

    def __init__(self, url: BrokerUrl, client_id: str, *, will_topic: str, will_payload: bytes,
                 tls_ca: str | None = None, tls_cert: str | None = None,
                 tls_key: str | None = None, mqtt_version: int = 5,
                 keepalive_s: int = DEFAULT_KEEPALIVE_S, max_inflight: int = 20,
                 reconnect_max_s: int = RECONNECT_MAX_S) -> None:
        if mqtt_version not in (5, *MQTT_311_NAMES):
            raise BrokerError(f"mqtt_version must be 5, or 3/311 for 3.1.1; got {mqtt_version}")
        mqtt_version = 5 if mqtt_version == 5 else 3
        self.url = url
        self.mqtt_version = mqtt_version
        self.events: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        self.wakeup = threading.Event()
        self._connected = threading.Event()
        self.ever_connected = False
        protocol = paho.MQTTv5 if mqtt_version == 5 else paho.MQTTv311
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": protocol}
        if mqtt_version == 3:
            kwargs["clean_session"] = False  # 3.1.1's persistent session
        c = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        configure_client(c, url, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                         reconnect_max_s=reconnect_max_s)
        c.will_set(will_topic, will_payload, qos=1, retain=True)
        c.max_inflight_messages_set(max_inflight)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c
        self.keepalive_s = keepalive_s
        self._started = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; paho retries on its own until stop()."""
        props = None
        if self.mqtt_version == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            if self.mqtt_version == 5:
                self.client.connect_async(self.url.host, self.url.port, self.keepalive_s,
                                          clean_start=False, properties=props)
            else:
                self.client.connect_async(self.url.host, self.url.port, self.keepalive_s)
        except (OSError, ValueError) as e:
            raise BrokerError(f"cannot connect to {self.url}: {e}") from None
        self.client.loop_start()
        self._started = True

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
                ) -> int | None:
        """Hand one message to paho; returns its mid, or None if paho refused to take it.

        While disconnected paho still queues a QoS 1 message and sends it on reconnect, so the
        mid stays valid either way; the PUBACK event settles it.
        """
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("paho refused a publish to %s: %s", topic, paho.error_string(info.rc))
            return None
        return int(info.mid)

    def drain(self) -> list[LinkEvent]:
        """Every event since the last call, in order."""
        out: list[LinkEvent] = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout_s: float) -> None:
        """Sleep until the next event or `timeout_s`."""
        self.wakeup.wait(timeout_s)
        self.wakeup.clear()

    def stop(self) -> None:
        """Disconnect cleanly (no Last Will) and stop the network thread."""
        if not self._started:
            return
        self._started = False
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    # --- callbacks (paho's thread) ---------------------------------------------------------------

    def _put(self, ev: LinkEvent) -> None:
        self.events.put(ev)
        self.wakeup.set()

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, rc: ReasonCode,
                    props: Properties | None) -> None:
        if rc.is_failure:
            self._put(LinkEvent("refused", int(rc.value), str(rc)))
            return
        self.ever_connected = True
        self._connected.set()
        self._put(LinkEvent("connected", int(rc.value), str(rc)))

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self._put(LinkEvent("connect_failed"))

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object,
                       rc: ReasonCode, props: Properties | None) -> None:
        self._connected.clear()
        self._put(LinkEvent("disconnected", int(rc.value), str(rc)))

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, rc: ReasonCode,
                    props: Properties | None) -> None:
        self._put(LinkEvent("puback", int(rc.value), str(rc), mid=mid))


def refusal_error(url: BrokerUrl, reason: int, text: str, mqtt_version: int) -> BrokerError:
    """The one-line error for a CONNACK that refused us."""
    who = f"user {url.user!r}" if url.user else "anonymous clients"
    if reason in AUTH_FAILURES:
        return BrokerError(f"broker {url} refused the credentials of {who} "
                           f"(reason {reason}: {text}); check the user name and password")
    if reason == RC_UNSUPPORTED_PROTOCOL and mqtt_version == 5:
        return BrokerError(f"broker {url} does not speak MQTT 5 (reason {reason}); use "
                           "--mqtt-version 3 for MQTT 3.1.1")
    return BrokerError(f"broker {url} refused the connection (reason {reason}: {text})")


def tls_diagnosis(url: BrokerUrl, tls_ca: str | None, timeout_s: float = 3.0) -> str | None:
    """Why a TLS connection to the broker fails (certificate, host name), or None if it works."""
    import socket

    ctx = ssl.create_default_context(cafile=tls_ca)
    try:
        with socket.create_connection((url.host, url.port), timeout=timeout_s) as sock, \
                ctx.wrap_socket(sock, server_hostname=url.host):
            return None
    except ssl.SSLError as e:
        return f"TLS handshake with {url} failed: {getattr(e, 'verify_message', None) or e}"
    except OSError as e:
        return f"cannot reach {url}: {e.strerror or e}"
