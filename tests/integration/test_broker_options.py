"""The shared broker options end to end on a secure Mosquitto (password file, TLS, ACL): the
dashboard command takes --username/--password-file/--mqtt-version like run, and gets what
`run --simulate` publishes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.dashboard import wait_until
from support.fixtures import SECURE_USERS, mosquitto_secure  # noqa: F401
from support.mosquitto import Broker, free_port

from edge_agent.buffer.outbox import Outbox
from edge_agent.cli import main

pytestmark = pytest.mark.mosquitto


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    assert isinstance(doc, dict)
    return doc


def _up(url: str) -> bool:
    try:
        _get(url)
        return True
    except (urllib.error.URLError, ConnectionError):
        return False


def _windows(base: str) -> int:
    totals = _get(base + "/utilisation?site=plant-a")["totals"]
    assert isinstance(totals, dict)
    return int(totals["windows"])


@pytest.mark.parametrize("mqtt_version", ["3", "5"])
def test_dashboard_with_password_file_gets_what_run_publishes(
        mosquitto_secure: Broker, tmp_path: Path, mqtt_version: str) -> None:  # noqa: F811
    broker = mosquitto_secure
    dash_pw, agent_pw = tmp_path / "dash.pw", tmp_path / "agent.pw"
    dash_pw.write_text(SECURE_USERS["dashboard"] + "\n")
    agent_pw.write_text(SECURE_USERS["fl-01"] + "\n")
    port = free_port()
    tls_url = broker.url(tls=True)  # no user, no password in the URL
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "dashboard", "--broker", tls_url,
         "--username", "dashboard", "--password-file", str(dash_pw),
         "--tls-ca", str(broker.ca_path), "--mqtt-version", mqtt_version,
         "--db", str(tmp_path / "d.db"), "--http", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}/api"
        wait_until(lambda: _up(base + "/sites"), "the dashboard's HTTP port")
        rc = main(["run", "--simulate", "indoor_shift", "--seed", "4", "--duration", "200",
                   "--speed", "1000", "--agent", "fl-01", "--db", str(tmp_path / "o.db"),
                   "--broker", tls_url, "--username", "fl-01", "--password-file",
                   str(agent_pw), "--tls-ca", str(broker.ca_path), "--mqtt-version",
                   mqtt_version, "--drain-timeout", "20"])
        assert rc == 0
        with Outbox(tmp_path / "o.db") as box:
            sent = box.counts()["heatmap"]["acked"]
        assert sent >= 4  # 200 simulated seconds: at least three full windows and a part
        # The dashboard subscribed before its HTTP port opened (it waits up to 5 s), and its
        # session is persistent: every window arrives.
        deadline = time.monotonic() + 30.0  # bounds the wait only
        while _windows(base) < sent and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _windows(base) == sent
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "subscribed to mqtts://dashboard:***@127.0.0.1" in err
    assert SECURE_USERS["dashboard"] not in out + err
