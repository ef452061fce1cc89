"""Wi-Fi source: beacons and probe responses as WifiObs, from a capture file or a live radio.

Every path ends in one of two parse functions: `parse_radiotap_frame` for 802.11 frames with a
radiotap header (pcap replay and live monitor mode), and the scan-output parsers in wifi_live.py
(`iw` managed mode, Android Termux). Privacy: with a site, only surveyed BSSIDs are kept; other
MAC addresses are counted under "not_surveyed" and dropped on the spot.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.clock import Clock, system_clock
from edge_agent.observations import WifiObs
from edge_agent.sources.base import SourceStats
from edge_agent.sources.dot11 import (
    ADDR2_AT,
    FC1_ORDER,
    FIXED_FIELDS_LEN,
    HT_CONTROL_LEN,
    MGMT_HEADER_LEN,
    channel_to_freq,
    freq_to_channel,
    walk_elements,
)
from edge_agent.sources.pcap import open_pcap
from edge_agent.sources.radiotap import (
    EXT_BIT,
    FIELD_BITS,
    FLAG_BAD_FCS,
    FLAG_FCS_AT_END,
    LAYOUTS,
    MAX_PRESENCE_WORDS,
    MIN_HEADER_LEN,
    RADIOTAP_VERSION,
    TX_BIT,
    field_layout,
)

if TYPE_CHECKING:
    from edge_agent.site import Site
    from edge_agent.sources.wifi_live import FrameFeed, Runner

LINKTYPE_IEEE802_11 = 105
LINKTYPE_PRISM = 119
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_AVS = 163
LINKTYPE_PPI = 192

# Link types that carry 802.11 but no usable dBm signal for us: skipped with these reasons.
_OTHER_LINKTYPES: dict[int, tuple[str, str]] = {
    LINKTYPE_IEEE802_11: ("no_radiotap", "plain 802.11 without radiotap has no signal strength"),
    LINKTYPE_PRISM: ("prism_header", "Prism headers hold driver-specific signal units, not dBm"),
    LINKTYPE_AVS: ("avs_header", "AVS headers are not supported, use radiotap (link type 127)"),
    LINKTYPE_PPI: ("ppi_header", "PPI headers are not supported, use radiotap (link type 127)"),
}

# Received power outside this range is a driver placeholder, not a measurement: 0 dBm and above is
# what some drivers report for "unknown", and -128/-127 are common "invalid" sentinels below any
# receiver's sensitivity (about -100 dBm).
MAX_PLAUSIBLE_RSSI_DBM = -1
MIN_PLAUSIBLE_RSSI_DBM = -120

FCS_LEN = 4
_U32 = struct.Struct("<I")
_SIGNED_DBM = tuple(float(b - 256 if b > 127 else b) for b in range(256))  # s8 byte -> dBm
MIN_MGMT_LEN = MGMT_HEADER_LEN + FIXED_FIELDS_LEN
_FC0_BEACON = 0x80
_FC0_PROBE_RESP = 0x50

# Replayed frames may be slightly out of order (merged interfaces, driver queues). Sources must
# yield in time order, so a frame this much older than the last one is re-stamped to its time
# (a beacon's RSSI does not care about a few ms); anything older is dropped ("out_of_order").
REORDER_TOLERANCE_S = 1.0

# An AP sends the same first elements (SSID, rates, DS channel) in every beacon, ten times a
# second, so their parse result is kept per leading bytes: SSID (<= 34) + rates (<= 10) + DS (3)
# fit in 64. Bounded: cleared when full (thousands of distinct APs only cost speed).
ELEMENT_KEY_BYTES = 64
MAX_ELEMENT_RESULTS = 4096
_elements_seen: dict[bytes, tuple[str, int]] = {}

# WifiObs is a frozen slots dataclass whose generated __init__ costs 0.7 us, a third of the
# whole per-beacon budget. The hot path fills the same slots through their descriptors (0.3 us):
# equal objects, no validation skipped (WifiObs has none). Only while the fields are exactly
# these; if WifiObs ever changes, this switches itself off and the normal constructor is used.
_OBS_FIELDS = ("t", "bssid", "rssi_dbm", "channel", "freq_mhz", "ssid")
_Setter = Callable[[object, object], None]


def _slot_setters() -> tuple[_Setter, ...] | None:
    names = tuple(f.name for f in dataclasses.fields(WifiObs))
    if names != _OBS_FIELDS or hasattr(WifiObs, "__post_init__"):
        return None
    return tuple(getattr(WifiObs, name).__set__ for name in names)


def _no_setter(obj: object, value: object) -> None:
    raise AssertionError("unreachable: _FAST_OBS is False")


_SETTERS = _slot_setters()
_FAST_OBS = _SETTERS is not None
_new_obj = object.__new__
_set_t, _set_bssid, _set_rssi, _set_channel, _set_freq, _set_ssid = (
    _SETTERS or (_no_setter,) * len(_OBS_FIELDS))


def parse_radiotap_frame(data: bytes, t_s: float, stats: SourceStats,
                         surveyed: Container[str] | None = None) -> WifiObs | None:
    """One radiotap + 802.11 frame -> WifiObs, or None with the reason counted in `stats`.

    Only beacons and probe responses with a plausible dBm_AntSignal count; `surveyed` (lower-case
    BSSIDs) keeps only those, None keeps all (survey mode). The caller counts what it emits.

    This is the replay hot path: radiotap.parse_radiotap and the 802.11 header part of
    dot11.parse_mgmt are inlined (same layout table, same rules), and dot11.walk_elements results
    are reused per leading element bytes; tests/unit/test_wifi_parse.py pins all of it to the
    reference parsers by property tests.
    """
    n = len(data)
    if n < MIN_HEADER_LEN or data[0] != RADIOTAP_VERSION:
        stats.skip("bad_radiotap")
        return None
    it_len = data[2] | (data[3] << 8)
    if it_len < MIN_HEADER_LEN or it_len > n:
        stats.skip("bad_radiotap")
        return None
    if it_len == n:
        stats.skip("bad_dot11")
        return None
    fc0 = data[it_len]
    if fc0 != _FC0_BEACON and fc0 != _FC0_PROBE_RESP:
        stats.skip("not_beacon")  # cheap: one byte decides, before any header parsing
        return None
    # -- radiotap: presence-word chain, then the cached field layout ------------------------
    present = _U32.unpack_from(data, 4)[0]
    start = 8
    if present & EXT_BIT:
        word = present
        while word & EXT_BIT:
            if start + 4 > it_len or start >= 4 + 4 * MAX_PRESENCE_WORDS:
                stats.skip("bad_radiotap")
                return None
            word = _U32.unpack_from(data, start)[0]
            start += 4
    key = (present & FIELD_BITS) | (start << 8)
    flags_at, chan_at, sig_at, fields_end = LAYOUTS.get(key) or field_layout(key)
    if fields_end > it_len:
        stats.skip("bad_radiotap")
        return None
    if sig_at < 0 or present & TX_BIT:
        stats.skip("no_signal")  # never read as 0 dBm
        return None
    signal = _SIGNED_DBM[data[sig_at]]
    flags = data[flags_at] if flags_at >= 0 else 0
    freq_mhz = data[chan_at] | (data[chan_at + 1] << 8) if chan_at >= 0 else 0
    end = n
    if flags & FLAG_BAD_FCS:
        stats.skip("bad_fcs")
        return None
    if flags & FLAG_FCS_AT_END:
        # Not re-checked here: the driver sets FLAG_BAD_FCS when its check fails, and edited
        # captures (scapy's bad-RSN sample) carry stale FCS bytes on a good frame.
        end -= FCS_LEN
    pos = it_len + MIN_MGMT_LEN
    if pos > end or (data[it_len + 1] & FC1_ORDER and pos + HT_CONTROL_LEN > end):
        stats.skip("bad_dot11")
        return None
    if data[it_len + 1] & FC1_ORDER:
        pos += HT_CONTROL_LEN
    if signal < MIN_PLAUSIBLE_RSSI_DBM or signal > MAX_PLAUSIBLE_RSSI_DBM:
        stats.skip("bad_signal")
        return None
    # -- 802.11 management header and elements -------------------------------------------
    a2 = it_len + ADDR2_AT
    bssid = data[a2:a2 + 6].hex(":")
    if surveyed is not None and bssid not in surveyed:
        stats.skip("not_surveyed")  # privacy: the address goes no further
        return None
    key = data[pos:pos + ELEMENT_KEY_BYTES] if end - pos > ELEMENT_KEY_BYTES else data[pos:end]
    elements = _elements_seen.get(key)
    if elements is None:
        elements = _elements_uncached(data, pos, end, key)
    ssid, channel = elements
    if not channel:
        channel = freq_to_channel(freq_mhz)
    if not freq_mhz:
        freq_mhz = channel_to_freq(channel)
    if _FAST_OBS:
        obs: WifiObs = _new_obj(WifiObs)
        _set_t(obs, t_s)
        _set_bssid(obs, bssid)
        _set_rssi(obs, signal)
        _set_channel(obs, channel)
        _set_freq(obs, freq_mhz)
        _set_ssid(obs, ssid)
        return obs
    return WifiObs(t_s, bssid, signal, channel, freq_mhz, ssid)


def _elements_uncached(data: bytes, pos: int, end: int, key: bytes) -> tuple[str, int]:
    """Walk the elements; remember the result when the key bytes alone determine it."""
    ssid, channel, both = walk_elements(key, 0, len(key))
    if both or len(key) == end - pos:
        # Found both inside the key (a walk over more bytes takes the same steps), or the key
        # is all the elements there are: the result is a function of the key.
        if len(_elements_seen) >= MAX_ELEMENT_RESULTS:
            _elements_seen.clear()
        _elements_seen[key] = (ssid, channel)
        return ssid, channel
    ssid, channel, _ = walk_elements(data, pos, end)
    return ssid, channel


def surveyed_bssids(site: Site | None) -> frozenset[str] | None:
    """The BSSIDs a site keeps (lower case), or None for survey mode (keep every AP)."""
    if site is None:
        return None
    return frozenset(ap.bssid.lower() for ap in site.wifi_aps)


class WifiSource:
    """Wi-Fi observations in time order, with counters; build it with replay() or a live_*()."""

    kind = "wifi"

    def __init__(self, produce: Callable[[SourceStats], Iterable[WifiObs]],
                 stats: SourceStats | None = None) -> None:
        """`produce(stats)` yields the observations and counts them in stats.observations."""
        self.stats = stats if stats is not None else SourceStats()
        self._produce = produce

    def __iter__(self) -> Iterator[WifiObs]:
        return iter(self._produce(self.stats))

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def replay(cls, path: str | Path, site: Site | None) -> WifiSource:
        """Frames from a pcap/pcapng file (CaptureError now if it is not one). Iterate once."""
        stats = SourceStats()
        reader = open_pcap(path, stats)
        surveyed = surveyed_bssids(site)

        def produce(stats: SourceStats) -> Iterator[WifiObs]:
            # no `with`: one generator level less per frame; the mapping closes with the reader
            return frames_to_obs(reader, stats, surveyed, str(path))

        return cls(produce, stats)

    @classmethod
    def from_frames(cls, frames: Iterable[tuple[float, int, bytes]], site: Site | None,
                    name: str = "frames") -> WifiSource:
        """(t_s, linktype, data) records from anywhere (tests, other readers), like replay()."""
        surveyed = surveyed_bssids(site)

        def produce(stats: SourceStats) -> Iterator[WifiObs]:
            return frames_to_obs(frames, stats, surveyed, name)

        return cls(produce)

    @classmethod
    def live_monitor(cls, iface: str, site: Site | None, channels: Sequence[int] | None = None,
                     dwell_s: float = 0.25, *, runner: Runner | None = None,
                     feed: FrameFeed | None = None, clock: Clock = system_clock) -> WifiSource:
        """Monitor-mode interface through a raw socket, hopping channels (site's or 1/6/11)."""
        from edge_agent.sources.wifi_live import monitor_producer

        return cls(monitor_producer(iface, site, channels, dwell_s, runner=runner, feed=feed,
                                    clock=clock))

    @classmethod
    def live_iw(cls, iface: str, site: Site | None, interval_s: float = 5.0, *,
                runner: Runner | None = None, clock: Clock = system_clock,
                sleep: Callable[[float], None] | None = None, polls: int | None = None,
                trigger: bool = True) -> WifiSource:
        """Managed mode: `iw dev IFACE scan` every interval_s (no monitor mode needed)."""
        from edge_agent.sources.wifi_live import iw_producer

        return cls(iw_producer(iface, site, interval_s, runner=runner, clock=clock, sleep=sleep,
                               polls=polls, trigger=trigger))

    @classmethod
    def live_termux(cls, site: Site | None, interval_s: float = 10.0, *,
                    runner: Runner | None = None, clock: Clock = system_clock,
                    boottime: Clock | None = None, sleep: Callable[[float], None] | None = None,
                    polls: int | None = None) -> WifiSource:
        """Android: `termux-wifi-scaninfo` (the phone's last scan) every interval_s."""
        from edge_agent.sources.wifi_live import termux_producer

        return cls(termux_producer(site, interval_s, runner=runner, clock=clock,
                                   boottime=boottime, sleep=sleep, polls=polls))


def frames_to_obs(frames: Iterable[tuple[float, int, bytes]], stats: SourceStats,
                  surveyed: Container[str] | None, name: str,
                  tolerance_s: float = REORDER_TOLERANCE_S) -> Iterator[WifiObs]:
    """(t_s, linktype, data) records -> WifiObs in time order, counted in stats.observations.

    A frame stamped up to tolerance_s before the previous observation is re-stamped to that time
    (a warning says how many); an older one is dropped ("out_of_order"). One loop on purpose: this
    is the hot path of a replay.
    """
    parse = parse_radiotap_frame
    last_t = float("-inf")
    restamped = 0
    for t_s, linktype, data in frames:
        if linktype != LINKTYPE_IEEE802_11_RADIOTAP:
            stats.skip(_linktype_reason(linktype, stats, name))
            continue
        obs = parse(data, t_s, stats, surveyed)
        if obs is None:
            continue
        if t_s < last_t:
            if t_s < last_t - tolerance_s:
                stats.skip("out_of_order")
                continue
            restamped += 1
            obs = dataclasses.replace(obs, t=last_t)
        last_t = t_s if t_s > last_t else last_t
        stats.observations += 1
        yield obs
    if restamped:
        stats.warn(f"{name}: {restamped} frames were up to {tolerance_s} s out of time order; "
                   "they were re-stamped to the previous frame's time")


@functools.lru_cache(maxsize=64)
def _linktype_reason_text(linktype: int) -> tuple[str, str]:
    return _OTHER_LINKTYPES.get(
        linktype, (f"linktype_{linktype}", "not a Wi-Fi radiotap link type"))


def _linktype_reason(linktype: int, stats: SourceStats, name: str) -> str:
    """The skip reason for a link type we do not parse; warns once per source and link type."""
    reason, why = _linktype_reason_text(linktype)
    if stats.skipped[reason] == 0:
        stats.warn(f"{name}: link type {linktype}: {why}; its frames are skipped "
                   f"(counted as {reason!r})")
    return reason
