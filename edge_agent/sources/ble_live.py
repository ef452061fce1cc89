"""Live BLE through bleak's BleakScanner: a thin adapter running its event loop in a thread.

bleak gives no reception time, so each advertisement is stamped by the clock seam when it
arrives; its manufacturer/service data go through the same beacon parsing as pcap replay.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from edge_agent.clock import Clock, system_clock
from edge_agent.errors import SourceError
from edge_agent.observations import BleObs
from edge_agent.site import Site
from edge_agent.sources.base import SourceStats
from edge_agent.sources.ble import BleMatcher
from edge_agent.sources.ble_adv import payload_from_bleak

_POLL_S = 0.1  # how often the scanner thread checks for stop/duration (bounds stop latency)
_END = object()


class BleLiveSource:
    """BleObs from a running BLE scan until `.stop()` or `duration_s` (monotonic) elapses."""

    kind = "ble"

    def __init__(self, site: Site | None, *, backend: object | None = None,
                 clock: Clock = system_clock, duration_s: float | None = None,
                 adapter: str | None = None) -> None:
        self.site = site
        self.stats = SourceStats()
        self.backend = backend
        self.clock = clock
        self.duration_s = duration_s
        self.adapter = adapter
        self._stop = threading.Event()
        self._matcher = BleMatcher(site, self.stats)

    def stop(self) -> None:
        self._stop.set()

    def on_advertisement(self, address: str, manufacturer_data: dict[int, bytes],
                         service_data: dict[str, bytes], rssi_dbm: float | None,
                         local_name: str | None = None) -> BleObs | None:
        """One advertisement as bleak reports it -> BleObs (or counted skip), stamped now."""
        t = self.clock()
        # Live clocks can step back (NTP); keep the stream ordered rather than drop data.
        t = max(t, self._matcher.last_t)
        payload = payload_from_bleak(manufacturer_data, service_data, local_name)
        return self._matcher.observe(t, address.upper(), payload, rssi_dbm)

    def __iter__(self) -> Iterator[BleObs]:
        q: queue.Queue[object] = queue.Queue()
        thread = threading.Thread(target=self._run, args=(q,), name="ble-scan", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, BleObs)
                yield item
        finally:
            self._stop.set()
            thread.join(timeout=5.0)

    def _run(self, q: queue.Queue[object]) -> None:
        try:
            asyncio.run(self._scan(q))
        except SourceError as e:
            q.put(e)
        except Exception as e:  # bleak raises platform-specific errors (D-Bus, adapter off)
            q.put(SourceError(f"BLE scanner failed: {type(e).__name__}: {e}"))
        finally:
            q.put(_END)

    async def _scan(self, q: queue.Queue[object]) -> None:
        try:
            from bleak import BleakScanner
        except ImportError as e:
            raise SourceError(f"BLE live scanning needs the bleak package: {e}") from None

        def callback(device: Any, adv: Any) -> None:
            obs = self.on_advertisement(str(device.address), dict(adv.manufacturer_data),
                                        dict(adv.service_data), adv.rssi, adv.local_name)
            if obs is not None:
                q.put(obs)

        # BlueZ (bleak's default filter) reports an advertiser again only when its data or RSSI
        # changes much; ranging needs every advertisement, so ask for duplicates.
        bluez: dict[str, Any] = {"filters": {"DuplicateData": True}}
        if self.adapter:
            bluez["adapter"] = self.adapter
        kwargs: dict[str, Any] = {"detection_callback": callback, "bluez": bluez}
        if self.backend is not None:
            kwargs["backend"] = self.backend
        scanner = BleakScanner(**kwargs)
        await scanner.start()
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.duration_s is not None and time.monotonic() - started >= self.duration_s:
                    break
                await asyncio.sleep(_POLL_S)
        finally:
            await scanner.stop()
