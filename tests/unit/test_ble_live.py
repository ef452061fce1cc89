"""Live BLE through bleak's real BleakScanner, with a fake scanner backend (the `backend=` seam)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from edge_agent.errors import SourceError
from edge_agent.site import Site, site_from_dict
from edge_agent.sources.ble import BleSource

ADS = json.loads((Path(__file__).parents[1] / "data/ble-live/advertisements.json").read_text())
IBEACON_ID = "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6/1/1"


class RecordedScanner(BaseBleakScanner):
    """Plays the recorded advertisements through bleak's own callback machinery on start()."""

    stopped = False
    bluez_args: ClassVar[dict[str, Any]] = {}

    def __init__(self, detection_callback: Any, service_uuids: Any, scanning_mode: str = "active",
                 **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        RecordedScanner.bluez_args = kwargs.get("bluez", {})

    async def start(self) -> None:
        for ad in ADS["advertisements"]:
            adv = AdvertisementData(
                local_name=ad["local_name"],
                manufacturer_data={int(k): bytes.fromhex(v)
                                   for k, v in ad["manufacturer_data"].items()},
                service_data={k: bytes.fromhex(v) for k, v in ad["service_data"].items()},
                service_uuids=[], tx_power=None, rssi=ad["rssi"], platform_data=())
            device = self.create_or_update_device(ad["address"], ad["address"], ad["local_name"],
                                                  None, adv)
            self.call_detection_callbacks(device, adv)

    async def stop(self) -> None:
        RecordedScanner.stopped = True


class BrokenScanner(RecordedScanner):
    async def start(self) -> None:
        raise OSError("org.bluez.Error.NotReady: Resource Not Ready")


def fake_clock() -> Any:
    ticks = itertools.count(1_700_000_000.0, 0.5)
    return lambda: next(ticks)


def site() -> Site:
    return site_from_dict({
        "site": "t", "origin": {"lat": 47.0, "lon": 6.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 50, "ymax": 50},
        "ble_beacons": [{"uuid": "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6", "major": 1, "minor": 1,
                         "x": 1.0, "y": 2.0, "rssi_1m_dbm": -59, "path_loss_exponent": 2.0}]})


def test_live_survey_mode_yields_every_plausible_advertiser() -> None:
    src = BleSource.live(None, backend=RecordedScanner, clock=fake_clock(), duration_s=0)
    obs = list(src)
    assert [(o.beacon_id, o.rssi_dbm) for o in obs] == [
        ("C4:BE:84:34:1D:24", -55.0), (IBEACON_ID, -120.0), ("7D:43:82:42:23:16", 0.0)]
    assert [o.t for o in obs] == [1_700_000_000.0, 1_700_000_000.5, 1_700_000_001.0]
    assert src.stats.skipped == {"implausible_rssi": 1}
    assert RecordedScanner.stopped
    # every advertisement, not only changed ones (BlueZ's default would hide repeats)
    assert RecordedScanner.bluez_args["filters"] == {"DuplicateData": True}


def test_live_with_site_keeps_only_the_surveyed_ibeacon() -> None:
    src = BleSource.live(site(), backend=RecordedScanner, clock=fake_clock(), duration_s=0)
    obs = list(src)
    assert [o.beacon_id for o in obs] == [IBEACON_ID]
    assert obs[0].address == "00:07:80:02:75:4E"
    assert src.stats.skipped == {"not_surveyed": 2, "implausible_rssi": 1}


def test_clock_stepping_back_keeps_order() -> None:
    times = iter([100.0, 99.0, 101.0, 102.0])
    src = BleSource.live(None, backend=RecordedScanner, clock=lambda: next(times), duration_s=0)
    ts = [o.t for o in src]
    assert ts == sorted(ts) and ts[1] == 100.0


def test_scanner_that_cannot_start_is_a_source_error() -> None:
    src = BleSource.live(None, backend=BrokenScanner, clock=fake_clock(), duration_s=0)
    with pytest.raises(SourceError, match="NotReady"):
        list(src)
