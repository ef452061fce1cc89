"""Dashboard ingest against a real Mosquitto: shared subscription, duplicates, status, plans."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support.dashboard import SITE_DOC, T0, Publisher, fleet_windows, make_window, wait_until
from support.fixtures import SECURE_USERS
from support.mosquitto import Broker

from edge_agent.dashboard.ingest import DashboardIngest, parse_status
from edge_agent.dashboard.store import DashboardStore
from edge_agent.heatmap.codec import encode_window

pytestmark = pytest.mark.mosquitto


def _ingest(broker: Broker, db: Path, **kw: object) -> DashboardIngest:
    ing = DashboardIngest(DashboardStore(db), broker.url(), session_expiry_s=0, **kw)  # type: ignore[arg-type]
    ing.start()
    assert ing.wait_connected(30)
    return ing


def test_windows_resent_are_stored_once(broker: Broker, tmp_path: Path) -> None:
    ing = _ingest(broker, tmp_path / "d.db")
    pub = Publisher(broker.host, broker.port)
    try:
        wins = fleet_windows(3, 20)
        pub.publish_windows(wins)
        pub.publish_windows(wins[:25])  # at-least-once: an agent resends what was not acked
        wait_until(lambda: ing.stats.received == 85, "85 messages")
        wait_until(lambda: ing.stats.stored + ing.stats.duplicates == 85, "all written")
        store = DashboardStore(tmp_path / "d.db")
        assert store.count_windows() == 60
        assert ing.stats.duplicates == 25
        u = store.utilisation("plant-t", -math.inf, math.inf)
        assert u["totals"]["moving_s"] == pytest.approx(sum(w.moving_s for w in wins))
    finally:
        pub.close()
        ing.stop()


def test_two_instances_in_one_group_split_the_windows(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    a = _ingest(broker, db, client_id="dash-a")
    b = _ingest(broker, db, client_id="dash-b")
    pub = Publisher(broker.host, broker.port)
    try:
        wins = fleet_windows(2, 50, seed=3)
        pub.publish_windows(wins)
        wait_until(lambda: a.stats.stored + b.stats.stored == 100, "100 windows stored")
        assert a.stats.stored > 0 and b.stats.stored > 0  # the broker shared them out
        assert DashboardStore(db).count_windows() == 100
    finally:
        pub.close()
        a.stop()
        b.stop()


def test_status_site_plan_and_garbage(broker: Broker, tmp_path: Path) -> None:
    pub = Publisher(broker.host, broker.port)
    # Retained before the dashboard starts: it must still learn them (plain subscription).
    pub.publish("plants/plant-t/site", json.dumps(SITE_DOC).encode(), retain=True)
    pub.publish("plants/plant-t/agents/fl-01/status",
                json.dumps({"status": "online", "t": T0}).encode(), retain=True)
    ing = _ingest(broker, tmp_path / "d.db")
    try:
        pub.publish("plants/plant-t/agents/fl-02/heatmap", b"not a window")
        w = make_window("fl-03", T0, {(1, 1): (50.0, 5.0)})
        pub.publish("plants/plant-t/agents/fl-09/heatmap", encode_window(w))  # wrong agent
        pub.publish_windows([make_window("fl-01", T0, {(2, 2): (40.0, 4.0)})])
        wait_until(lambda: ing.stats.received >= 5, "5 messages")
        wait_until(lambda: ing.stats.stored == 1, "the good window")
        assert ing.stats.rejected == 2
        store = DashboardStore(tmp_path / "d.db")
        assert store.site_plan("plant-t") is not None
        (fl01,) = store.utilisation("plant-t", -math.inf, math.inf)["agents"]
        assert fl01["status"] == "online" and fl01["last_seen"] == T0 + 60
    finally:
        pub.publish("plants/plant-t/site", b"", retain=True)
        pub.publish("plants/plant-t/agents/fl-01/status", b"", retain=True)
        pub.close()
        ing.stop()


@pytest.mark.parametrize(("payload", "expected"), [
    (b"online", ("online", None)),
    (b'{"status": "OFFLINE", "t": 12.5}', ("offline", 12.5)),
    (b'{"state": "online"}', ("online", None)),
    (b'"online"', ("online", None)),
])
def test_parse_status_accepts_word_or_json(payload: bytes,
                                           expected: tuple[str, float | None]) -> None:
    assert parse_status(payload) == expected


def test_tls_with_the_dashboard_user_and_a_refused_password(mosquitto_secure: Broker,
                                                            tmp_path: Path) -> None:
    b = mosquitto_secure
    good = DashboardIngest(DashboardStore(tmp_path / "d.db"),
                           b.url("dashboard", SECURE_USERS["dashboard"], tls=True),
                           tls_ca=b.ca_path, session_expiry_s=0)
    good.start()
    assert good.wait_connected(30), good.last_error
    assert b.tls_port is not None
    pub = Publisher(b.host, b.tls_port, user="fl-01", password=SECURE_USERS["fl-01"],
                    ca_path=b.ca_path)
    try:
        pub.publish_windows([make_window("fl-01", T0, {(3, 3): (45.0, 15.0)})])
        wait_until(lambda: good.stats.stored == 1, "the window over TLS")
    finally:
        pub.close()
        good.stop()

    bad = DashboardIngest(DashboardStore(tmp_path / "e.db"),
                          b.url("dashboard", "wrong", tls=True), tls_ca=b.ca_path,
                          session_expiry_s=0)
    bad.start()
    try:
        wait_until(lambda: bad.last_error is not None, "the refusal")
        assert not bad.connected.is_set()
        assert "refused the connection" in (bad.last_error or "")
    finally:
        bad.stop()


def test_store_process_mode_stores_once_and_acknowledges(broker: Broker, tmp_path: Path) -> None:
    ing = DashboardIngest(DashboardStore(tmp_path / "p.db"), broker.url(), session_expiry_s=0,
                          store_process=True)
    ing.start()
    pub = Publisher(broker.host, broker.port)
    try:
        assert ing.wait_connected(30)
        wins = fleet_windows(2, 15, seed=9)
        pub.publish_windows(wins)
        pub.publish_windows(wins[:5])
        pub.publish("plants/plant-t/agents/fl-01/heatmap", b"garbage")
        wait_until(lambda: ing.stats.received == 36, "36 messages")
        assert (ing.stats.stored, ing.stats.duplicates, ing.stats.rejected) == (30, 5, 1)
    finally:
        pub.close()
        ing.stop()
    assert DashboardStore(tmp_path / "p.db").count_windows() == 30
