"""The shared Mosquitto helper itself: plain and TLS listeners, passwords, ACL, restart."""

from __future__ import annotations

import ssl
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from support.fixtures import SECURE_USERS
from support.mosquitto import Broker

pytestmark = pytest.mark.mosquitto
WAIT_S = 20.0  # bounds a wait, asserts nothing
NOT_AUTHORIZED = 135
BAD_USER_OR_PASSWORD = 134


class Probe:
    """A tiny MQTT 5 client that records CONNACK and PUBACK reason codes."""

    def __init__(self, broker: Broker, user: str | None = None, password: str | None = None,
                 tls: bool = False) -> None:
        self.connack = threading.Event()
        self.connect_rc: int | None = None
        self.pubacks: dict[int, int] = {}
        self.acked = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user is not None:
            c.username_pw_set(user, password)
        if tls:
            assert broker.ca_path is not None
            c.tls_set(ca_certs=str(broker.ca_path), cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = self._on_connect
        c.on_publish = self._on_publish
        self.client = c
        port = broker.tls_port if tls else broker.port
        assert port is not None
        c.connect(broker.host, port)
        c.loop_start()
        assert self.connack.wait(WAIT_S)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    rc: ReasonCode, props: Properties | None) -> None:
        self.connect_rc = rc.value
        self.connack.set()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode,
                    props: Properties | None) -> None:
        with self.acked:
            self.pubacks[mid] = rc.value
            self.acked.notify_all()

    def publish(self, topic: str) -> int:
        info = self.client.publish(topic, b"x", qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.pubacks, WAIT_S)
            return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_plain_broker_accepts_anonymous_publish(mosquitto: Broker) -> None:
    probe = Probe(mosquitto)
    try:
        assert probe.connect_rc == 0
        assert probe.publish("plants/p/agents/a/heatmap") < 0x80  # 16 = no subscribers: a success
    finally:
        probe.close()
    assert mosquitto.url() == f"mqtt://127.0.0.1:{mosquitto.port}"


def test_secure_broker_tls_acl_and_password(mosquitto_secure: Broker) -> None:
    probe = Probe(mosquitto_secure, "fl-01", SECURE_USERS["fl-01"], tls=True)
    try:
        assert probe.connect_rc == 0
        assert probe.publish("plants/p/agents/fl-01/heatmap") < 0x80
        assert probe.publish("plants/p/agents/fl-02/heatmap") == NOT_AUTHORIZED
    finally:
        probe.close()
    wrong = Probe(mosquitto_secure, "fl-01", "wrong-password")
    wrong.client.loop_stop()
    # Mosquitto 2.0.11 answers a wrong password with 135 (not authorised), others with 134.
    assert wrong.connect_rc in (BAD_USER_OR_PASSWORD, NOT_AUTHORIZED)


def test_restart_keeps_the_same_port(mosquitto: Broker) -> None:
    port = mosquitto.port
    mosquitto.stop()
    assert not mosquitto.running
    mosquitto.start()
    assert mosquitto.running and mosquitto.port == port
    probe = Probe(mosquitto)
    try:
        assert probe.publish("t") < 0x80
    finally:
        probe.close()
