"""The dashboard page in Debian's headless Chromium, fed through a real Mosquitto.

Checks what a supervisor sees: heat on the map where the trucks drove (canvas pixels), the API's
numbers in the table, the range buttons changing them, and a new window appearing without reload.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.dashboard import (
    SITE_DOC,
    T0,
    Publisher,
    fleet_windows,
    make_window,
    serve,
    wait_until,
)
from support.mosquitto import Broker, start_mosquitto

from edge_agent.dashboard.app import create_app
from edge_agent.dashboard.ingest import DashboardIngest
from edge_agent.dashboard.store import DashboardStore

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000  # bounds a wait; asserts nothing about speed
N_AGENTS, N_WINDOWS = 3, 120  # two hours of three trucks, one window a minute
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "img" / "dashboard.png"

pytestmark = [pytest.mark.browser, pytest.mark.mosquitto,
              pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                 reason=f"needs Chromium at {CHROMIUM} (apt install chromium)")]


@dataclass
class Env:
    url: str
    publisher: Publisher
    ingest: DashboardIngest

    def api(self, path: str, **params: Any) -> Any:
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=30) as r:
            return json.load(r)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    broker: Broker = start_mosquitto(tmp_path)
    store = DashboardStore(tmp_path / "dash.db")
    store.set_site_plan(SITE_DOC, "test")
    ingest = DashboardIngest(store, broker.url(), session_expiry_s=0)
    ingest.start()
    pub = Publisher(broker.host, broker.port)
    try:
        assert ingest.wait_connected(30)
        pub.publish_windows(fleet_windows(N_AGENTS, N_WINDOWS, seed=7))
        wait_until(lambda: ingest.stats.stored == N_AGENTS * N_WINDOWS, "windows stored")
        # Shifts at 00:00 and 12:00 (UTC in the browser): "This shift" is 12:00 onwards.
        app = create_app(DashboardStore(tmp_path / "dash.db"), shifts=["00:00", "12:00"],
                         poll_s=0.3)
        with serve(app) as url:
            yield Env(url, pub, ingest)
    finally:
        pub.close()
        ingest.stop()
        broker.stop()


@pytest.fixture
def page(env: Env, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1024, "height": 1366},  # a tablet, portrait
                                  timezone_id="UTC", locale="en-GB")
        pg = ctx.new_page()
        pg.set_default_timeout(WAIT_MS)
        pg.goto(env.url)
        pg.wait_for_function("window.dashboard && window.dashboard.state.loads > 0")
        try:
            yield pg
        finally:
            pg.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            if os.environ.get("EDGE_AGENT_UPDATE_SCREENSHOT") == "1":
                DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copy(tmp_path / "dashboard.png", DOCS_SCREENSHOT)
            browser.close()


def _reload_count(page: Any, before: int) -> None:
    page.wait_for_function(f"window.dashboard.state.loads > {before} && "
                           "!window.dashboard.state.refreshing")


def _click_range(page: Any, name: str) -> None:
    before = page.evaluate("window.dashboard.state.loads")
    page.click(f"#range button[data-range='{name}']")
    _reload_count(page, before)


def _table(page: Any) -> dict[str, dict[str, str]]:
    """Rows of the forklift table: agent -> column key -> (data-value, shown text)."""
    rows: dict[str, dict[str, str]] = page.evaluate("""() => {
      const out = {};
      for (const tr of document.querySelectorAll('#agents tbody tr')) {
        const row = {};
        for (const td of tr.cells) row[td.dataset.key] = [td.dataset.value, td.textContent];
        out[tr.dataset.agent] = row;
      }
      return out;
    }""")
    return rows


def test_map_shows_heat_where_the_trucks_drove(env: Env, page: Any) -> None:
    _click_range(page, "all")
    heat = env.api("/api/heatmap", site="plant-t")
    assert heat["windows"] == N_AGENTS * N_WINDOWS
    busiest = sorted(heat["cells"], key=lambda c: -c[2])[:8]
    driven = {(c[0], c[1]) for c in heat["cells"]}
    empty = [(15, 6), (25, 18)]  # between the trucks' lanes, and the far yard: nobody drove
    assert not driven & set(empty)
    probe = [c[:2] for c in busiest] + [list(e) for e in empty]
    colours = page.evaluate("""(cells) => {
      const s = window.dashboard.state, v = s.view, g = s.heat.grid;
      const ctx = document.getElementById('map').getContext('2d');
      return cells.map(([ix, iy]) => {
        const x = g.x0 + (ix + 0.5) * g.cell_m, y = g.y0 + (iy + 0.5) * g.cell_m;
        const px = Math.round((v.pad + (x - v.xmin) * v.scale) * v.dpr);
        const py = Math.round((v.pad + (v.ymax - y) * v.scale) * v.dpr);
        return Array.from(ctx.getImageData(px, py, 1, 1).data);
      });
    }""", probe)
    for (r, g, b, a) in colours[:8]:  # heat ramp: warm, blue well below red
        assert a == 255 and r >= 180 and b <= 170, (r, g, b)
    for (r, g, b, _a) in colours[8:]:  # plan background (white or the zone's pale fill)
        assert min(r, g, b) >= 230, (r, g, b)


def test_table_shows_the_api_numbers_and_the_range_changes_them(env: Env, page: Any) -> None:
    assert page.evaluate("window.dashboard.state.range") == "shift"  # the default view
    assert "range=shift" in page.url
    _click_range(page, "all")
    whole = env.api("/api/utilisation", site="plant-t")
    rows = _table(page)
    assert set(rows) == {a["agent"] for a in whole["agents"]}
    for a in whole["agents"]:
        row = rows[a["agent"]]
        assert float(row["moving_s"][0]) == pytest.approx(a["moving_s"])
        assert row["moving_s"][1] == f"{a['moving_s'] / 3600:.2f}"
        assert row["idle_s"][1] == f"{a['idle_s'] / 3600:.2f}"
        assert row["distance_m"][1] == f"{a['distance_m'] / 1000:.2f}"
        assert row["windows"][1] == str(N_WINDOWS)

    _click_range(page, "hour")
    state = page.evaluate("({f: window.dashboard.state.from, t: window.dashboard.state.to})")
    assert state["t"] - state["f"] == 3600
    hour = env.api("/api/utilisation", site="plant-t", **{"from": state["f"], "to": state["t"]})
    rows = _table(page)
    for a in hour["agents"]:
        assert a["windows"] == 60
        assert rows[a["agent"]]["windows"][1] == "60"
        assert rows[a["agent"]]["moving_s"][1] == f"{a['moving_s'] / 3600:.2f}"

    _click_range(page, "shift")  # 12:00 UTC onwards: windows from 12:00 to 13:07
    rows = _table(page)
    assert {r["windows"][1] for r in rows.values()} == {str(N_WINDOWS - 53)}

    _click_range(page, "all")
    assert {r["windows"][1] for r in _table(page).values()} == {str(N_WINDOWS)}


def test_a_window_published_now_appears_without_reload(env: Env, page: Any) -> None:
    page.evaluate("window.__sameDocument = true")
    before = page.evaluate("window.dashboard.state.loads")
    w = make_window("fl-09", T0 + N_WINDOWS * 60, {(20, 16): (50.0, 30.0)}, no_position_s=4.0)
    env.publisher.publish_windows([w])
    page.wait_for_selector("#agents tbody tr[data-agent='fl-09']")
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("window.dashboard.state.loads") > before
    row = _table(page)["fl-09"]
    assert row["moving_s"][0] == "30" and row["windows"][1] == "1"
    assert [20, 16, 50.0, 30.0] in page.evaluate("window.dashboard.state.heat.cells")


def test_exports_csv_and_png(env: Env, page: Any, tmp_path: Path) -> None:
    with page.expect_download() as dl:
        page.click("#csv-agents")
    csv_path = tmp_path / "agents.csv"
    dl.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[1].startswith("agent,status,last_seen,moving_s")
    assert len(lines) == 2 + N_AGENTS
    with page.expect_download() as dl:
        page.click("#png")
    png = tmp_path / "map.png"
    dl.value.save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
