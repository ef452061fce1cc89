"""The example site.json of ../shared/spec/capture-bundle.md, as the spec writes it."""

from __future__ import annotations

import copy
from typing import Any

_SPEC_SITE: dict[str, Any] = {
    "site": "plant-a",
    "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
    "zones": [
        {"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]], "indoor": True},
        {"name": "yard", "polygon": [[0, 60], [100, 60], [100, 90], [0, 90]], "indoor": False},
    ],
    "aisles": [{"from": [10.0, 5.0], "to": [10.0, 15.0], "width_m": 3.5}],
    "wifi_aps": [
        {"bssid": "02:9e:34:71:25:60", "ssid": "plant-ops", "channel": 1, "x": 12.5, "y": 11.6,
         "z": 6.0, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}
    ],
    "ble_beacons": [
        {"address": "C0:12:34:56:78:9A", "uuid": "fda50693-a4e2-4fb1-afcf-c6eb07647825",
         "major": 1, "minor": 7, "x": 10.0, "y": 3.0, "z": 2.5, "rssi_1m_dbm": -59.0,
         "path_loss_exponent": 2.0}
    ],
}


def spec_site() -> dict[str, Any]:
    """A fresh copy of the spec's example (callers may change it)."""
    return copy.deepcopy(_SPEC_SITE)
