"""`edge-agent demo` end to end: a simulated fleet replayed through real agents into a private
Mosquitto, the dashboard ingesting it, and a check that the API equals the agents' own totals.

Each step is a function so the integration test drives the same code as the command.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.dashboard.app import create_app
from edge_agent.dashboard.ingest import DashboardIngest
from edge_agent.dashboard.private_broker import PrivateBroker, start_private_broker
from edge_agent.dashboard.store import DashboardStore
from edge_agent.errors import EdgeAgentError, InputError
from edge_agent.heatmap.window import Window
from edge_agent.pipeline import WindowSink

MARKER = ".edge-agent-demo"
"""File that marks a folder as the demo's own, so a rerun may clear it and nothing else."""
ARRIVAL_TIMEOUT_S = 60.0
"""Bound on waiting for the last windows to reach the dashboard (a loaded 2-core box: ~1 s)."""
TOLERANCE_S = 1e-6
"""Sums of millisecond-exact values in SQL differ from the agent's integer sums by float rounding
only; anything above this is a real mismatch."""
SERVER_START_S = 20.0


class RecordingSink:
    """A WindowSink that remembers each window it passes on (the agent's own count)."""

    def __init__(self, inner: WindowSink) -> None:
        self.inner = inner
        self.windows: list[Window] = []

    def put(self, window: Window) -> None:
        self.windows.append(window)
        self.inner.put(window)

    def close(self) -> str:
        return self.inner.close()


@dataclass
class AgentRun:
    agent: str
    out_dir: Path
    windows: list[Window]
    heatmap: dict[str, Any]
    sink_summary: str = ""


@dataclass
class Check:
    """API totals against the agents' heatmap.json files: rows and whether all matched."""

    ok: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def prepare_out_dir(out: Path) -> None:
    """Create `out`, or clear it if it is a previous demo's (marker file); refuse anything else."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise InputError(out, "exists and is not a demo output folder (no "
                             f"{MARKER}); choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by edge-agent demo; safe to delete\n")


def publish_site_plan(broker_url_host: str, port: int, site_json: Path) -> None:
    """Publish a site.json retained on plants/{site}/site, where dashboards read floor plans."""
    doc = json.loads(site_json.read_text())
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(broker_url_host, port)
    c.loop_start()
    try:
        c.publish(f"plants/{doc['site']}/site", json.dumps(doc).encode(), qos=1,
                  retain=True).wait_for_publish(ARRIVAL_TIMEOUT_S)
    finally:
        c.disconnect()
        c.loop_stop()


def replay_agents(bundles: list[Path], out: Path, broker_url: str,
                  progress: bool = False) -> list[AgentRun]:
    """Replay each bundle as agent fl-NN through its own outbox forwarder to the broker."""
    from edge_agent.bundle import Bundle
    from edge_agent.pipeline import replay_bundle
    from edge_agent.publish.forward import OutboxForwarder

    runs = []
    for bundle in bundles:
        agent = bundle.name
        site = Bundle.open(bundle).site.site
        agent_dir = out / agent
        agent_dir.mkdir(parents=True, exist_ok=True)
        sink = RecordingSink(OutboxForwarder(agent_dir / "outbox.db", broker_url, site, agent))
        replay_bundle(bundle, agent_dir, agent=agent, window_sink=sink, progress=progress)
        heatmap = json.loads((agent_dir / "heatmap.json").read_text())
        runs.append(AgentRun(agent, agent_dir, sink.windows, heatmap))
    return runs


def wait_for_windows(store: DashboardStore, ids: set[str]) -> bool:
    """Wait until the store holds every id (bounded); True when all arrived."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while time.monotonic() < deadline:
        if store.count_windows() >= len(ids):
            return True
        time.sleep(0.05)
    return False


def check_totals(api: dict[str, Any], runs: list[AgentRun]) -> Check:
    """Per agent: the API's utilisation equals the agent's heatmap.json totals and window count."""
    check = Check(ok=True)
    by_agent = {a["agent"]: a for a in api["agents"]}
    for run in runs:
        got = by_agent.get(run.agent)
        want = run.heatmap["totals"]
        row: dict[str, Any] = {"agent": run.agent, "windows_sent": len(run.windows)}
        if got is None:
            check.ok = False
            check.problems.append(f"{run.agent}: not in the API's answer")
            continue
        row.update({k: got[k] for k in ("dwell_s", "moving_s", "idle_s", "distance_m",
                                        "windows", "status")})
        if got["windows"] != len(run.windows):
            check.ok = False
            check.problems.append(f"{run.agent}: API has {got['windows']} windows, agent sent "
                                  f"{len(run.windows)}")
        for key in ("dwell_s", "moving_s", "idle_s", "distance_m"):
            if not math.isclose(got[key], want[key], abs_tol=TOLERANCE_S):
                check.ok = False
                check.problems.append(f"{run.agent}: {key} API {got[key]} != heatmap.json "
                                      f"{want[key]}")
        check.rows.append(row)
    return check


def http_get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


class ServerThread:
    """uvicorn serving an app in a background thread (so Ctrl-C reaches the main thread)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="dashboard-http",
                                       daemon=True)

    def start(self) -> int:
        """Start and return the bound port; EdgeAgentError if it cannot listen."""
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise EdgeAgentError(f"the dashboard could not listen on "
                                     f"{self.server.config.host}:{self.server.config.port} "
                                     "(port in use? try --http 127.0.0.1:8081)")
            time.sleep(0.02)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(SERVER_START_S)


@dataclass
class DemoRig:
    """What the demo started; stop() ends it in reverse order (inputs first, outputs last)."""

    broker: PrivateBroker
    store: DashboardStore
    ingest: DashboardIngest
    server: ServerThread | None = None
    base_url: str = ""

    def stop(self) -> str:
        if self.server is not None:
            self.server.stop()
        line = self.ingest.stop()
        self.broker.stop()
        return line


def start_rig(out: Path, site_json: Path, host: str, port: int) -> DemoRig:
    """Private broker, site plan retained on it, dashboard ingest and HTTP server."""
    broker = start_private_broker(out / "broker")
    ingest: DashboardIngest | None = None
    try:
        publish_site_plan("127.0.0.1", broker.port, site_json)
        store = DashboardStore(out / "dashboard.db")
        ingest = DashboardIngest(store, broker.url, session_expiry_s=0)
        ingest.start()
        if not ingest.wait_connected(ARRIVAL_TIMEOUT_S):
            raise EdgeAgentError(f"the dashboard could not connect to {broker.url}: "
                                 f"{ingest.last_error or 'timeout'}")
        rig = DemoRig(broker, store, ingest)
        server = ServerThread(create_app(DashboardStore(out / "dashboard.db")), host, port)
        bound = server.start()
        rig.server = server
        rig.base_url = f"http://{host}:{bound}"
        return rig
    except BaseException:
        if ingest is not None:
            ingest.stop()
        broker.stop()
        raise


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
