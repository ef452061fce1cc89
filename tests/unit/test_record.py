"""`edge-agent record`: live sources (fakes here) -> bundle -> Bundle.open replays the same
observations; unsurveyed emitters never reach the bundle."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from edge_agent.bundle import Bundle
from edge_agent.cli import main
from edge_agent.commands.record import record_bundle
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Origin, Site, site_from_dict
from edge_agent.sources.base import SourceStats
from edge_agent.sources.gnss import GnssSource
from edge_agent.sources.nmea import sigma_from_hdop

UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"
T0 = 1_795_000_000.0


class ListSource:
    """A source that yields a fixed list (what a live radio would have delivered)."""

    def __init__(self, kind: str, items: Sequence[Observation]) -> None:
        self.kind = kind
        self.stats = SourceStats()
        self.items = list(items)
        self.stopped = False

    def __iter__(self) -> Iterator[Observation]:
        for o in self.items:
            self.stats.observations += 1
            yield o

    def stop(self) -> None:
        self.stopped = True


def make_site() -> Site:
    return site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "wifi_aps": [{"bssid": "02:9e:34:71:25:60", "ssid": "plant-ops", "channel": 6, "x": 12.5,
                      "y": 11.6, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}],
        "ble_beacons": [
            {"address": "C0:12:34:56:78:9A", "uuid": UUID, "major": 1, "minor": 7, "x": 10.0,
             "y": 3.0, "rssi_1m_dbm": -59.0, "path_loss_exponent": 2.0},
            {"address": "D0:00:00:00:00:01", "x": 50.0, "y": 30.0, "rssi_1m_dbm": -60.0,
             "path_loss_exponent": 2.0}]})


def live_run(site: Site) -> tuple[list[WifiObs], list[BleObs], list[GnssFix | GnssNoFix]]:
    wifi = [WifiObs(T0 + 0.1024 * i, "02:9e:34:71:25:60", -50.0 - i % 7, 6, 2437, "plant-ops")
            for i in range(40)]
    ble = [BleObs(T0 + 0.25 + 0.5 * i, f"{UUID}/1/7" if i % 2 else "D0:00:00:00:00:01",
                  -70.0 + i % 5, "C0:12:34:56:78:9A" if i % 2 else "D0:00:00:00:00:01")
           for i in range(8)]
    gnss: list[GnssFix | GnssNoFix] = []
    for i in range(4):
        x, y = 20.0 + i, 70.0 + 0.5 * i
        lat, lon = site.to_wgs84(x, y)
        gnss.append(GnssFix(T0 + i, x, y, sigma_from_hdop(1.25), 1.25, 1, lat, lon, 9, False))
    gnss.append(GnssNoFix(T0 + 4))
    return wifi, ble, gnss


def same(a: Observation, b: Observation) -> bool:
    """Equal up to the bundle's resolution: pcap microseconds, NMEA centiseconds and 1e-7 min."""
    if type(a) is not type(b) or abs(a.t - b.t) > 1e-5:
        return False
    if isinstance(a, GnssFix) and isinstance(b, GnssFix):
        return (abs(a.x_m - b.x_m) < 1e-3 and abs(a.y_m - b.y_m) < 1e-3
                and abs(a.sigma_m - b.sigma_m) < 1e-9
                and (a.hdop, a.fix_quality, a.num_sats, a.has_gst)
                == (b.hdop, b.fix_quality, b.num_sats, b.has_gst))
    return dataclasses.replace(a, t=0.0) == dataclasses.replace(b, t=0.0)


def test_recorded_bundle_replays_to_the_same_observations(tmp_path: Path) -> None:
    site = make_site()
    wifi, ble, gnss = live_run(site)
    stranger = WifiObs(T0 + 0.5, "aa:bb:cc:dd:ee:ff", -40.0, 6, 2437, "cafe")
    sources = [ListSource("wifi", [*wifi[:5], stranger, *wifi[5:]]), ListSource("ble", ble),
               ListSource("gnss", gnss)]
    summary = record_bundle(tmp_path / "b", site, sources)
    assert "wifi.pcap 40" in summary and "not_surveyed 1" in summary
    assert all(s.stopped for s in sources)

    bundle = Bundle.open(tmp_path / "b")
    assert bundle.site.to_dict() == site.to_dict()
    replayed = list(bundle.observations())
    expected = sorted([*wifi, *ble, *gnss], key=lambda o: o.t)
    assert len(replayed) == len(expected)
    assert all(same(a, b) for a, b in zip(replayed, expected, strict=True))
    assert "aa:bb:cc:dd:ee:ff" not in (tmp_path / "b/wifi.pcap").read_bytes().hex(":")
    stats = bundle.stats()
    assert {k: s.observations for k, s in stats.items()} == {"wifi": 40, "ble": 8, "gnss": 5}


def test_absent_sensor_files_are_simply_not_used(tmp_path: Path) -> None:
    site = make_site()
    _, ble, _ = live_run(site)
    record_bundle(tmp_path / "b", site, [ListSource("ble", ble)])
    bundle = Bundle.open(tmp_path / "b")
    assert set(bundle.files()) == {"ble"}
    assert [o.beacon_id for o in bundle.observations() if isinstance(o, BleObs)] == \
        [o.beacon_id for o in ble]


def test_cli_needs_a_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_site().save(tmp_path / "site.json")
    assert main(["record", str(tmp_path / "b"), "--site", str(tmp_path / "site.json")]) == 2
    assert "nothing to record" in capsys.readouterr().err


def test_cli_bad_site_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site.json").write_text("{")
    assert main(["record", str(tmp_path / "b"), "--site", str(tmp_path / "site.json"),
                 "--ble"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_gpsd_unreachable_is_a_source_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    make_site().save(tmp_path / "site.json")
    rc = main(["record", str(tmp_path / "b"), "--site", str(tmp_path / "site.json"),
               "--gnss-gpsd", "127.0.0.1:1", "--duration", "0"])
    assert rc == 2 and "gpsd 127.0.0.1:1" in capsys.readouterr().err


def test_flushed_recording_is_readable_before_it_ends(tmp_path: Path) -> None:
    """A forklift switched off mid-run: what was flushed replays without the recorder closing."""
    from edge_agent.capture.writers import BundleWriter

    site = make_site()
    wifi, ble, gnss = live_run(site)
    rec = BundleWriter(tmp_path / "b", site)
    for o in sorted([*wifi[:10], *ble[:3], *gnss[:2]], key=lambda o: o.t):
        rec.add(o)
    rec.flush()
    got = list(Bundle.open(tmp_path / "b").observations())
    rec.close()
    assert [type(o).__name__ for o in got].count("WifiObs") == 10
    assert sum(isinstance(o, BleObs) for o in got) == 3
    # the last GNSS epoch closes only when the next one starts (or the file ends)
    assert sum(isinstance(o, GnssFix) for o in got) == 2


def serve_once(data: bytes) -> tuple[int, threading.Thread]:
    """A stand-in gpsd on loopback: answers one client with `data`, then closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b'{"class":"VERSION","release":"3.25"}\r\n')
            conn.recv(1024)  # the ?WATCH request
            conn.sendall(data)
        server.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    return server.getsockname()[1], th


def test_cli_records_gpsd_into_a_bundle_that_replays_the_same(
        tmp_path: Path, real_captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = real_captures / "gnss/gpsd_sirfstarv-nmea.log"  # receiver near 44.07N 121.31W
    site = dataclasses.replace(make_site(), origin=Origin(44.0689, -121.3142, 1123.9))
    site.save(tmp_path / "site.json")
    port, th = serve_once(log.read_bytes())
    rc = main(["record", str(tmp_path / "b"), "--site", str(tmp_path / "site.json"),
               "--gnss-gpsd", f"127.0.0.1:{port}", "--duration", "60"])
    th.join(5)
    assert rc == 0
    summary = capsys.readouterr().out
    assert summary.startswith(f"recorded {tmp_path / 'b'}: gps.nmea 118") and "\n" not in \
        summary.strip()
    live = list(GnssSource.replay(log, site))
    replayed = list(Bundle.open(tmp_path / "b").observations())
    assert len(replayed) == len(live) == 59
    assert all(same(a, b) for a, b in zip(replayed, live, strict=True))


def test_cli_mode_without_iface(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_site().save(tmp_path / "site.json")
    assert main(["record", str(tmp_path / "b"), "--site", str(tmp_path / "site.json"),
                 "--mode", "iw"]) == 2
    assert "--wifi-mode iw needs --iface" in capsys.readouterr().err
