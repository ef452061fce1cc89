"""Live Wi-Fi adapters fed through their seams: recorded command output, a fake frame feed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from wifi_frames import beacon, make_site, mgmt, radiotap

from edge_agent.errors import SourceError
from edge_agent.sources.base import SourceStats
from edge_agent.sources.wifi import WifiSource
from edge_agent.sources.wifi_live import (
    ChannelHopper,
    IwBss,
    parse_iw_scan,
    site_channels,
)

LIVE = Path(__file__).resolve().parents[1] / "data" / "wifi-live"


class FakeRunner:
    """Plays recorded outputs (or raises recorded failures) in order and keeps every argv."""

    def __init__(self, outputs: Sequence[str | SourceError] = ()) -> None:
        self.outputs = list(outputs)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        if not self.outputs:
            return ""
        out = self.outputs.pop(0)
        if isinstance(out, SourceError):
            raise out
        return out


class FakeClock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


def recorded(name: str) -> str:
    return (LIVE / name).read_text(encoding="utf-8")


# -- iw dev IFACE scan ---------------------------------------------------------------------------

def test_parse_recorded_iw_scan() -> None:
    got = parse_iw_scan(recorded("iw_scan_wlan0.txt"))
    assert got == [
        IwBss("02:9e:34:71:25:60", "plant-ops", 2412, -52.0, 120, 1),
        IwBss("02:9e:34:71:25:61", "plant-ops", 2437, -67.0, 1830, 6),
        IwBss("06:10:c9:3a:b4:02", "", 2437, -81.0, 1084, 6),  # NUL-padded hidden SSID
        IwBss("02:9e:34:71:26:10", "plant-ops ", 5180, -71.0, 2557, 36),  # escaped space
        IwBss("9a:42:65:0c:1d:e7", "Gast WLAN ä", 2462, -88.0, 933, 11),  # escaped UTF-8
    ]


def test_iw_signal_with_negative_hundredths() -> None:
    # iw prints mBm with "%d.%.2d": -4550 mBm comes out as "-45.-50"
    text = "BSS 02:00:00:00:00:01(on wlan0)\n\tfreq: 2412.0\n\tsignal: -45.-50 dBm\n"
    assert parse_iw_scan(text) == [IwBss("02:00:00:00:00:01", "", 2412, -45.5)]
    assert parse_iw_scan(text.replace("-45.-50", "-61"))[0].signal_dbm == -61.0
    unspec = "BSS 02:00:00:00:00:01(on wlan0)\n\tsignal: 60/100\n"  # no dBm from this driver
    assert parse_iw_scan(unspec)[0].signal_dbm is None


def test_iw_polls_use_last_seen_time_and_drop_cached_repeats() -> None:
    runner = FakeRunner([recorded("iw_scan_wlan0.txt"), recorded("iw_scan_wlan0_5s_later.txt")])
    sleeps: list[float] = []
    src = WifiSource.live_iw("wlan0", None, interval_s=5.0, runner=runner,
                             clock=FakeClock(1000.0, 1005.0), sleep=sleeps.append, polls=2)
    obs = list(src)
    assert runner.calls == [["iw", "dev", "wlan0", "scan"]] * 2
    assert sleeps == [5.0]
    assert [(o.bssid[-5:], round(o.t, 3), o.rssi_dbm, o.channel) for o in obs] == [
        # first scan, at t=1000: each result stamped "last seen N ms ago", in time order
        ("26:10", 997.443, -71.0, 36), ("25:61", 998.17, -67.0, 6), ("b4:02", 998.916, -81.0, 6),
        ("1d:e7", 999.067, -88.0, 11), ("25:60", 999.88, -52.0, 1),
        # second scan, at t=1005: 25:61 and 1d:e7 are the same cached sightings, not new ones
        ("26:10", 1003.797, -73.0, 36), ("b4:02", 1004.696, -80.0, 6),
        ("25:60", 1004.92, -50.0, 1),
    ]
    assert src.stats.observations == 8
    assert src.stats.skipped == {"repeated_result": 2}


def test_iw_with_site_keeps_surveyed_only() -> None:
    site = make_site(("02:9E:34:71:25:60", 1), ("02:9e:34:71:26:10", 36))
    src = WifiSource.live_iw("wlan0", site, runner=FakeRunner([recorded("iw_scan_wlan0.txt")]),
                             clock=FakeClock(1000.0), polls=1)
    assert sorted(o.bssid for o in src) == ["02:9e:34:71:25:60", "02:9e:34:71:26:10"]
    assert src.stats.skipped == {"not_surveyed": 3}


def test_iw_busy_is_counted_other_failures_raise() -> None:
    busy = SourceError("iw dev wlan0 scan: command failed: Device or resource busy (-16)")
    runner = FakeRunner([busy, recorded("iw_scan_wlan0.txt")])
    src = WifiSource.live_iw("wlan0", None, runner=runner, clock=FakeClock(1000.0),
                             sleep=lambda s: None, polls=2)
    assert len(list(src)) == 5
    assert src.stats.skipped == {"scan_busy": 1}
    denied = SourceError("iw dev wlan0 scan: command failed: Operation not permitted (-1)")
    src = WifiSource.live_iw("wlan0", None, runner=FakeRunner([denied]), polls=1)
    with pytest.raises(SourceError, match="not permitted"):
        list(src)


def test_iw_scan_dump_needs_no_trigger() -> None:
    runner = FakeRunner([""])
    list(WifiSource.live_iw("wlp2s0", None, runner=runner, polls=1, trigger=False))
    assert runner.calls == [["iw", "dev", "wlp2s0", "scan", "dump"]]


# -- termux-wifi-scaninfo ------------------------------------------------------------------------

def test_termux_scan_times_from_boot_timestamps() -> None:
    runner = FakeRunner([recorded("termux_wifi_scaninfo.json")])
    src = WifiSource.live_termux(None, runner=runner, clock=FakeClock(2000.0),
                                 boottime=FakeClock(5240.0), polls=1)
    obs = list(src)
    assert runner.calls == [["termux-wifi-scaninfo"]]
    assert [(o.bssid[-5:], round(o.t, 6), o.rssi_dbm, o.channel, o.freq_mhz, o.ssid)
            for o in obs] == [
        ("26:10", 1995.477901, -72.0, 36, 5180, "plant-ops"),
        ("25:61", 1996.204118, -69.0, 6, 2437, "plant-ops"),
        ("b4:02", 1996.950477, -82.0, 6, 2437, ""),
        ("1d:e7", 1997.10265, -89.0, 11, 2462, "Gast WLAN ä"),
        ("25:60", 1997.915362, -54.0, 1, 2412, "plant-ops"),
    ]


def test_termux_same_scan_twice_is_not_counted_twice() -> None:
    text = recorded("termux_wifi_scaninfo.json")
    site = make_site(("02:9e:34:71:25:60", 1))
    src = WifiSource.live_termux(site, runner=FakeRunner([text, text]),
                                 clock=FakeClock(2000.0, 2010.0),
                                 boottime=FakeClock(5240.0, 5250.0), sleep=lambda s: None,
                                 polls=2)
    assert [o.bssid for o in src] == ["02:9e:34:71:25:60"]
    assert src.stats.skipped == {"not_surveyed": 8, "repeated_result": 1}


@pytest.mark.parametrize(("output", "message"), [
    (recorded("termux_wifi_scaninfo_location_off.json"), "Location needs to be enabled"),
    ("", "printed nothing"),
    ("Error: Termux:API is not yet available", "not JSON"),
])
def test_termux_errors_are_one_line_source_errors(output: str, message: str) -> None:
    src = WifiSource.live_termux(None, runner=FakeRunner([output]), polls=1)
    with pytest.raises(SourceError, match=message) as err:
        list(src)
    assert "\n" not in str(err.value)


def test_termux_bad_entries_are_counted() -> None:
    text = ('[{"bssid": "nope", "frequency_mhz": 2412, "rssi": -50, "timestamp": 1},'
            ' {"bssid": "02:00:00:00:00:01", "frequency_mhz": 2412, "rssi": 0, "timestamp": 1},'
            ' 7]')
    src = WifiSource.live_termux(None, runner=FakeRunner([text]), polls=1)
    assert list(src) == []
    assert src.stats.skipped == {"bad_scan_entry": 2, "bad_signal": 1}


# -- monitor mode --------------------------------------------------------------------------------

def test_monitor_parses_the_feed_and_tunes_site_channels() -> None:
    site = make_site(("02:00:00:00:00:01", 6), ("02:00:00:00:00:02", 6))
    frames = [
        (100.0, beacon(-60, bssid="02:00:00:00:00:01", channel=6)),
        (None, beacon(-65, bssid="02:00:00:00:00:02", channel=6)),  # no kernel time: clock
        (100.3, beacon(-70, bssid="02:00:00:00:00:03", channel=6)),  # not surveyed
        (100.4, radiotap(flags=0, freq_mhz=2437) + mgmt()),  # no signal
    ]
    opened: list[str] = []

    def feed(iface: str) -> Iterator[tuple[float | None, bytes]]:
        opened.append(iface)
        yield from frames

    runner = FakeRunner()
    src = WifiSource.live_monitor("wlan1", site, runner=runner, feed=feed,
                                  clock=FakeClock(100.2))
    obs = list(src)
    assert opened == ["wlan1"]
    assert [(o.t, o.bssid, o.rssi_dbm) for o in obs] == [
        (100.0, "02:00:00:00:00:01", -60.0), (100.2, "02:00:00:00:00:02", -65.0)]
    assert runner.calls == [["iw", "dev", "wlan1", "set", "channel", "6"]]  # one channel: no hop
    assert src.stats.skipped == {"not_surveyed": 1, "no_signal": 1}


def test_hopper_cycles_and_drops_refused_channels() -> None:
    runner = FakeRunner(["", SourceError("iw: command failed: Invalid argument (-22)"), "", ""])
    stats = SourceStats()
    hopper = ChannelHopper("wlan1", [1, 13, 6], 0.25, runner, stats)
    assert [hopper.step() for _ in range(4)] == [1, 6, 1, 6]
    assert [c[-1] for c in runner.calls] == ["1", "13", "6", "1", "6"]
    assert hopper.channels == [1, 6]
    assert len(stats.warnings) == 1 and "channel 13" in stats.warnings[0]


def test_hopper_with_no_usable_channel_stops() -> None:
    runner = FakeRunner([SourceError("iw: command not found")] * 3)
    hopper = ChannelHopper("wlan1", [1, 6, 11], 0.25, runner, SourceStats())
    hopper.start()
    assert hopper.step() is None
    hopper.stop()


def test_hopper_rejects_non_positive_dwell() -> None:
    with pytest.raises(SourceError, match="dwell"):
        ChannelHopper("wlan1", [1], 0.0, FakeRunner(), SourceStats())


def test_site_channels_default_to_1_6_11() -> None:
    assert site_channels(None) == (1, 6, 11)
    assert site_channels(make_site(("02:00:00:00:00:01", 36), ("02:00:00:00:00:02", 1),
                                   ("02:00:00:00:00:03", 36))) == (1, 36)


def test_monitor_on_a_missing_interface_is_a_source_error_before_any_tuning() -> None:
    pytest.importorskip("scapy")
    runner = FakeRunner()
    src = WifiSource.live_monitor("edgeagent-no-such-if0", None, runner=runner)
    with pytest.raises(SourceError, match="edgeagent-no-such-if0"):
        list(src)
    assert runner.calls == []


def test_hopper_thread_keeps_hopping_until_stopped() -> None:
    calls: list[str] = []
    enough = threading.Event()

    def runner(argv: Sequence[str]) -> str:
        calls.append(argv[-1])
        if len(calls) >= 5:
            enough.set()
        return ""

    hopper = ChannelHopper("wlan1", [1, 6, 11], 0.001, runner, SourceStats())
    hopper.start()
    assert calls[:1] == ["1"]  # tuned before start() returns
    assert enough.wait(timeout=30)
    assert hopper.hopping
    hopper.stop()
    n = len(calls)
    assert calls[:5] == ["1", "6", "11", "1", "6"]
    assert not hopper.hopping
    assert len(calls) == n  # nothing after stop()
