"""End to end: a simulated fleet replayed by real agents through a real Mosquitto into the
dashboard; the API's totals equal the agents' own heatmap.json files, window for window."""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.dashboard import serve, wait_until
from support.mosquitto import Broker, start_mosquitto

from edge_agent.dashboard.app import create_app
from edge_agent.dashboard.demo import RecordingSink
from edge_agent.dashboard.ingest import DashboardIngest
from edge_agent.dashboard.store import DashboardStore
from edge_agent.heatmap.window import Window
from edge_agent.pipeline import replay_bundle
from edge_agent.publish.forward import OutboxForwarder
from firmware_sim.fleet import write_fleet

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]
N_TRUCKS = 3
DURATION_S = 300.0  # five windows a truck: short, and still several windows to sum
SUM_TOL = 1e-6  # millisecond-exact values summed as floats in SQL; a real mismatch is >= 1 ms


@dataclass
class Fleet:
    url: str
    store: DashboardStore
    ingest: DashboardIngest
    broker: Broker
    bundles: list[Path]
    sent: dict[str, list[Window]]
    heatmaps: dict[str, dict[str, Any]]

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            return json.load(r)


def _replay(bundle: Path, out: Path, broker: Broker, site: str) -> list[Window]:
    agent = bundle.name
    sink = RecordingSink(OutboxForwarder(out / "outbox.db", broker.url(), site, agent))
    replay_bundle(bundle, out, agent=agent, window_sink=sink)
    return sink.windows


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("e2e")
    broker = start_mosquitto(tmp)
    store = DashboardStore(tmp / "dashboard.db")
    ingest = DashboardIngest(store, broker.url(), session_expiry_s=0)
    ingest.start()
    try:
        assert ingest.wait_connected(30)
        bundles = write_fleet("indoor_shift", N_TRUCKS, 5, tmp / "fleet", duration_s=DURATION_S)
        site = json.loads((bundles[0] / "site.json").read_text())["site"]
        store.set_site_plan(json.loads((bundles[0] / "site.json").read_text()), "test")
        sent, heatmaps = {}, {}
        for b in bundles:
            sent[b.name] = _replay(b, tmp / "agents" / b.name, broker, site)
            heatmaps[b.name] = json.loads((tmp / "agents" / b.name / "heatmap.json").read_text())
        total = sum(len(v) for v in sent.values())
        wait_until(lambda: store.count_windows() == total, f"{total} windows at the dashboard")
        with serve(create_app(DashboardStore(tmp / "dashboard.db"))) as url:
            yield Fleet(url, store, ingest, broker, bundles, sent, heatmaps)
    finally:
        ingest.stop()
        broker.stop()


def test_every_window_sent_is_stored_once(fleet: Fleet) -> None:
    site = next(iter(fleet.heatmaps.values()))["site"]
    stored = fleet.store.windows(site, -math.inf, math.inf)
    sent_ids = sorted(w.id for ws in fleet.sent.values() for w in ws)
    assert sorted(w.id for w in stored) == sent_ids
    assert len(set(sent_ids)) == len(sent_ids) >= N_TRUCKS * 4


def test_api_totals_equal_each_agents_heatmap_json(fleet: Fleet) -> None:
    site = next(iter(fleet.heatmaps.values()))["site"]
    util = fleet.api(f"/api/utilisation?site={site}")
    by_agent = {a["agent"]: a for a in util["agents"]}
    assert set(by_agent) == set(fleet.heatmaps)
    for agent, hm in fleet.heatmaps.items():
        got = by_agent[agent]
        assert got["windows"] == len(fleet.sent[agent])
        for key in ("dwell_s", "moving_s", "idle_s", "distance_m"):
            assert got[key] == pytest.approx(hm["totals"][key], abs=SUM_TOL), (agent, key)
        assert got["moving_s"] > 0 and got["status"] == "offline"  # closed agents say so
    fleet_dwell = sum(hm["totals"]["dwell_s"] for hm in fleet.heatmaps.values())
    assert util["totals"]["dwell_s"] == pytest.approx(fleet_dwell, abs=SUM_TOL)
    assert sum(z["dwell_s"] for z in util["zones"]) == pytest.approx(fleet_dwell, abs=SUM_TOL)


def test_api_heatmap_is_the_sum_of_the_agents_cells(fleet: Fleet) -> None:
    site = next(iter(fleet.heatmaps.values()))["site"]
    api = fleet.api(f"/api/heatmap?site={site}")
    want: dict[tuple[int, int], list[float]] = {}
    for hm in fleet.heatmaps.values():
        assert hm["grid"] == api["grid"]
        for ix, iy, d, m in hm["cells"]:
            acc = want.setdefault((ix, iy), [0.0, 0.0])
            acc[0] += d
            acc[1] += m
    got = {(c[0], c[1]): c[2:] for c in api["cells"]}
    assert set(got) == set(want)
    for key, (d, m) in want.items():
        assert got[key][0] == pytest.approx(d, abs=SUM_TOL)
        assert got[key][1] == pytest.approx(m, abs=SUM_TOL)
    assert api["windows"] == sum(len(v) for v in fleet.sent.values())


def test_an_agent_resending_everything_changes_nothing(fleet: Fleet, tmp_path: Path) -> None:
    site = next(iter(fleet.heatmaps.values()))["site"]
    before = fleet.api(f"/api/utilisation?site={site}")["totals"]
    dups = fleet.ingest.stats.duplicates
    again = _replay(fleet.bundles[0], tmp_path / "again", fleet.broker, site)  # a fresh outbox
    wait_until(lambda: fleet.ingest.stats.duplicates >= dups + len(again), "the resent windows")
    assert fleet.api(f"/api/utilisation?site={site}")["totals"] == before
