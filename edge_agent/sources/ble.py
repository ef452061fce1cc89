"""BLE beacon source: advertisements from a link-type-256 pcap (replay) or bleak's scanner (live).

Both paths turn (time, address, advertisement payload, RSSI) into a BleObs through BleMatcher:
`beacon_id` (the site's survey match: the privacy filter) and `emit` (RSSI sanity bounds, order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.clock import Clock, system_clock
from edge_agent.observations import BleObs
from edge_agent.site import Site
from edge_agent.sources.base import SourceStats
from edge_agent.sources.ble_adv import (
    ADV_ACCESS_ADDRESS,
    FLAG_CRC_CHECKED,
    FLAG_CRC_VALID,
    FLAG_SIGNAL_VALID,
    PHDR_LEN,
    RSSI_MAX_DBM,
    RSSI_MIN_DBM,
    SIGHTING_PDUS,
    AdvPayload,
    FrameSkip,
    parse_phdr_frame,
)
from edge_agent.sources.pcap import PcapReader, open_pcap

if TYPE_CHECKING:  # bleak stays out of module import (live only)
    from edge_agent.sources.ble_live import BleLiveSource

LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR = 256
LINKTYPE_PPI = 192


# Distinct link-layer packets remembered by the replay: a beacon repeats the same bytes (only
# the PHDR's signal and channel change), so decoding once per packet makes replay ~10x faster
# (docs/benchmarks.md).
# Bounded so that a capture full of distinct data-channel packets cannot grow memory.
MAX_CACHED_PACKETS = 4096
# PHDR signal byte (s8) -> dBm, None where BleMatcher.emit would skip it as "implausible_rssi"
_PLAUSIBLE_DBM = tuple(v if RSSI_MIN_DBM <= v <= RSSI_MAX_DBM else None
                       for v in (float(b - 256 if b > 127 else b) for b in range(256)))

# BleObs is a frozen slots dataclass whose generated __init__ costs 0.5 us per sighting; filling
# its slots through their descriptors costs 0.3 us (same objects; as in sources/wifi.py). Only
# while the fields are exactly these, else the normal constructor is used.
_OBS_FIELDS = ("t", "beacon_id", "rssi_dbm", "address")
_Setter = Callable[[object, object], None]


def _slot_setters() -> tuple[_Setter, ...] | None:
    names = tuple(f.name for f in dataclasses.fields(BleObs))
    if names != _OBS_FIELDS or hasattr(BleObs, "__post_init__"):
        return None
    return tuple(getattr(BleObs, name).__set__ for name in names)


def _no_setter(obj: object, value: object) -> None:
    raise AssertionError("unreachable: _FAST_OBS is False")


_SETTERS = _slot_setters()
_FAST_OBS = _SETTERS is not None
_new_obj = object.__new__
_set_t, _set_id, _set_rssi, _set_address = _SETTERS or (_no_setter,) * len(_OBS_FIELDS)


class BleMatcher:
    """Sighting -> BleObs: RSSI bounds, then the survey match (or survey mode when site is None).

    `beacons_only` (survey mode, what `edge-agent survey` asks for): keep iBeacon and Eddystone
    advertisers and `known_addresses` only; phones and wearables are counted as "not_beacon".
    """

    def __init__(self, site: Site | None, stats: SourceStats, *, beacons_only: bool = False,
                 known_addresses: Iterable[str] = ()) -> None:
        self.site = site
        self.stats = stats
        self.last_t = float("-inf")
        self.beacons_only = beacons_only
        self.known_addresses = frozenset(a.upper() for a in known_addresses)

    def not_beacon(self, address: str, payload: AdvPayload | None) -> bool:
        """True when survey mode keeps beacons only and this advertiser is none (a person's
        device, not plant infrastructure: it must not reach a survey or a draft site.json)."""
        if self.site is not None or not self.beacons_only:
            return False
        if payload is not None and (payload.ibeacon is not None
                                    or payload.eddystone is not None):
            return False
        return address.upper() not in self.known_addresses

    def beacon_id(self, address: str, payload: AdvPayload | None) -> str | None:
        """The site's id for this advertiser (None: not surveyed); survey mode: iBeacon id or
        address."""
        ib = payload.ibeacon if payload is not None else None
        if self.site is None:
            return ib.beacon_id if ib is not None else address
        if ib is not None:
            beacon = self.site.beacon_for(address=address, uuid=ib.uuid, major=ib.major,
                                          minor=ib.minor)
        else:
            beacon = self.site.beacon_for(address=address)
        return beacon.beacon_id if beacon is not None else None

    def observe(self, t: float, address: str, payload: AdvPayload | None,
                rssi_dbm: float | None) -> BleObs | None:
        if self.not_beacon(address, payload):
            self.stats.skip("not_beacon")
            return None
        return self.emit(t, address, self.beacon_id(address, payload), rssi_dbm)

    def emit(self, t: float, address: str, beacon_id: str | None,
             rssi_dbm: float | None) -> BleObs | None:
        """The sighting as a BleObs, or None counted under its reason (replay's _replay inlines
        these checks in this order: change both)."""
        stats = self.stats
        if rssi_dbm is None:
            stats.skip("no_signal")
            return None
        if not RSSI_MIN_DBM <= rssi_dbm <= RSSI_MAX_DBM:  # ble_adv.plausible_rssi, inlined
            stats.skip("implausible_rssi")
            return None
        if beacon_id is None:
            stats.skip("not_surveyed")
            return None
        if t < self.last_t:
            # A capture spliced from several sessions can step back; downstream needs order.
            stats.skip("out_of_order")
            return None
        self.last_t = t
        stats.observations += 1
        if _FAST_OBS:
            obs: BleObs = _new_obj(BleObs)
            _set_t(obs, t)
            _set_id(obs, beacon_id)
            _set_rssi(obs, float(rssi_dbm))
            _set_address(obs, address)
            return obs
        return BleObs(t, beacon_id, float(rssi_dbm), address)


def _classify_packet(ll: bytes, matcher: BleMatcher) -> str | tuple[str, str | None]:
    """Link-layer bytes (access address onward) -> skip reason, or (address, beacon_id|None)."""
    try:
        frame = parse_phdr_frame(_NEUTRAL_PHDR + ll)
    except FrameSkip as e:
        return e.reason
    if frame.access_address != ADV_ACCESS_ADDRESS:
        return "data_channel"
    if frame.pdu_type not in SIGHTING_PDUS:
        return "not_advertiser_pdu"  # SCAN_REQ, CONNECT_IND, ADV_DIRECT_IND, extended
    if matcher.not_beacon(frame.address, frame.payload):
        return "not_beacon"
    return frame.address, matcher.beacon_id(frame.address, frame.payload)


_NEUTRAL_PHDR = bytes(PHDR_LEN)  # no flags: CRC and signal are judged from the real PHDR


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
    def replay(cls, path: str | Path, site: Site | None, *, beacons_only: bool = False,
               known_addresses: Iterable[str] = ()) -> BleSource:
        """Advertisements from a pcap/pcapng of link type 256 (CaptureError if not a capture);
        `beacons_only`/`known_addresses`: survey mode's privacy filter (BleMatcher)."""
        stats = SourceStats()
        reader = open_pcap(path, stats)  # opened now so a bad file fails at construction
        matcher = BleMatcher(site, stats, beacons_only=beacons_only,
                             known_addresses=known_addresses)
        return cls(_replay(reader.path, reader, matcher), stats=stats)

    @classmethod
    def live(cls, site: Site | None, backend: object | None = None, *, clock: Clock = system_clock,
             duration_s: float | None = None, adapter: str | None = None) -> BleLiveSource:
        """bleak's BleakScanner; `backend` is a BaseBleakScanner subclass (tests pass a fake)."""
        from edge_agent.sources.ble_live import BleLiveSource

        return BleLiveSource(site, backend=backend, clock=clock, duration_s=duration_s,
                             adapter=adapter)


def _replay(path: Path, reader: PcapReader, matcher: BleMatcher) -> Iterator[BleObs]:
    """The replay loop: BleMatcher.emit's checks inlined, in its order, with the RSSI bounds
    looked up per PHDR signal byte (a method call and four comparisons less per sighting: 0.1 us
    of its 0.7 us, -18 ms on a 30-minute dense_ble bundle; a property test holds it to emit)."""
    stats = matcher.stats
    skip = stats.skip
    warned: set[int] = set()
    # link-layer bytes -> (address, beacon_id|None), or (None, skip reason)
    cache: dict[bytes, tuple[str | None, str | None]] = {}
    get = cache.get
    rssi_of = _PLAUSIBLE_DBM
    min_len = PHDR_LEN + 4
    crc_bad_mask = FLAG_CRC_CHECKED | FLAG_CRC_VALID
    last_t = matcher.last_t
    with reader:
        for t, linktype, data in reader:
            if linktype != LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR:
                skip("unsupported_linktype")
                if linktype not in warned:
                    warned.add(linktype)
                    stats.warn(_linktype_warning(path, linktype))
                continue
            if len(data) < min_len:
                skip("truncated")
                continue
            flags = data[8] | data[9] << 8
            if flags & crc_bad_mask == FLAG_CRC_CHECKED:  # checked and not valid
                skip("crc_invalid")
                continue
            ll = data[PHDR_LEN:]
            hit = get(ll)
            if hit is None:
                if len(cache) >= MAX_CACHED_PACKETS:
                    cache.clear()
                got = _classify_packet(ll, matcher)
                hit = cache[ll] = (None, got) if isinstance(got, str) else got
            address, beacon_id = hit
            if address is None:
                skip(beacon_id)  # type: ignore[arg-type]  # (None, reason)
                continue
            # from here on BleMatcher.emit, inlined
            if not flags & FLAG_SIGNAL_VALID:
                skip("no_signal")
                continue
            rssi_dbm = rssi_of[data[1]]
            if rssi_dbm is None:
                skip("implausible_rssi")
                continue
            if beacon_id is None:
                skip("not_surveyed")
                continue
            if t < last_t:
                skip("out_of_order")
                continue
            last_t = t
            stats.observations += 1
            if _FAST_OBS:
                obs: BleObs = _new_obj(BleObs)
                _set_t(obs, t)
                _set_id(obs, beacon_id)
                _set_rssi(obs, rssi_dbm)
                _set_address(obs, address)
                yield obs
            else:
                yield BleObs(t, beacon_id, rssi_dbm, address)


def _linktype_warning(path: Path, linktype: int) -> str:
    if linktype == LINKTYPE_PPI:
        return (f"{path}: link type 192 (PPI, e.g. Ubertooth) is not read: its RSSI is in raw "
                "receiver units, not dBm; capture with link type 256 (LE LL with PHDR)")
    return f"{path}: link type {linktype} is not BLE LE LL with PHDR (256); records skipped"
