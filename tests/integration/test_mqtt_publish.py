"""Publishing details against a real Mosquitto: ACL refusals (135), wrong password, TLS client
certificates, retained status with its Last Will, and positions only when enabled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.collector import MessageCollector
from support.fixtures import AGENT_ACL, SECURE_USERS
from support.mosquitto import Broker, start_mosquitto

from edge_agent.buffer.outbox import Outbox
from edge_agent.commands.status import status
from edge_agent.errors import BrokerError
from edge_agent.estimate import Estimate
from edge_agent.publish.forward import OutboxForwarder

pytestmark = [pytest.mark.mosquitto, pytest.mark.broker(secure=True)]
SITE = "plant-a"
T0 = 1_700_000_000.0
NOT_AUTHORIZED = 135


def dashboard(broker: Broker, topic: str = f"plants/{SITE}/#") -> MessageCollector:
    return MessageCollector(broker, topic, user="dashboard", password=SECURE_USERS["dashboard"],
                            tls=True)


def put_windows(fwd: OutboxForwarder, agent: str, n: int) -> None:
    for k in range(n):
        wid = f"{agent}-{k}"
        fwd.put_payload(wid, T0 + 60 * k, json.dumps({"id": wid}).encode())


def test_publishing_to_another_agents_topic_is_refused_and_visible(broker: Broker,
                                                                    tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    # fl-01's credentials, but fl-02's topics: the ACL refuses every message with 135.
    fwd = OutboxForwarder(db, broker.url("fl-01", SECURE_USERS["fl-01"], tls=True), SITE,
                          "fl-02", tls_ca=broker.ca_path)
    put_windows(fwd, "fl-02", 5)
    summary = fwd.close(timeout_s=20, health=False)
    assert "5 rejected" in summary and "0 waiting" in summary
    s = status(db)
    assert s["rejected"]["heatmap"] == 5 and s["pending"]["heatmap"] == 0
    assert s["rejected_reasons"] == {str(NOT_AUTHORIZED): 5}
    # Not retried forever: a second run sends nothing of them ...
    again = OutboxForwarder(db, broker.url("fl-01", SECURE_USERS["fl-01"], tls=True), SITE,
                            "fl-02", tls_ca=broker.ca_path)
    health = again.health()
    assert health["rejected_total"] == 5 and health["last_reject_reason"] == "135"
    assert health["buffer"]["rejected"]["heatmap"] == 5
    assert "0 messages acknowledged" in again.close(timeout_s=20, health=False)


def test_under_mqtt_311_a_refusal_looks_like_success(broker: Broker, tmp_path: Path) -> None:
    """The documented 3.1.1 caveat: Mosquitto acknowledges the denied publish and drops it."""
    db = tmp_path / "outbox.db"
    with dashboard(broker) as dash:
        fwd = OutboxForwarder(db, broker.url("fl-01", SECURE_USERS["fl-01"], tls=True), SITE,
                              "fl-02", tls_ca=broker.ca_path, mqtt_version=3)
        put_windows(fwd, "fl-02", 3)
        fwd.close(timeout_s=20, health=False)
        with Outbox(db) as box:
            assert box.counts()["heatmap"]["acked"] == 3  # "acknowledged" ...
        assert not [m for m in dash.snapshot() if m.topic.endswith("/heatmap")]  # ... not there


def test_wrong_password_is_one_clear_error_and_windows_wait(broker: Broker,
                                                           tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    fwd = OutboxForwarder(db, broker.url("fl-01", "not-the-password", tls=True), SITE, "fl-01",
                          tls_ca=broker.ca_path)
    put_windows(fwd, "fl-01", 3)
    with pytest.raises(BrokerError) as e:
        fwd.close(timeout_s=20)
    text = str(e.value)
    assert "refused the credentials" in text and "'fl-01'" in text
    assert "not-the-password" not in text and "\n" not in text
    with Outbox(db) as box:
        assert box.counts()["heatmap"]["pending"] == 3


def test_flush_cli_wrong_password_exits_2_with_one_line(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    with Outbox(db) as box:
        box.put("w", "heatmap", T0, b"{}")
        box.set_meta("site", SITE)
        box.set_meta("agent", "fl-01")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "flush", "--db", str(db), "--broker",
         broker.url("fl-01", "bad-pw", tls=True), "--tls-ca", str(broker.ca_path)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the credentials" in lines[0]
    assert "bad-pw" not in proc.stderr


def test_tls_with_a_required_client_certificate(tmp_path: Path) -> None:
    b = start_mosquitto(tmp_path, users=SECURE_USERS, acl=AGENT_ACL, tls=True,
                        require_client_cert=True)
    try:
        cert, key = b.client_cert("fl-01")
        db = tmp_path / "outbox.db"
        fwd = OutboxForwarder(db, b.url("fl-01", SECURE_USERS["fl-01"], tls=True), SITE,
                              "fl-01", tls_ca=b.ca_path, tls_cert=cert, tls_key=key)
        put_windows(fwd, "fl-01", 4)
        assert "4 messages acknowledged" in fwd.close(timeout_s=20, health=False)
        without = OutboxForwarder(tmp_path / "o2.db", b.url("fl-01", SECURE_USERS["fl-01"],
                                                            tls=True), SITE, "fl-01",
                                  tls_ca=b.ca_path)
        put_windows(without, "fl-01", 1)
        line = without.close(timeout_s=1, health=False)
        assert "broker not reached" in line, line
    finally:
        b.stop()


def test_retained_status_online_then_offline(broker: Broker, tmp_path: Path) -> None:
    status_topic = f"plants/{SITE}/agents/fl-01/status"
    fwd = OutboxForwarder(tmp_path / "o.db", broker.url("fl-01", SECURE_USERS["fl-01"],
                                                         tls=True), SITE, "fl-01",
                          tls_ca=broker.ca_path)
    put_windows(fwd, "fl-01", 1)
    with dashboard(broker, status_topic) as dash:
        assert dash.wait_for(lambda m: any(json.loads(x.payload)["state"] == "online"
                                           for x in m))
        fwd.close(timeout_s=20)
        assert dash.wait_for(lambda m: json.loads(m[-1].payload)["state"] == "offline")
    with dashboard(broker, status_topic) as late:  # a late subscriber gets the retained state
        assert late.wait_for(lambda m: len(m) == 1)
        msg = late.snapshot()[0]
        assert msg.retain and json.loads(msg.payload)["state"] == "offline"


def test_positions_leave_only_when_enabled(broker: Broker, tmp_path: Path) -> None:
    track = [Estimate(T0 + i, 1.0 * i, 2.0, (1.0, 0.0, 1.0), 1.0, True) for i in range(25)]
    with dashboard(broker) as dash:
        for enabled, agent in ((False, "fl-01"), (True, "fl-02")):
            fwd = OutboxForwarder(tmp_path / f"{agent}.db",
                                  broker.url(agent, SECURE_USERS[agent], tls=True), SITE, agent,
                                  tls_ca=broker.ca_path, publish_positions=enabled)
            fwd.add_positions(track)
            put_windows(fwd, agent, 1)
            fwd.close(timeout_s=20, health=False)
        assert dash.wait_for(lambda m: sum(x.topic.endswith("fl-02/positions") for x in m) == 3)
        topics = {m.topic for m in dash.snapshot()}
    assert f"plants/{SITE}/agents/fl-01/positions" not in topics
    assert f"plants/{SITE}/agents/fl-01/heatmap" in topics


AGENT_SCRIPT = """
import sys, time
from edge_agent.publish.forward import OutboxForwarder
fwd = OutboxForwarder(sys.argv[1], sys.argv[2], "plant-a", "fl-01", tls_ca=sys.argv[3],
                      keepalive_s=1)
fwd.put_payload("w0", 1.0, b"{}")
while fwd.waiting():
    time.sleep(0.05)
print("acked", flush=True)
time.sleep(600)
"""


def test_last_will_says_offline_when_the_agent_dies(broker: Broker, tmp_path: Path) -> None:
    status_topic = f"plants/{SITE}/agents/fl-01/status"
    with dashboard(broker, status_topic) as dash:
        proc = subprocess.Popen(
            [sys.executable, "-c", AGENT_SCRIPT, str(tmp_path / "o.db"),
             broker.url("fl-01", SECURE_USERS["fl-01"], tls=True), str(broker.ca_path)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "acked"
            assert dash.wait_for(lambda m: any(json.loads(x.payload)["state"] == "online"
                                               for x in m))
        finally:
            proc.kill()  # SIGKILL: no clean DISCONNECT, so the broker sends the Last Will
            proc.wait()
        # The socket closed without DISCONNECT: the broker publishes the will (a vanished
        # network would take 1.5 keep-alives).
        assert dash.wait_for(lambda m: json.loads(m[-1].payload)["state"] == "offline")
        will = json.loads(dash.snapshot()[-1].payload)
    assert will == {"v": 1, "state": "offline", "site": SITE, "agent": "fl-01"}  # no "t": a will
