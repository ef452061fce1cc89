"""Live Wi-Fi adapters: monitor mode (raw socket + channel hopping), `iw` scans, Termux scans.

Each is thin: it gets bytes or text from the platform and hands them to one parse function.
Seams for tests and other platforms: a `Runner` (argv -> stdout) for every command, a `FrameFeed`
(iface -> (t_s or None, frame) records) for the raw socket, and the clock. scapy is imported
only inside `scapy_feed`, so this module imports on a phone without it.

Timestamps: monitor mode uses the kernel's receive time of each frame (the socket's timestamp,
the clock seam when it has none). Scan outputs use the scan's own time of each result: `iw`'s
"last seen: N ms ago" (t = clock at output - N ms) and Termux's "timestamp" (microseconds since
boot when Android last saw the AP: t = clock - (boottime now - timestamp)).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_agent.clock import Clock, system_clock
from edge_agent.errors import SourceError
from edge_agent.observations import WifiObs
from edge_agent.sources.base import SourceStats
from edge_agent.sources.dot11 import channel_to_freq, freq_to_channel
from edge_agent.sources.wifi import (
    MAX_PLAUSIBLE_RSSI_DBM,
    MIN_PLAUSIBLE_RSSI_DBM,
    parse_radiotap_frame,
    surveyed_bssids,
)

if TYPE_CHECKING:
    from edge_agent.site import Site

Runner = Callable[[Sequence[str]], str]
"""Runs a command (argv) and returns its stdout; raises SourceError when it fails."""

FrameFeed = Callable[[str], Iterable[tuple[float | None, bytes]]]
"""Opens an interface and yields (receive time or None, radiotap frame) as they arrive."""

Producer = Callable[[SourceStats], Iterator[WifiObs]]

DEFAULT_CHANNELS = (1, 6, 11)  # the non-overlapping 2.4 GHz channels most plant APs use
ARPHRD_IEEE80211_RADIOTAP = 803  # Linux link type of a monitor-mode interface with radiotap
MAX_FRAME_BYTES = 65535
COMMAND_TIMEOUT_S = 30.0  # a triggered `iw` scan takes 3-5 s; far longer means it hung
# A result whose time is within this of the same AP's previous one is that result again (the
# scan cache shown twice); the slack covers ms rounding and the command's own run time.
REPEAT_TOLERANCE_S = 0.2
IW_BUSY = "(-16)"  # "command failed: Device or resource busy (-16)": a scan already running


def run_command(argv: Sequence[str]) -> str:
    """Run argv and return its stdout; SourceError naming the command when it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False,
                              timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise SourceError(f"{argv[0]}: command not found (install it, or check PATH)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"{' '.join(argv)}: no answer after {COMMAND_TIMEOUT_S:.0f} s") from None
    except OSError as e:
        raise SourceError(f"{' '.join(argv)}: {e}") from None
    if done.returncode != 0:
        err = (done.stderr or done.stdout).strip().splitlines()
        detail = err[-1] if err else f"exit status {done.returncode}"
        raise SourceError(f"{' '.join(argv)}: {detail}")
    return done.stdout


def site_channels(site: Site | None) -> tuple[int, ...]:
    """The channels the site's APs use (sorted), or 1/6/11 without a site or channels."""
    chans = sorted({ap.channel for ap in site.wifi_aps if ap.channel > 0}) if site else []
    return tuple(chans) or DEFAULT_CHANNELS


# -- monitor mode --------------------------------------------------------------------------------

class ChannelHopper:
    """Tunes a monitor interface round the channels, dwell_s on each, in a daemon thread.

    A channel the driver refuses (regulatory domain, band) is dropped with a warning; when none
    is left the hopper stops and the interface stays where it is.
    """

    def __init__(self, iface: str, channels: Sequence[int], dwell_s: float, runner: Runner,
                 stats: SourceStats) -> None:
        if dwell_s <= 0:
            raise SourceError(f"channel dwell must be positive (got {dwell_s!r} s)")
        self.iface = iface
        self.channels = list(channels)
        self.dwell_s = dwell_s
        self.runner = runner
        self.stats = stats
        self._next = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int | None:
        """Tune to the next channel; returns it, or None when no channel can be set."""
        while self.channels:
            self._next %= len(self.channels)
            ch = self.channels[self._next]
            try:
                self.runner(["iw", "dev", self.iface, "set", "channel", str(ch)])
            except SourceError as e:
                self.stats.warn(f"{self.iface}: channel {ch} dropped from hopping: {e}")
                del self.channels[self._next]
                continue
            self._next += 1
            return ch
        return None

    def start(self) -> None:
        """Tune the first channel now, then hop in a thread (when there is more than one)."""
        if self.step() is None or len(self.channels) < 2:
            return
        self._thread = threading.Thread(target=self._run, name=f"hop-{self.iface}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.dwell_s):
            if self.step() is None:
                return

    @property
    def hopping(self) -> bool:
        """True while the hopping thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.dwell_s + COMMAND_TIMEOUT_S)


def scapy_feed(iface: str) -> Iterator[tuple[float | None, bytes]]:
    """Raw frames from a monitor-mode interface through scapy's L2 listen socket (no dissection).

    Opens and checks the socket now (SourceError if it cannot), then reads as iterated.
    """
    try:
        import scapy.arch  # noqa: F401 - loading it sets conf.L2listen for this platform
        from scapy.config import conf
    except ImportError:
        raise SourceError("live Wi-Fi monitor mode needs scapy (pip install scapy)") from None
    try:
        sock: Any = conf.L2listen(iface=iface)
    except PermissionError:
        raise SourceError(f"{iface}: opening a raw socket needs root or CAP_NET_RAW") from None
    except (OSError, ValueError) as e:  # scapy raises ValueError for an unknown interface
        raise SourceError(f"{iface}: cannot open the interface: {e}") from None
    arphrd = sock.ins.getsockname()[3]
    if arphrd != ARPHRD_IEEE80211_RADIOTAP:
        sock.close()
        raise SourceError(
            f"{iface}: not in monitor mode with radiotap (link type {arphrd}); set it with: "
            f"ip link set {iface} down && iw dev {iface} set type monitor && "
            f"ip link set {iface} up")
    return _read_socket(sock)


def _read_socket(sock: Any) -> Iterator[tuple[float | None, bytes]]:
    try:
        while True:
            _cls, data, ts = sock.recv_raw(MAX_FRAME_BYTES)
            if data:
                yield (float(ts) if ts is not None else None), bytes(data)
    finally:
        sock.close()


def monitor_producer(iface: str, site: Site | None, channels: Sequence[int] | None,
                     dwell_s: float, *, runner: Runner | None = None,
                     feed: FrameFeed | None = None, clock: Clock = system_clock) -> Producer:
    """Observations from a monitor-mode interface while a ChannelHopper tunes it."""
    chans = tuple(channels) if channels else site_channels(site)
    surveyed = surveyed_bssids(site)

    def produce(stats: SourceStats) -> Iterator[WifiObs]:
        frames = (feed or scapy_feed)(iface)  # the socket is open before the first tuning
        hopper = ChannelHopper(iface, chans, dwell_s, runner or run_command, stats)
        hopper.start()
        last_t = float("-inf")
        try:
            for ts, data in frames:
                t_s = ts if ts is not None else clock()
                obs = parse_radiotap_frame(data, t_s, stats, surveyed)
                if obs is None:
                    continue
                if t_s < last_t:  # the wall clock stepped back: keep order, keep the frame
                    obs = WifiObs(last_t, obs.bssid, obs.rssi_dbm, obs.channel, obs.freq_mhz,
                                  obs.ssid)
                last_t = obs.t
                stats.observations += 1
                yield obs
        finally:
            hopper.stop()

    return produce


# -- scan outputs: shared ordering ---------------------------------------------------------------

class _ScanEmitter:
    """Orders one scan's results and drops results already emitted by an earlier scan."""

    def __init__(self, stats: SourceStats) -> None:
        self.stats = stats
        self.last_by_bssid: dict[str, float] = {}
        self.last_t = float("-inf")

    def emit(self, results: list[WifiObs]) -> Iterator[WifiObs]:
        for obs in sorted(results, key=lambda o: o.t):
            if obs.t <= self.last_by_bssid.get(obs.bssid, float("-inf")) + REPEAT_TOLERANCE_S:
                self.stats.skip("repeated_result")  # the scan cache showing the same sighting
                continue
            if obs.t < self.last_t:
                self.stats.skip("stale_result")  # older than what was already emitted
                continue
            self.last_by_bssid[obs.bssid] = obs.t
            self.last_t = obs.t
            self.stats.observations += 1
            yield obs


def _polls(polls: int | None, interval_s: float,
           sleep: Callable[[float], None]) -> Iterator[int]:
    n = 0
    while polls is None or n < polls:
        if n:
            sleep(interval_s)
        yield n
        n += 1


def _keep(bssid: str, rssi_dbm: float | None, surveyed: frozenset[str] | None,
          stats: SourceStats) -> bool:
    if rssi_dbm is None:
        stats.skip("no_signal")
        return False
    if not MIN_PLAUSIBLE_RSSI_DBM <= rssi_dbm <= MAX_PLAUSIBLE_RSSI_DBM:
        stats.skip("bad_signal")
        return False
    if surveyed is not None and bssid not in surveyed:
        stats.skip("not_surveyed")
        return False
    return True


# -- iw dev IFACE scan (managed mode) ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class IwBss:
    """One BSS block of `iw dev IFACE scan` output."""

    bssid: str
    ssid: str = ""
    freq_mhz: int = 0
    signal_dbm: float | None = None
    seen_ms_ago: int | None = None
    ds_channel: int = 0


_IW_BSS = re.compile(r"^BSS ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})")
_IW_FREQ = re.compile(r"^\s+freq:\s*(\d+)(?:\.\d+)?\s*$")
_IW_SIGNAL = re.compile(r"^\s+signal:\s*(-?\d+)(?:\.(-?\d+))?\s*dBm")
_IW_SEEN = re.compile(r"^\s+last seen:\s*(\d+)\s*ms ago")
_IW_SSID = re.compile(r"^\s+SSID: ?(.*)$")
_IW_DS = re.compile(r"^\s+DS Parameter set: channel (\d+)")
_IW_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def parse_iw_scan(text: str) -> list[IwBss]:
    """Every BSS block of `iw dev IFACE scan` (or `scan dump`) output; unknown lines ignored."""
    out: list[IwBss] = []
    cur: dict[str, Any] | None = None
    for line in text.splitlines():
        m = _IW_BSS.match(line)
        if m:
            if cur is not None:
                out.append(IwBss(**cur))
            cur = {"bssid": m.group(1).lower()}
            continue
        if cur is None:
            continue
        if (m := _IW_FREQ.match(line)) and "freq_mhz" not in cur:
            cur["freq_mhz"] = int(m.group(1))
        elif (m := _IW_SIGNAL.match(line)) and "signal_dbm" not in cur:
            cur["signal_dbm"] = _iw_signal(m.group(1), m.group(2))
        elif m := _IW_SEEN.match(line):
            cur["seen_ms_ago"] = int(m.group(1))
        elif (m := _IW_SSID.match(line)) and "ssid" not in cur:
            cur["ssid"] = _iw_unescape(m.group(1))
        elif (m := _IW_DS.match(line)) and "ds_channel" not in cur:
            cur["ds_channel"] = int(m.group(1))
    if cur is not None:
        out.append(IwBss(**cur))
    return out


def _iw_signal(whole: str, frac: str | None) -> float:
    # iw prints mBm with "%d.%.2d", so -45.5 dBm comes out as "-45.-50"
    frac = frac or "0"
    value = abs(int(whole)) + abs(int(frac)) / 100.0
    return -value if whole.startswith("-") or frac.startswith("-") else value


def _iw_unescape(shown: str) -> str:
    # iw prints non-printable SSID bytes (and a leading/trailing space, and '\') as \xNN
    raw = _IW_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), shown.encode("utf-8"))
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def iw_to_obs(entries: Iterable[IwBss], now_s: float, stats: SourceStats,
              surveyed: frozenset[str] | None) -> list[WifiObs]:
    """iw BSS entries seen at now_s -> WifiObs stamped with each entry's own last-seen time."""
    out = []
    for e in entries:
        rssi_dbm = e.signal_dbm
        if not _keep(e.bssid, rssi_dbm, surveyed, stats) or rssi_dbm is None:
            continue
        t_s = now_s - (e.seen_ms_ago or 0) / 1000.0
        channel = e.ds_channel or freq_to_channel(e.freq_mhz)
        freq = e.freq_mhz or channel_to_freq(channel)
        out.append(WifiObs(t_s, e.bssid, rssi_dbm, channel, freq, e.ssid))
    return out


def iw_producer(iface: str, site: Site | None, interval_s: float, *, runner: Runner | None = None,
                clock: Clock = system_clock, sleep: Callable[[float], None] | None = None,
                polls: int | None = None, trigger: bool = True) -> Producer:
    """Poll `iw dev IFACE scan` (trigger=False: `scan dump`, the cache, no root needed)."""
    argv = ["iw", "dev", iface, "scan"] + ([] if trigger else ["dump"])
    surveyed = surveyed_bssids(site)
    run = runner or run_command

    def produce(stats: SourceStats) -> Iterator[WifiObs]:
        emitter = _ScanEmitter(stats)
        for _ in _polls(polls, interval_s, sleep or time.sleep):
            try:
                text = run(argv)
            except SourceError as e:
                if IW_BUSY in str(e):
                    stats.skip("scan_busy")  # another scan is running; try again next poll
                    continue
                raise
            yield from emitter.emit(iw_to_obs(parse_iw_scan(text), clock(), stats, surveyed))

    return produce


# -- termux-wifi-scaninfo (Android) --------------------------------------------------------------

def boottime_clock() -> float:
    """Seconds since boot including deep sleep: the clock Android's scan timestamps use."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def parse_termux_scan(text: str, now_s: float, boot_now_s: float, stats: SourceStats,
                      surveyed: frozenset[str] | None) -> list[WifiObs]:
    """termux-wifi-scaninfo JSON -> WifiObs; SourceError for its API_ERROR objects."""
    if not text.strip():
        raise SourceError("termux-wifi-scaninfo printed nothing: is the Termux:API app "
                          "installed and allowed location access?")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SourceError(f"termux-wifi-scaninfo: not JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict):
        err = data.get("API_ERROR", "unexpected JSON object")
        raise SourceError(f"termux-wifi-scaninfo: {err}")
    if not isinstance(data, list):
        raise SourceError(f"termux-wifi-scaninfo: expected a JSON list, got {type(data).__name__}")
    out = []
    for entry in data:
        obs = _termux_entry(entry, now_s, boot_now_s, stats, surveyed)
        if obs is not None:
            out.append(obs)
    return out


def _termux_entry(entry: Any, now_s: float, boot_now_s: float, stats: SourceStats,
                  surveyed: frozenset[str] | None) -> WifiObs | None:
    if not isinstance(entry, dict):
        stats.skip("bad_scan_entry")
        return None
    bssid = entry.get("bssid")
    rssi = entry.get("rssi")
    freq = entry.get("frequency_mhz", 0)
    stamp_us = entry.get("timestamp")
    if (not isinstance(bssid, str) or not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", bssid)
            or not isinstance(freq, int) or not isinstance(stamp_us, int)
            or (rssi is not None and not isinstance(rssi, int | float))):
        stats.skip("bad_scan_entry")
        return None
    bssid = bssid.lower()
    if not _keep(bssid, rssi, surveyed, stats) or rssi is None:
        return None
    t_s = now_s - (boot_now_s - stamp_us / 1e6)
    ssid = entry.get("ssid") if isinstance(entry.get("ssid"), str) else ""
    return WifiObs(t_s, bssid, float(rssi), freq_to_channel(freq), freq, ssid or "")


def termux_producer(site: Site | None, interval_s: float, *, runner: Runner | None = None,
                    clock: Clock = system_clock, boottime: Clock | None = None,
                    sleep: Callable[[float], None] | None = None,
                    polls: int | None = None) -> Producer:
    """Poll `termux-wifi-scaninfo`: the results of Android's latest scan (it does not scan)."""
    surveyed = surveyed_bssids(site)
    run = runner or run_command
    boot = boottime or boottime_clock

    def produce(stats: SourceStats) -> Iterator[WifiObs]:
        emitter = _ScanEmitter(stats)
        for _ in _polls(polls, interval_s, sleep or time.sleep):
            text = run(["termux-wifi-scaninfo"])
            results = parse_termux_scan(text, clock(), boot(), stats, surveyed)
            yield from emitter.emit(results)

    return produce
