"""Frames written by edge_agent.capture (the simulator's and `record`'s writers) replay exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from wifi_frames import make_site

from edge_agent.capture.writers import (
    LINKTYPE_IEEE802_11_RADIOTAP,
    BeaconTemplate,
    PcapWriter,
    write_observations_bundle,
)
from edge_agent.observations import WifiObs
from edge_agent.sources.wifi import WifiSource


@pytest.mark.parametrize("fcs", [False, True])
def test_beacon_template_round_trip(tmp_path: Path, fcs: bool) -> None:
    aps = [BeaconTemplate("02:9E:34:71:25:60", "plant-ops", 1, fcs=fcs),
           BeaconTemplate("02:9e:34:71:26:10", "", 36, fcs=fcs),
           BeaconTemplate("02:9e:34:71:25:61", "Gast ä", 11, fcs=fcs)]
    path = tmp_path / "wifi.pcap"
    expected = []
    with PcapWriter(path, LINKTYPE_IEEE802_11_RADIOTAP) as w:
        for i in range(30):
            ap = aps[i % 3]
            t_s = 1_795_000_000 + i * 0.1024
            rssi = -40 - i
            w.write(t_s, ap.frame(rssi))
            expected.append(WifiObs(round(t_s, 6), ap.bssid, float(rssi), ap.channel,
                                    ap.freq_mhz, ap.ssid))
    src = WifiSource.replay(path, None)
    got = list(src)
    assert [(o.bssid, o.rssi_dbm, o.channel, o.freq_mhz, o.ssid) for o in got] == [
        (o.bssid, o.rssi_dbm, o.channel, o.freq_mhz, o.ssid) for o in expected]
    assert [o.t for o in got] == pytest.approx([o.t for o in expected], abs=1e-6)
    assert src.stats.skipped == {}


def test_observations_bundle_round_trip(tmp_path: Path) -> None:
    site = make_site(("02:9e:34:71:25:60", 1), ("02:9e:34:71:26:10", 36))
    obs = [WifiObs(1_795_000_000.0 + i, "02:9e:34:71:25:60" if i % 2 else "02:9e:34:71:26:10",
                   -50.0 - i, 1 if i % 2 else 36, 2412 if i % 2 else 5180, "plant-ops")
           for i in range(10)]
    write_observations_bundle(tmp_path, site, obs)
    got = list(WifiSource.replay(tmp_path / "wifi.pcap", site))
    assert [(o.t, o.bssid, o.rssi_dbm, o.channel, o.freq_mhz) for o in got] == [
        (o.t, o.bssid, o.rssi_dbm, o.channel, o.freq_mhz) for o in obs]
