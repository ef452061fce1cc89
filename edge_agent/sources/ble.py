"""BLE beacon source: advertisements from a link-type-256 pcap (replay) or bleak's scanner (live).

Both paths turn (time, address, advertisement payload, RSSI) into a BleObs through one function,
`BleMatcher.observe`, which applies the RSSI sanity bounds and the site's survey (privacy filter).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.clock import Clock, system_clock
from edge_agent.observations import BleObs
from edge_agent.site import Site
from edge_agent.sources.base import SourceStats
from edge_agent.sources.ble_adv import (
    ADV_ACCESS_ADDRESS,
    SIGHTING_PDUS,
    AdvPayload,
    FrameSkip,
    parse_phdr_frame,
    plausible_rssi,
)
from edge_agent.sources.pcap import PcapReader, open_pcap

if TYPE_CHECKING:  # bleak stays out of module import (live only)
    from edge_agent.sources.ble_live import BleLiveSource

LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256
LINKTYPE_PPI = 192


class BleMatcher:
    """Sighting -> BleObs: RSSI bounds, then the survey match (or survey mode when site is None)."""

    def __init__(self, site: Site | None, stats: SourceStats) -> None:
        self.site = site
        self.stats = stats
        self.last_t = float("-inf")

    def observe(self, t: float, address: str, payload: AdvPayload | None,
                rssi_dbm: float | None) -> BleObs | None:
        stats = self.stats
        if rssi_dbm is None:
            stats.skip("no_signal")
            return None
        if not plausible_rssi(rssi_dbm):
            stats.skip("implausible_rssi")
            return None
        ib = payload.ibeacon if payload is not None else None
        if self.site is None:
            beacon_id = ib.beacon_id if ib is not None else address
        else:
            if ib is not None:
                beacon = self.site.beacon_for(address=address, uuid=ib.uuid, major=ib.major,
                                              minor=ib.minor)
            else:
                beacon = self.site.beacon_for(address=address)
            if beacon is None:
                stats.skip("not_surveyed")
                return None
            beacon_id = beacon.beacon_id
        if t < self.last_t:
            # A capture spliced from several sessions can step back; downstream needs order.
            stats.skip("out_of_order")
            return None
        self.last_t = t
        stats.observations += 1
        return BleObs(t, beacon_id, float(rssi_dbm), address)


def classify_frame(data: bytes, stats: SourceStats) -> tuple[str, AdvPayload | None,
                                                             int | None] | None:
    """A link-type-256 record -> (address, payload, rssi) for advertiser sightings, else counted."""
    try:
        frame = parse_phdr_frame(data)
    except FrameSkip as e:
        stats.skip(e.reason)
        return None
    if frame.access_address != ADV_ACCESS_ADDRESS:
        stats.skip("data_channel")
        return None
    if frame.pdu_type not in SIGHTING_PDUS:
        stats.skip("not_advertiser_pdu")  # SCAN_REQ, CONNECT_IND, ADV_DIRECT_IND, extended
        return None
    return frame.address, frame.payload, frame.rssi_dbm


class BleSource:
    """Iterate BleObs in time order; counters in `.stats`. Build with `.replay()` or `.live()`."""

    kind = "ble"

    def __init__(self, records: Iterator[BleObs] | None = None, *,
                 stats: SourceStats | None = None) -> None:
        self.stats = stats if stats is not None else SourceStats()
        self._records = records

    def __iter__(self) -> Iterator[BleObs]:
        if self._records is None:
            return iter(())
        return self._records

    @classmethod
    def replay(cls, path: str | Path, site: Site | None) -> BleSource:
        """Advertisements from a pcap/pcapng of link type 256 (CaptureError if not a capture)."""
        stats = SourceStats()
        reader = open_pcap(path, stats)  # opened now so a bad file fails at construction
        return cls(_replay(reader.path, reader, site, stats), stats=stats)

    @classmethod
    def live(cls, site: Site | None, backend: object | None = None, *, clock: Clock = system_clock,
             duration_s: float | None = None, adapter: str | None = None) -> BleLiveSource:
        """bleak's BleakScanner; `backend` is a BaseBleakScanner subclass (tests pass a fake)."""
        from edge_agent.sources.ble_live import BleLiveSource

        return BleLiveSource(site, backend=backend, clock=clock, duration_s=duration_s,
                             adapter=adapter)


def _replay(path: Path, reader: PcapReader, site: Site | None,
            stats: SourceStats) -> Iterator[BleObs]:
    matcher = BleMatcher(site, stats)
    warned: set[int] = set()
    with reader:
        for t, linktype, data in reader:
            if linktype != LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR:
                stats.skip("unsupported_linktype")
                if linktype not in warned:
                    warned.add(linktype)
                    stats.warn(_linktype_warning(path, linktype))
                continue
            sighting = classify_frame(data, stats)
            if sighting is None:
                continue
            obs = matcher.observe(t, *sighting)
            if obs is not None:
                yield obs


def _linktype_warning(path: Path, linktype: int) -> str:
    if linktype == LINKTYPE_PPI:
        return (f"{path}: link type 192 (PPI, e.g. Ubertooth) is not read: its RSSI is in raw "
                "receiver units, not dBm; capture with link type 256 (LE LL with PHDR)")
    return f"{path}: link type {linktype} is not BLE LE LL with PHDR (256); records skipped"
