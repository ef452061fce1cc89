"""The dashboard's JSON API: shapes, time parsing, and 400 (never 500) for bad requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.dashboard import SITE_DOC, T0, fleet_windows, serve

from edge_agent.dashboard.app import create_app, parse_time
from edge_agent.dashboard.store import DashboardStore


@dataclass
class Reply:
    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    """Real HTTP against the app served by uvicorn on a free loopback port."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, params: dict[str, object] | None = None) -> Reply:
        q = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(self.base + path + q, timeout=30) as r:
                return Reply(r.status, r.read().decode())
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.read().decode())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    store = DashboardStore(tmp_path_factory.mktemp("app") / "dash.db")
    store.set_site_plan(SITE_DOC, "test")
    store.add_windows(fleet_windows(2, 120, seed=2))  # two hours of two trucks
    with serve(create_app(store)) as url:
        yield Client(url)


def test_utilisation_fields_and_range(client: Client) -> None:
    r = client.get("/api/utilisation", params={"site": "plant-t", "from": T0, "to": T0 + 3600})
    assert r.status_code == 200
    body = r.json()
    assert {a["agent"] for a in body["agents"]} == {"fl-01", "fl-02"}
    for a in body["agents"]:
        assert {"agent", "dwell_s", "moving_s", "idle_s", "distance_m", "windows", "status",
                "last_seen"} <= a.keys()
        assert a["windows"] == 60
    assert body["zones"] and body["totals"]["windows"] == 120
    whole = client.get("/api/utilisation", params={"site": "plant-t"}).json()
    assert whole["totals"]["windows"] == 240 and whole["from"] is None


def test_iso_and_epoch_times_select_the_same_windows(client: Client) -> None:
    iso = client.get("/api/heatmap", params={"site": "plant-t", "from": "2026-11-18T11:30:00Z",
                                             "to": "2026-11-18T13:30:00+01:00"}).json()
    epoch = client.get("/api/heatmap", params={"site": "plant-t", "from": T0 + 23 * 60,
                                               "to": T0 + 23 * 60 + 3600}).json()
    assert iso["windows"] == epoch["windows"] == 2 * 60
    assert iso["cells"] == epoch["cells"]


@pytest.mark.parametrize(("params", "message"), [
    ({"site": "nowhere"}, "unknown site 'nowhere'"),
    ({}, "site: required"),
    ({"site": "plant-t", "from": "yesterday"}, "from: not epoch seconds or an ISO 8601"),
    ({"site": "plant-t", "to": "nan"}, "to: must be a finite time"),
    ({"site": "plant-t", "from": T0 + 60, "to": T0}, "to must be after from"),
    ({"site": "plant-t", "from": T0, "to": T0}, "to must be after from"),
])
@pytest.mark.parametrize("path", ["/api/utilisation", "/api/heatmap"])
def test_bad_requests_are_400_with_a_message(client: Client, path: str,
                                             params: dict[str, object], message: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_sites_and_version_and_page(client: Client) -> None:
    sites = client.get("/api/sites").json()
    assert sites["sites"][0]["site"] == "plant-t" and sites["shifts"] == ["06:00", "14:00",
                                                                          "22:00"]
    assert isinstance(client.get("/api/version").json()["version"], int)
    page = client.get("/")
    assert page.status_code == 200 and "<canvas id=\"map\"" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/nothing").status_code == 404


def test_parse_time_treats_naive_iso_as_utc() -> None:
    assert parse_time("2026-11-18T11:07:00", "from", 0.0) == T0
    assert parse_time(None, "from", -1.0) == -1.0
