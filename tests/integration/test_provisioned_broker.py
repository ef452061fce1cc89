"""Mosquitto started with `edge-agent provision`'s configuration: TLS, passwords, per-agent ACL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import AgentConfig, AgentSection, MqttSection, Secret, load_config
from edge_agent.provisioning import provision
from edge_agent.site import load_site

MOSQUITTO = "/usr/sbin/mosquitto"
pytestmark = [
    pytest.mark.mosquitto,
    pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="needs /usr/sbin/mosquitto"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]
NOT_AUTHORIZED = 135
# Generous: the 2 CI cores are shared with other tests; these bound waits, they assert nothing.
WAIT_S = 20.0

SITE = {
    "site": "plant-a", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
    "wifi_aps": [{"bssid": "02:9e:34:71:25:60", "ssid": "plant-ops", "channel": 1, "x": 12.5,
                  "y": 11.6, "z": 6.0, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Provisioned:
    out: Path
    port: int
    proc: subprocess.Popen[bytes]

    def config(self, agent: str) -> AgentConfig:
        return load_config(self.out / "agents" / agent / "agent.toml")

    def credentials(self, folder: str, user: str) -> AgentConfig:
        """A dashboard's or site admin's credentials.toml, as a config the Agent client takes."""
        d = self.out / folder / user
        creds = tomllib.loads((d / "credentials.toml").read_text())
        return AgentConfig(agent=AgentSection(user, Path("site.json")),
                           mqtt=MqttSection(url=creds["url"], site=creds["site"], username=user,
                                            password=Secret(creds["password"]),
                                            ca_file=d / creds["ca_file"]))


def start_broker(out: Path, port: int) -> subprocess.Popen[bytes]:
    conf = out / "broker" / "mosquitto.conf"
    if os.geteuid() == 0:
        # As root Mosquitto drops to user "mosquitto", which cannot read the test's private
        # tmp dir; on a real broker the files are chowned to it (docs/install.md).
        conf = out / "broker" / "mosquitto-test.conf"
        conf.write_text((out / "broker" / "mosquitto.conf").read_text() + "user root\n")
    log = (out / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf), "-v"], stdout=log, stderr=log)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("mosquitto exited: " + (out / "mosquitto.log").read_text())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("mosquitto did not listen: " + (out / "mosquitto.log").read_text())


def provision_and_start(tmp_path: Path, *, client_cert: bool) -> Iterator[Provisioned]:
    site_path = tmp_path / "site.json"
    site_path.write_text(json.dumps(SITE))
    site = load_site(site_path)
    out, port = tmp_path / "out", free_port()
    for agent, role in (("fl-01", "agent"), ("fl-02", "agent"), ("plan-admin", "site-admin"),
                        ("dash", "dashboard")):
        provision(site, site_path, agent, out, broker_host="localhost", broker_port=port,
                  tls=True, client_cert=client_cert, listen_address="127.0.0.1", role=role)
    proc = start_broker(out, port)
    try:
        yield Provisioned(out, port, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Provisioned]:
    yield from provision_and_start(tmp_path, client_cert=False)


@pytest.fixture
def broker_client_cert(tmp_path: Path) -> Iterator[Provisioned]:
    yield from provision_and_start(tmp_path, client_cert=True)


class Agent:
    """A paho MQTT 5 client set up from a provisioned agent.toml (what the agent itself does)."""

    def __init__(self, cfg: AgentConfig, port: int, *, password: str | None = None,
                 use_tls: bool = True, use_cert: bool = True) -> None:
        self.cfg = cfg
        self.connected = threading.Event()
        self.connect_rc: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.acked = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{cfg.agent.id}",
                        protocol=mqtt.MQTTv5)
        pw = cfg.mqtt.resolved_password()
        c.username_pw_set(cfg.mqtt_username,
                          password if password is not None else (pw.reveal() if pw else None))
        if use_tls:
            c.tls_set(ca_certs=str(cfg.mqtt.ca_file),
                      certfile=str(cfg.mqtt.cert_file) if use_cert and cfg.mqtt.cert_file
                      else None,
                      keyfile=str(cfg.mqtt.key_file) if use_cert and cfg.mqtt.key_file else None,
                      cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c
        self.port = port

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    rc: ReasonCode, props: object) -> None:
        self.connect_rc = rc
        self.connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        self.connected.set()  # TLS handshake refused: connect_rc stays None

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       rc: ReasonCode, props: object) -> None:
        self.connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode,
                    props: object) -> None:
        with self.acked:
            self.pubacks[mid] = rc
            self.acked.notify_all()

    def connect(self) -> ReasonCode | None:
        try:
            self.client.connect("localhost", self.port, keepalive=30)
        except (OSError, ssl.SSLError):
            return None
        self.client.loop_start()
        self.connected.wait(WAIT_S)
        return self.connect_rc

    def publish(self, topic: str) -> int:
        info = self.client.publish(topic, b'{"v": 1}', qos=1)
        with self.acked:
            self.acked.wait_for(lambda: info.mid in self.pubacks, timeout=WAIT_S)
        return int(self.pubacks[info.mid].value)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_provisioned_agent_publishes_own_topics_over_tls_and_is_refused_elsewhere(
        broker: Provisioned) -> None:
    agent = Agent(broker.config("fl-01"), broker.port)
    rc = agent.connect()
    assert rc is not None and not rc.is_failure, rc
    try:
        assert agent.publish("plants/plant-a/agents/fl-01/heatmap") < 128
        assert agent.publish("plants/plant-a/agents/fl-01/status") < 128
        assert agent.publish("plants/plant-a/agents/fl-02/heatmap") == NOT_AUTHORIZED
        assert agent.publish("plants/plant-b/agents/fl-01/heatmap") == NOT_AUTHORIZED
        assert agent.publish("plants/plant-a/agents") == NOT_AUTHORIZED
    finally:
        agent.close()


def test_wrong_password_is_refused(broker: Provisioned) -> None:
    agent = Agent(broker.config("fl-01"), broker.port, password="not-the-password")
    rc = agent.connect()
    try:
        assert rc is not None and rc.is_failure
    finally:
        agent.close()


def test_another_agents_password_does_not_open_this_username(broker: Provisioned) -> None:
    other = broker.config("fl-02").mqtt.resolved_password()
    assert other is not None
    agent = Agent(broker.config("fl-01"), broker.port, password=other.reveal())
    rc = agent.connect()
    try:
        assert rc is not None and rc.is_failure
    finally:
        agent.close()


def test_plain_tcp_to_the_tls_listener_gets_no_session(broker: Provisioned) -> None:
    agent = Agent(broker.config("fl-01"), broker.port, use_tls=False)
    rc = agent.connect()
    try:
        assert rc is None or rc.is_failure
    finally:
        agent.close()


def test_client_certificate_is_required_when_provisioned_with_one(
        broker_client_cert: Provisioned) -> None:
    cfg = broker_client_cert.config("fl-02")
    with_cert = Agent(cfg, broker_client_cert.port)
    rc = with_cert.connect()
    try:
        assert rc is not None and not rc.is_failure, rc
        assert with_cert.publish("plants/plant-a/agents/fl-02/heatmap") < 128
    finally:
        with_cert.close()
    without = Agent(cfg, broker_client_cert.port, use_cert=False)
    rc = without.connect()
    try:
        assert rc is None or rc.is_failure
    finally:
        without.close()


def _retained_plan(cfg: AgentConfig, port: int) -> mqtt.MQTTMessage | None:
    """What a dashboard user gets on plants/plant-a/site right after subscribing."""
    got: list[mqtt.MQTTMessage] = []
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-dash", protocol=mqtt.MQTTv5)
    pw = cfg.mqtt.resolved_password()
    c.username_pw_set(cfg.mqtt_username, pw.reveal() if pw else None)
    c.tls_set(ca_certs=str(cfg.mqtt.ca_file), cert_reqs=ssl.CERT_REQUIRED)
    c.on_connect = lambda client, *_: client.subscribe("plants/plant-a/site", qos=1)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg)
        done.set()

    c.on_message = on_message
    c.connect("localhost", port, keepalive=30)
    c.loop_start()
    try:
        done.wait(WAIT_S)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0] if got else None


def test_site_admin_publishes_the_retained_plan_that_the_dashboard_reads(
        broker: Provisioned) -> None:
    admin_dir = broker.out / "admins" / "plan-admin"
    site_json = (admin_dir / "site.json").read_bytes()
    if shutil.which("mosquitto_pub") is not None:
        # Exactly what docs/install.md tells the engineer to run.
        env = {**os.environ, "XDG_CONFIG_HOME": "."}
        proc = subprocess.run(["mosquitto_pub", "-f", "site.json"], cwd=admin_dir, env=env,
                              capture_output=True, text=True, timeout=WAIT_S, check=False)
        assert proc.returncode == 0, proc.stderr
    else:  # the same publication through paho
        admin = Agent(broker.credentials("admins", "plan-admin"), broker.port)
        assert admin.connect() is not None
        try:
            info = admin.client.publish("plants/plant-a/site", site_json, qos=1, retain=True)
            info.wait_for_publish(WAIT_S)
        finally:
            admin.close()
    msg = _retained_plan(broker.credentials("dashboards", "dash"), broker.port)
    assert msg is not None and msg.retain
    assert msg.payload == site_json and json.loads(msg.payload)["site"] == "plant-a"


def test_only_the_site_admin_may_write_the_plan(broker: Provisioned) -> None:
    agent = Agent(broker.config("fl-01"), broker.port)
    admin = Agent(broker.credentials("admins", "plan-admin"), broker.port)
    dash = Agent(broker.credentials("dashboards", "dash"), broker.port)
    try:
        for client in (agent, admin, dash):
            rc = client.connect()
            assert rc is not None and not rc.is_failure, rc
        assert admin.publish("plants/plant-a/site") < 128
        assert agent.publish("plants/plant-a/site") == NOT_AUTHORIZED
        assert dash.publish("plants/plant-a/site") == NOT_AUTHORIZED
        assert admin.publish("plants/plant-b/site") == NOT_AUTHORIZED
        assert admin.publish("plants/plant-a/agents/fl-01/heatmap") == NOT_AUTHORIZED
    finally:
        for client in (agent, admin, dash):
            client.close()
