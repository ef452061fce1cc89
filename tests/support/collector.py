"""A subscriber that records every message it receives (topic, payload), for broker-side asserts.

    with MessageCollector(broker, "plants/+/agents/+/heatmap", user="dashboard", password=pw) as c:
        ...
        c.wait_for(lambda msgs: len(msgs) >= 10)

persistent=True keeps a session on the broker (clean_start False), so with a broker started with
persistence=True nothing published while the collector is away is lost to it.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .mosquitto import Broker

WAIT_S = 20.0  # bounds a wait; asserts nothing


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class MessageCollector:
    """MQTT 5 subscriber at QoS 1; `messages` grows from paho's thread (read under `lock`)."""

    def __init__(self, broker: Broker, topic: str, *, user: str | None = None,
                 password: str | None = None, tls: bool = False, persistent: bool = False,
                 client_id: str | None = None) -> None:
        self.topic = topic
        self.messages: list[Received] = []
        self.lock = threading.Condition()
        self.subscribed = threading.Event()
        self.connect_rc: int | None = None
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                        client_id=client_id or f"collector-{uuid.uuid4().hex[:8]}")
        if user is not None:
            c.username_pw_set(user, password)
        if tls:
            assert broker.ca_path is not None
            c.tls_set(ca_certs=str(broker.ca_path), cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 1)
        self.client = c
        props = None
        if persistent:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
        port = broker.tls_port if tls else broker.port
        assert port is not None
        c.connect(broker.host, port, clean_start=not persistent, properties=props)
        c.loop_start()
        if not self.subscribed.wait(WAIT_S):
            raise RuntimeError(f"collector could not subscribe (CONNACK {self.connect_rc})")

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode,
                    props: Properties | None) -> None:
        self.connect_rc = int(rc.value)
        if not rc.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int,
                      rcs: list[ReasonCode], props: Properties | None) -> None:
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object,
                    msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.lock.notify_all()

    def wait_for(self, predicate: Callable[[list[Received]], bool],
                 timeout_s: float = WAIT_S) -> bool:
        """Wait until predicate(messages) holds; returns whether it did (bounded wait)."""
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self.messages), timeout_s)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MessageCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
