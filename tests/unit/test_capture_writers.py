"""Capture writers: frames cross-checked with scapy's dissectors, NMEA with pynmea2, pcap with
the agent's own reader."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pynmea2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.bluetooth4LE import BTLE, BTLE_RF
from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt, Dot11FCS, RadioTap
from scapy.utils import rdpcap
from support.examples import scaled

from edge_agent.capture.nmea_writer import gga, gst, nmea_lat, rmc
from edge_agent.capture.writers import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11_RADIOTAP,
    BeaconTemplate,
    BleAdvTemplate,
    BundleWriter,
    PcapWriter,
    ble_adv_frame,
    ble_crc24,
    nmea_sentence,
    pcap_time_s,
    write_observations_bundle,
)
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import site_from_dict
from edge_agent.sources.pcap import open_pcap


def scapy_crc(pdu: bytes) -> bytes:
    crc: bytes = BTLE.compute_crc(pdu)  # type: ignore[no-untyped-call]
    return crc


UUID = "fda50693-a4e2-4fb1-afcf-c6eb07647825"


def test_beacon_template_decodes_in_scapy_with_patched_signal() -> None:
    tpl = BeaconTemplate("02:9E:34:71:25:60", "plant-ops", 6)
    for rssi in (-30, -67, -92):
        pkt = RadioTap(tpl.frame(rssi))
        assert pkt.dBm_AntSignal == rssi
        assert pkt.ChannelFrequency == 2437
        assert pkt[Dot11].addr2 == "02:9e:34:71:25:60"
        assert pkt[Dot11].addr3 == "02:9e:34:71:25:60"
        assert pkt.haslayer(Dot11Beacon)
        assert pkt[Dot11Beacon].beacon_interval == 100
        elts = {e.ID: e.info for e in pkt[Dot11Elt].iterpayloads() if isinstance(e, Dot11Elt)}
        assert elts[0] == b"plant-ops"
        assert elts[3] == bytes([6])


def test_beacon_template_bulk_frames_equal_single_frames() -> None:
    tpl = BeaconTemplate("02:00:00:00:00:01", "x", 11)
    rssi = np.array([-40, -91, -128, 5])
    bulk = tpl.frames(rssi)
    for i, r in enumerate(rssi):
        assert bulk[i].tobytes() == tpl.frame(int(r))


def test_beacon_template_with_fcs_has_a_valid_fcs() -> None:
    frame = BeaconTemplate("02:00:00:00:00:02", "fcs-net", 1, fcs=True).frame(-55)
    pkt = RadioTap(frame)
    assert pkt.haslayer(Dot11FCS)
    mpdu = frame[16:]
    assert struct.pack("<I", pkt[Dot11FCS].fcs) == pkt[Dot11FCS].compute_fcs(mpdu[:-4])
    assert pkt.dBm_AntSignal == -55


def test_five_ghz_channel_frequency() -> None:
    assert RadioTap(BeaconTemplate("02:00:00:00:00:03", "", 36).frame(-60)).ChannelFrequency \
        == 5180


def test_a_channel_without_a_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="channel 20"):
        BeaconTemplate("02:00:00:00:00:03", "", 20)


@settings(max_examples=scaled(60), deadline=None)
@given(st.binary(min_size=2, max_size=39))
def test_crc24_matches_scapy(pdu: bytes) -> None:
    assert ble_crc24(pdu) == scapy_crc(pdu)


def test_ibeacon_frame_decodes_in_scapy_with_valid_crc() -> None:
    frame = ble_adv_frame("C0:12:34:56:78:9A", -71, ibeacon=(UUID, 1, 7, -59), channel=38)
    pkt = BTLE_RF(frame)
    assert pkt.signal == -71
    assert pkt.sig_power_valid == 1
    assert pkt.crc_valid == 1 and pkt.crc_checked == 1
    assert pkt.rf_channel == 12  # advertising channel 38 is RF channel 12 (2426 MHz)
    ll = bytes(frame[10:])
    pdu = ll[4:-3]
    assert struct.unpack("<I", ll[:4])[0] == 0x8E89BED6
    assert ll[-3:] == scapy_crc(pdu)
    assert pkt[BTLE].AdvA == "c0:12:34:56:78:9a"
    # manufacturer data: Apple, iBeacon type 0x02 0x15, uuid, major 1, minor 7, tx -59
    mfg = pdu.split(bytes([0x4C, 0x00, 0x02, 0x15]), 1)[1]
    assert mfg[:16].hex() == UUID.replace("-", "")
    assert struct.unpack(">HHb", mfg[16:21]) == (1, 7, -59)


def test_eddystone_and_plain_advertisements_have_valid_crc() -> None:
    for frame in (ble_adv_frame("C1:00:00:00:00:01", -80,
                                eddystone_uid=("00112233445566778899", "aabbccddeeff", -20)),
                  ble_adv_frame("C1:00:00:00:00:02", -85, channel=39)):
        ll = frame[10:]
        assert ll[-3:] == scapy_crc(ll[4:-3])
        assert len(ll[4:-3]) == 2 + ll[5]  # PDU header + length field


def test_ble_bulk_frames_patch_signal_and_channel() -> None:
    from edge_agent.capture.ble_frames import ibeacon_data
    tpl = BleAdvTemplate("C0:00:00:00:00:01", ibeacon_data(UUID, 2, 3, -59))
    bulk = tpl.frames(np.array([-60, -99]), np.array([37, 39]))
    assert bulk[0].tobytes() == tpl.frame(-60, 37)
    assert BTLE_RF(bulk[1].tobytes()).rf_channel == 39
    assert BTLE_RF(bulk[1].tobytes()).signal == -99


def test_nmea_checksum_of_the_textbook_gga() -> None:
    body = "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"
    assert nmea_sentence(body) == f"${body}*47"
    assert nmea_sentence("$" + body + "*00") == f"${body}*47"


def test_rmc_gga_gst_parse_in_pynmea2_with_cm_precision() -> None:
    t = 1795000000.0 + 12.0
    lat, lon = 47.47351234, -6.81129876
    s_rmc = rmc("GN", t, lat, lon, speed_mps=2.0, course_deg=90.0)
    s_gga = gga("GN", t, lat, lon, 1, 9, 0.9, 340.0)
    r = pynmea2.parse(s_rmc, check=True)
    g = pynmea2.parse(s_gga, check=True)
    e = pynmea2.parse(gst("GP", t, 1.2, 1.5, 1.1, 2.0), check=True)
    assert r.status == "A" and g.gps_qual == 1 and g.num_sats == "09"
    assert abs(r.latitude - lat) < 1e-7 and abs(r.longitude - lon) < 1e-7
    assert abs(g.latitude - lat) < 1e-7 and abs(g.longitude - lon) < 1e-7
    assert r.datestamp.isoformat() == "2026-11-18"
    assert r.timestamp.isoformat() == "11:06:52+00:00"
    assert float(e.std_dev_latitude) == 1.5
    assert pynmea2.parse(rmc("GP", t, None, None), check=True).status == "V"
    assert pynmea2.parse(gga("GP", t, None, None), check=True).gps_qual == 0


def test_latitude_minutes_never_print_as_sixty() -> None:
    assert nmea_lat(47.99999999999)[0].startswith("48")


def test_pcap_writer_times_and_bytes_through_the_agent_reader(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    with PcapWriter(path, LINKTYPE_IEEE802_11_RADIOTAP) as w:
        w.write(1795000000.1234564, b"abc")
        w.write(1795000001.0, b"")
    recs = list(open_pcap(path))
    assert [r[2] for r in recs] == [b"abc", b""]
    assert recs[0][0] == pcap_time_s(np.array([1795000000123456]))[0]
    assert recs[0][1] == 127
    assert len(rdpcap(str(path))) == 2


def test_write_groups_interleaves_by_time_like_single_writes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    groups = []
    for n, flen in ((50, 5), (30, 9), (0, 3), (40, 1)):
        t = np.sort(rng.integers(0, 10_000_000, n)).astype(np.int64) + 1795000000_000000
        groups.append((t, rng.integers(0, 256, (n, flen)).astype(np.uint8)))
    with PcapWriter(tmp_path / "bulk.pcap", LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        w.write_groups(groups)
    flat = sorted(((int(ti), gi, i, f.tobytes()) for gi, (ts, fs) in enumerate(groups)
                   for i, (ti, f) in enumerate(zip(ts, fs, strict=True))))
    with PcapWriter(tmp_path / "single.pcap", LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
        for tu, _, _, fb in flat:
            w.write_us(tu, fb)
    assert (tmp_path / "bulk.pcap").read_bytes() == (tmp_path / "single.pcap").read_bytes()


SITE = site_from_dict({
    "site": "t", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
    "wifi_aps": [{"bssid": "02:00:00:00:00:0a", "ssid": "ops", "channel": 6, "x": 1, "y": 2,
                  "rssi_1m_dbm": -40, "path_loss_exponent": 2.5}],
    "ble_beacons": [{"uuid": UUID, "major": 1, "minor": 2, "x": 3, "y": 4,
                     "rssi_1m_dbm": -59, "path_loss_exponent": 2.0}],
})


def test_write_observations_bundle_round_trip(tmp_path: Path) -> None:
    t0 = 1795000000.0
    obs: list[Observation] = [WifiObs(t0 + 0.5, "02:00:00:00:00:0a", -61.0, 6),
           BleObs(t0 + 0.7, f"{UUID}/1/2", -77.0),
           GnssFix(t0 + 1, 10.0, 20.0, 1.5, 0.8, 1, num_sats=10, has_gst=True),
           GnssNoFix(t0 + 2)]
    counts = write_observations_bundle(tmp_path, SITE, obs)
    assert counts == {"wifi.pcap": 1, "ble.pcap": 1, "gps.nmea": 5}
    w = rdpcap(str(tmp_path / "wifi.pcap"))[0]
    assert w.dBm_AntSignal == -61 and w[Dot11].addr2 == "02:00:00:00:00:0a"
    assert float(w.time) == pytest.approx(t0 + 0.5)
    b = BTLE_RF(bytes(rdpcap(str(tmp_path / "ble.pcap"))[0]))
    assert b.signal == -77 and b.crc_valid == 1
    lines = (tmp_path / "gps.nmea").read_text().splitlines()
    msgs = [pynmea2.parse(s, check=True) for s in lines]
    assert [m.sentence_type for m in msgs] == ["RMC", "GGA", "GST", "RMC", "GGA"]
    x, y = SITE.to_local(msgs[1].latitude, msgs[1].longitude)
    assert abs(x - 10.0) < 0.01 and abs(y - 20.0) < 0.01
    assert msgs[3].status == "V"
    assert (tmp_path / "site.json").exists()


def test_recorded_bundle_replays_to_the_recorded_observations(tmp_path: Path) -> None:
    """What `edge-agent record` writes (write_observations_bundle) reads back through the agent's
    Bundle: radio frames exactly, GNSS epochs to the centimetre."""
    from edge_agent.bundle import Bundle
    from firmware_sim import simulate

    run = simulate("yard_trips", seed=7, duration_s=300)
    write_observations_bundle(tmp_path, run.site, run.observations)
    back = list(Bundle.open(tmp_path).observations())
    radio = [o for o in run.observations if isinstance(o, WifiObs | BleObs)]
    assert [o for o in back if isinstance(o, WifiObs | BleObs)] == radio
    g_in = [o for o in run.observations if isinstance(o, GnssFix | GnssNoFix)]
    g_out = [o for o in back if isinstance(o, GnssFix | GnssNoFix)]
    assert sum(isinstance(o, GnssFix) for o in g_in) > 50
    assert [(type(o), o.t) for o in g_out] == [(type(o), o.t) for o in g_in]
    for a, b in zip(g_out, g_in, strict=True):
        if isinstance(a, GnssFix) and isinstance(b, GnssFix):
            assert abs(a.x_m - b.x_m) < 0.01 and abs(a.y_m - b.y_m) < 0.01
            assert a.hdop == b.hdop and a.num_sats == b.num_sats


def test_bulk_beacons_carry_sequence_numbers_and_tsf() -> None:
    tpl = BeaconTemplate("02:00:00:00:00:05", "seq", 11)
    frames = tpl.frames(np.array([-50, -70]), np.array([7, 4096 + 9]),
                        np.array([123_456_789, 2 ** 40 + 5]))
    p0, p1 = RadioTap(frames[0].tobytes()), RadioTap(frames[1].tobytes())
    assert (p0[Dot11].SC >> 4, p1[Dot11].SC >> 4) == (7, 9)
    assert (p0[Dot11Beacon].timestamp, p1[Dot11Beacon].timestamp) == (123_456_789, 2 ** 40 + 5)
    assert (p0.dBm_AntSignal, p1.dBm_AntSignal) == (-50, -70)


def _files(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


def test_bundle_writer_with_flushes_writes_the_bytes_of_the_whole_bundle(tmp_path: Path) -> None:
    """`edge-agent record` flushing as it goes (holding back a reorder margin of 1 s, arrivals
    shuffled within it) gives byte for byte what write_observations_bundle gives at the end."""
    import random

    from firmware_sim import simulate

    run = simulate("dense_ble", seed=2, duration_s=120)
    obs = list(run.observations)
    rng = random.Random(0)
    arrival = sorted(obs, key=lambda o: o.t + rng.uniform(0.0, 0.5))
    whole = write_observations_bundle(tmp_path / "whole", run.site, obs)
    with BundleWriter(tmp_path / "live", run.site) as bw:
        newest = -1e18
        for i, o in enumerate(arrival):
            bw.add(o)
            newest = max(newest, o.t)
            if i % 50 == 0:
                bw.flush(before_t=newest - 1.0)
                assert set(bw.counts()) <= {"wifi.pcap", "ble.pcap", "gps.nmea"}
    assert bw.close() == whole and bw.late == 0
    assert _files(tmp_path / "live") == _files(tmp_path / "whole")
    assert set(whole) == {"wifi.pcap", "ble.pcap", "gps.nmea"}


def test_bundle_writer_flush_makes_records_readable_and_counts_late_ones(tmp_path: Path) -> None:
    t0 = 1795000000.0
    bw = BundleWriter(tmp_path, SITE)
    assert [f.name for f in tmp_path.iterdir()] == ["site.json"]  # files come with their data
    bw.add(WifiObs(t0 + 2, "02:00:00:00:00:0a", -61.0, 6))
    bw.add(WifiObs(t0 + 1, "02:00:00:00:00:0a", -62.0, 6))
    bw.flush()
    assert [t for t, _, _ in open_pcap(tmp_path / "wifi.pcap")] == \
        [pytest.approx(t0 + 1), pytest.approx(t0 + 2)]
    bw.add(WifiObs(t0 + 1.5, "02:00:00:00:00:0a", -63.0, 6))  # older than what was written
    bw.add(GnssNoFix(t0 + 3))
    assert bw.close() == {"wifi.pcap": 3, "gps.nmea": 2} and bw.late == 1
    assert bw.close() == {"wifi.pcap": 3, "gps.nmea": 2}  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        bw.add(GnssNoFix(t0 + 4))
