"""`edge-agent dashboard` as a process: site file, broker ingest, HTTP API, clean stop on SIGINT."""

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
from support.dashboard import SITE_DOC, Publisher, fleet_windows, wait_until
from support.mosquitto import Broker, free_port

pytestmark = pytest.mark.mosquitto


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _up(url: str) -> bool:
    try:
        _get(url)
        return True
    except (urllib.error.URLError, ConnectionError):
        return False


def test_dashboard_command_ingests_serves_and_stops(mosquitto: Broker, tmp_path: Path) -> None:
    broker = mosquitto
    site_file = tmp_path / "site.json"
    site_file.write_text(json.dumps(SITE_DOC))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "dashboard", "--broker", broker.url(),
         "--db", str(tmp_path / "d.db"), "--http", f"127.0.0.1:{port}",
         "--site-file", str(site_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pub = Publisher(broker.host, broker.port)
    try:
        base = f"http://127.0.0.1:{port}/api"
        wait_until(lambda: _up(base + "/sites"), "the dashboard's HTTP port")
        sites = _get(base + "/sites")
        assert isinstance(sites, dict) and sites["sites"][0]["plan"]["site"] == "plant-t"

        def stored() -> int:
            u = _get(base + "/utilisation?site=plant-t")
            assert isinstance(u, dict)
            return int(u["totals"]["windows"])

        wins = fleet_windows(2, 10)
        # The subscription may lag the HTTP port by a moment: resend until all are in (as an
        # agent's outbox would); duplicates are absorbed.
        deadline = time.monotonic() + 30.0  # bounds the wait only
        while stored() < 20 and time.monotonic() < deadline:
            pub.publish_windows(wins)
            time.sleep(0.3)
        assert stored() == 20
    finally:
        pub.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "windows stored" in out
    assert "subscribed to mqtt://127.0.0.1" in err


def test_dashboard_command_rejects_a_bad_http_option(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "edge_agent", "dashboard", "--db",
                           str(tmp_path / "d.db"), "--http", "8080"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--http: must be HOST:PORT" in proc.stderr
