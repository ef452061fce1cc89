"""Test helpers for the dashboard: synthetic windows of a small site, a publisher, a live server.

Windows are built with the agent's own Window type, so the dashboard is tested on exactly what
agents send; `serve()` runs uvicorn in a thread on a free loopback port.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.heatmap.window import Window
from edge_agent.site import Site, site_from_dict

from .mosquitto import free_port

WAIT_S = 30.0  # bounds a wait; asserts nothing about speed
T0 = 1_795_000_020.0  # a window-aligned start (multiple of 60 s)
CELL_M = 2.0

SITE_DOC: dict[str, Any] = {
    "site": "plant-t",
    "origin": {"lat": 47.47, "lon": 6.81, "alt": 340.0},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 60, "ymax": 40},
    "zones": [
        {"name": "hall", "polygon": [[0, 0], [60, 0], [60, 30], [0, 30]], "indoor": True},
        {"name": "yard", "polygon": [[0, 30], [60, 30], [60, 40], [0, 40]], "indoor": False},
    ],
    "aisles": [{"from": [5.0, 5.0], "to": [55.0, 5.0], "width_m": 3.0}],
    "wifi_aps": [
        {"bssid": "02:00:00:00:00:01", "ssid": "t", "channel": 1, "x": 10, "y": 10, "z": 5,
         "rssi_1m_dbm": -40, "path_loss_exponent": 2.5},
    ],
    "ble_beacons": [],
}


def plant_site() -> Site:
    return site_from_dict(SITE_DOC)


def make_window(agent: str, start: float, cells: dict[tuple[int, int], tuple[float, float]], *,
                site: str = "plant-t", window_s: float = 60.0, no_position_s: float = 0.0,
                distance_m: float | None = None) -> Window:
    """One window of `site` with consistent totals and zones (hall below y=30 m, yard above)."""
    dwell = sum(c[0] for c in cells.values())
    moving = sum(c[1] for c in cells.values())
    zones: dict[str, tuple[float, float, float]] = {}
    for (_ix, iy), (d, m) in cells.items():
        name = "hall" if (iy + 0.5) * CELL_M < 30 else "yard"
        zd, zm, zi = zones.get(name, (0.0, 0.0, 0.0))
        zones[name] = (zd + d, zm + m, zi + d - m)
    return Window(id=f"{site}/{agent}/{int(start)}", site=site, agent=agent, start=start,
                  end=start + window_s, cell_m=CELL_M, x0=0.0, y0=0.0, nx=30, ny=20,
                  cells=dict(cells), dwell_s=dwell, moving_s=moving, idle_s=dwell - moving,
                  no_position_s=no_position_s,
                  distance_m=moving * 1.5 if distance_m is None else distance_m, zones=zones)


def fleet_windows(n_agents: int, n_windows: int, *, seed: int = 0, site: str = "plant-t",
                  start: float = T0, window_s: float = 60.0) -> list[Window]:
    """Windows of n_agents trucks each driving along the aisle y=5 m, n_windows minutes each."""
    rng = random.Random(seed)
    out = []
    for a in range(n_agents):
        agent = f"fl-{a + 1:02d}"
        for k in range(n_windows):
            cells: dict[tuple[int, int], tuple[float, float]] = {}
            left = window_s - 6.0  # 6 s with no position each minute
            while left > 0:
                ix, iy = rng.randrange(2, 28), 2 + rng.randrange(0, 2) + (a % 3) * 6
                d = min(left, float(rng.randint(3, 15)))
                m = d if rng.random() < 0.6 else 0.0
                c = cells.get((ix, iy), (0.0, 0.0))
                cells[(ix, iy)] = (c[0] + d, c[1] + m)
                left -= d
            out.append(make_window(agent, start + k * window_s, cells, site=site,
                                   window_s=window_s, no_position_s=6.0))
    return out


class Publisher:
    """An MQTT 5 client publishing windows (QoS 1) as an agent would, waiting for the PUBACKs."""

    def __init__(self, host: str, port: int, *, user: str | None = None,
                 password: str | None = None, ca_path: Path | None = None) -> None:
        """ca_path: connect with TLS, trusting that CA (port is then the TLS listener's)."""
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca_path is not None:
            self.client.tls_set(ca_certs=str(ca_path))
        self.client.connect(host, port)
        self.client.loop_start()

    def publish_windows(self, windows: list[Window]) -> None:
        from edge_agent.heatmap.codec import encode_window

        infos = [self.client.publish(f"plants/{w.site}/agents/{w.agent}/heatmap",
                                     encode_window(w), qos=1) for w in windows]
        for info in infos:
            info.wait_for_publish(WAIT_S)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)


def wait_until(predicate: Any, what: str) -> None:
    """Poll `predicate()` until true; fail naming `what` after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
