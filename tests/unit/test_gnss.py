"""GNSS source: every real receiver log gives what tests/data/real-captures/README.md says; site
frame conversion; uncertainty; gpsd over a real TCP socket and a serial port on a pty."""

from __future__ import annotations

import datetime
import math
import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.capture.writers import nmea_sentence
from edge_agent.errors import CaptureError, EdgeAgentError, SourceError
from edge_agent.observations import GnssFix, GnssNoFix
from edge_agent.site import Site, site_from_dict
from edge_agent.sources.gnss import GnssSource
from edge_agent.sources.nmea import sigma_from_hdop

# file -> (fixes, no-fix epochs, dates, fix qualities, GST present)
EXPECTED: dict[str, tuple[int, int, set[str], set[int], bool]] = {
    "gpsd_bu353s4.log": (25, 0, {"2014-12-31"}, {1}, False),
    "gpsd_firefly-II.log": (23, 0, {"2010-07-08"}, {1}, False),
    "gpsd_hemi.log": (21, 0, {"2018-09-07"}, {1, 2}, False),
    "gpsd_mtk-3301.log": (4, 1, {"2008-08-23"}, {1}, False),
    "gpsd_neo-m8n.log": (23, 0, {"2015-03-18"}, {1}, False),
    "gpsd_rx210.log": (40, 22, {"2016-04-03"}, {1}, False),
    "gpsd_sirfstarv-nmea.log": (59, 0, {"2019-02-05"}, {1}, False),
    "gpsd_skytraq-dgps.log": (96, 0, {"2016-04-07"}, {2}, True),
    "gpsd_sl869.log": (8, 7, {"2012-11-25"}, {1}, False),
    # 187 RMC with status A; 105153.71 (printed without zero padding for 105153.071) is followed
    # by 105153.408: a step back of under 1 s, so that epoch is re-stamped, not dropped.
    "gpsd_telit-he910.log": (187, 0, {"2019-03-12"}, {1}, False),
    "gpsd_ublox-zed-f9p-nmea.log": (29, 0, {"2019-04-12"}, {1}, True),
    "gpsd_ublox-zed-f9p_hpg1.11.log": (655, 0, {"2019-04-12"}, {1}, False),
    # Garbage log: only the first dated fix (2019-04-07) is trusted; the later 2006/1999/2010
    # dates step back by years (week rollover, cold boot) and are rejected.
    "gpsd_gp-320fw-2019-04-07-coldboot.log": (1, 1, {"2019-04-07"}, {1}, False),
}

SKIPS: dict[str, dict[str, int]] = {
    "gpsd_firefly-II.log": {"bad_checksum": 23},
    "gpsd_hemi.log": {"no_time": 194},  # quality-0 GGA with empty time: no epoch to report
    "gpsd_mtk-3301.log": {"no_checksum": 3, "implausible_date": 6, "proprietary": 12},
    "gpsd_telit-he910.log": {"no_time": 74},  # 37 V epochs have no time
    "gpsd_skytraq-dgps.log": {"proprietary": 96},
    "gpsd_sl869.log": {"no_checksum": 1},
}


def test_speed_over_ground_from_rmc(real_captures: Path) -> None:
    # bu353s4: "$GPRMC,030719.000,A,...,0.69,181.39,..." (knots) for its first fix; hemi sends
    # no RMC: no speed; a standing receiver's Doppler speed stays small (the motion cue's
    # thresholds rest on it: docs/fusion.md)
    fixes = [o for o in GnssSource.replay(real_captures / "gnss" / "gpsd_bu353s4.log", None)
             if isinstance(o, GnssFix)]
    assert fixes[0].speed_mps == pytest.approx(0.69 * 1852 / 3600)
    assert all(f.speed_mps is not None and 0 <= f.speed_mps < 0.6 for f in fixes)
    hemi = [o for o in GnssSource.replay(real_captures / "gnss" / "gpsd_hemi.log", None)
            if isinstance(o, GnssFix)]
    assert hemi and all(f.speed_mps is None for f in hemi)


def date_of(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).date().isoformat()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_receiver_log(real_captures: Path, name: str) -> None:
    fixes_n, nofix_n, dates, qualities, gst = EXPECTED[name]
    src = GnssSource.replay(real_captures / "gnss" / name, None)
    obs = list(src)
    fixes = [o for o in obs if isinstance(o, GnssFix)]
    assert len(fixes) == fixes_n
    assert sum(isinstance(o, GnssNoFix) for o in obs) == nofix_n
    assert {date_of(o.t) for o in obs} <= dates | {date_of(fixes[0].t)}
    assert {date_of(f.t) for f in fixes} == dates
    assert {f.fix_quality for f in fixes} <= qualities
    assert all(f.has_gst for f in fixes) is gst
    ts = [o.t for o in obs]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    for reason, n in SKIPS.get(name, {}).items():
        assert src.stats.skipped[reason] == n, reason
    # survey mode: metres from the first fix, a receiver standing or driving near it
    assert fixes[0].x_m == 0.0 and fixes[0].y_m == 0.0
    assert all(math.hypot(f.x_m, f.y_m) < 5000 for f in fixes)


def test_garbage_log_counts_its_garbage(real_captures: Path) -> None:
    src = GnssSource.replay(real_captures / "gnss/gpsd_gp-320fw-2019-04-07-coldboot.log", None)
    list(src)
    s = src.stats.skipped
    assert s["bad_checksum"] >= 30 and s["no_checksum"] >= 4 and s["non_nmea"] >= 2
    assert s["implausible_date"] >= 10


def test_ubx_interleaved_log_resyncs(real_captures: Path) -> None:
    src = GnssSource.replay(real_captures / "gnss/gpsd_ublox-zed-f9p_hpg1.11.log", None)
    fixes = list(src)
    assert len(fixes) == 655
    assert fixes[-1].t - fixes[0].t == pytest.approx(654, abs=2)
    assert src.stats.skipped["non_nmea"] > 4000


def test_hemisphere_dates_from_zda(real_captures: Path) -> None:
    obs = list(GnssSource.replay(real_captures / "gnss/gpsd_hemi.log", None))
    assert all(isinstance(o, GnssFix) for o in obs)
    assert date_of(obs[0].t) == "2018-09-07"


def site() -> Site:
    return site_from_dict({"site": "t", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
                           "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90}})


def fix_lines(lat: float, lon: float, hdop: float = 1.1, gst: str | None = None) -> str:
    la = f"{int(lat):02d}{(lat - int(lat)) * 60:010.7f}"
    lo = f"{int(lon):03d}{(lon - int(lon)) * 60:010.7f}"
    lines = [nmea_sentence(f"GNRMC,101500.00,A,{la},N,{lo},E,0.1,,010624,,,A"),
             nmea_sentence(f"GNGGA,101500.00,{la},N,{lo},E,1,12,{hdop:.2f},341.0,M,47.0,M,,")]
    if gst:
        lines.append(nmea_sentence(f"GNGST,101500.00,{gst}"))
    return "\r\n".join(lines) + "\r\n"


def test_fix_is_converted_to_the_site_frame(tmp_path: Path) -> None:
    s = site()
    lat, lon = s.to_wgs84(30.0, 40.0)
    p = tmp_path / "gps.nmea"
    p.write_text(fix_lines(lat, lon))
    (f,) = list(GnssSource.replay(p, s))
    assert isinstance(f, GnssFix)
    assert f.x_m == pytest.approx(30.0, abs=0.01) and f.y_m == pytest.approx(40.0, abs=0.01)
    assert f.sigma_m == pytest.approx(sigma_from_hdop(1.1)) and not f.has_gst
    assert f.num_sats == 12 and f.hdop == 1.1


def test_gst_sigmas_take_precedence_over_hdop(tmp_path: Path) -> None:
    p = tmp_path / "gps.nmea"
    p.write_text(fix_lines(47.4736, 6.8113, gst="2.0,3.0,2.0,0.0,3.0,4.0,5.0"))
    (f,) = list(GnssSource.replay(p, site()))
    assert isinstance(f, GnssFix) and f.has_gst
    assert f.sigma_m == pytest.approx(math.sqrt((9 + 16) / 2))


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="gps"):
        GnssSource.replay(tmp_path / "gps.nmea", None)


def test_gpsd_watch_nmea_over_tcp(real_captures: Path) -> None:
    """A stand-in gpsd on loopback: checks the WATCH request, sends JSON + the neo-m8n log."""
    log = (real_captures / "gnss/gpsd_neo-m8n.log").read_bytes()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b'{"class":"VERSION","release":"3.25","proto_major":3}\r\n')
            got.append(conn.recv(1024))
            conn.sendall(b'{"class":"DEVICES","dev')  # a JSON reply split across reads
            conn.sendall(b'ices":[]}\r\n{"class":"WATCH","enable":true,"nmea":true}\r\n')
            for i in range(0, len(log), 500):
                conn.sendall(log[i:i + 500])
        server.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    src = GnssSource.gpsd("127.0.0.1", port, None)
    obs = list(src)
    th.join(5)
    assert got and got[0].startswith(b"?WATCH=") and b'"nmea": true' in got[0]
    assert sum(isinstance(o, GnssFix) for o in obs) == 23


def test_serial_port_on_a_pty(real_captures: Path) -> None:
    """A receiver on a (pseudo) serial port; live sources close an epoch once it is complete, so
    the last fix comes out without waiting for another epoch."""
    pytest.importorskip("serial")
    master, slave = os.openpty()
    src = GnssSource.serial(os.ttyname(slave), 9600, None, duration_s=30)  # 30 s: hang guard
    os.write(master, (real_captures / "gnss/gpsd_bu353s4.log").read_bytes())
    got: list[GnssFix | GnssNoFix] = []
    for o in src:
        got.append(o)
        if len(got) == 25:
            src.stop()
            break
    os.close(master)
    os.close(slave)
    assert len(got) == 25 and all(isinstance(o, GnssFix) for o in got)
    assert got == list(GnssSource.replay(real_captures / "gnss/gpsd_bu353s4.log", None))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=120),
                          st.sampled_from(fix_lines(47.4736, 6.8113).encode().split(b"\r\n"))),
                max_size=12))
def test_random_log_files_never_raise(chunks: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "gps.nmea"
        p.write_bytes(b"\r\n".join(chunks))
        src = GnssSource.replay(p, site())
        try:
            obs = list(src)
        except EdgeAgentError:
            return
        assert all(isinstance(o, GnssFix | GnssNoFix) for o in obs)
        assert [o.t for o in obs] == sorted(o.t for o in obs)


def test_serial_url_socket(real_captures: Path) -> None:
    """pyserial URLs work too: socket:// reads an NMEA-over-TCP stream (phone apps offer one)."""
    server = socket.create_server(("127.0.0.1", 0))
    log = (real_captures / "gnss/gpsd_neo-m8n.log").read_bytes()

    opened = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        opened.wait(10)  # pyserial drops what arrived before open() returned (input reset)
        with conn:
            conn.sendall(log)
        server.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    src = GnssSource.serial(f"socket://127.0.0.1:{server.getsockname()[1]}", 9600, None,
                            duration_s=30)
    opened.set()
    got = []
    for o in src:
        got.append(o)
        if len(got) == 23:
            src.stop()
            break
    th.join(5)
    assert got == list(GnssSource.replay(real_captures / "gnss/gpsd_neo-m8n.log", None))
    # the stand-in closes the connection after the log: the source ends and says why
    assert src.stats.warnings == [] or "GNSS source ended" in src.stats.warnings[0]


def test_serial_port_that_does_not_exist() -> None:
    with pytest.raises(SourceError, match="/dev/ttyNOPE0"):
        GnssSource.serial("/dev/ttyNOPE0", 9600, None)
