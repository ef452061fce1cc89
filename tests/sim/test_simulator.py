"""firmware_sim basics: determinism, bundle contents, replay through the agent's own sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_agent.bundle import Bundle
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, WifiObs
from edge_agent.site import load_site
from firmware_sim import SCENARIOS, simulate
from firmware_sim.fleet import write_fleet

REQUIRED = {"indoor_shift", "yard_trips", "sparse_aps", "stale_survey", "dense_ble"}


def test_scenarios_include_the_required_ones_plus_one() -> None:
    assert set(SCENARIOS) >= REQUIRED
    assert len(set(SCENARIOS) - REQUIRED - {"stale_survey_control"}) >= 1


def test_same_seed_same_run_other_seed_other_run() -> None:
    a = simulate("indoor_shift", seed=4, duration_s=120)
    b = simulate("indoor_shift", seed=4, duration_s=120)
    c = simulate("indoor_shift", seed=5, duration_s=120)
    assert a.observations == b.observations
    assert np.array_equal(a.truth.x, b.truth.x)
    assert a.observations != c.observations


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_bundle_replays_to_exactly_the_observations(name: str, tmp_path: Path) -> None:
    run = simulate(name, seed=11, duration_s=240)
    run.write_bundle(tmp_path)
    bundle = Bundle.open(tmp_path)
    assert list(bundle.observations()) == run.observations
    stats = bundle.stats()
    # every record of the pcaps is either an observation or a counted non-surveyed emitter
    for kind, cls in (("wifi", WifiObs), ("ble", BleObs)):
        if kind not in stats:
            continue
        n_obs = sum(isinstance(o, cls) for o in run.observations)
        assert stats[kind].observations == n_obs
        assert set(stats[kind].skipped) <= {"not_surveyed"}
    assert load_site(tmp_path / "site.json") == run.site
    # survey mode keeps every emitter: then every record of the pcaps is an observation
    everything = list(Bundle.open(tmp_path).observations(survey=True))
    assert sum(isinstance(o, WifiObs) for o in everything) == sum(len(c.t_us) for c in run.wifi)
    assert sum(isinstance(o, BleObs) for o in everything) == sum(len(c.t_us) for c in run.ble)


def test_bundle_files_and_truth(tmp_path: Path) -> None:
    run = simulate("yard_trips", seed=1, duration_s=60)
    run.write_bundle(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"site.json", "wifi.pcap", "ble.pcap",
                                                    "gps.nmea", "truth.csv"}
    rows = (tmp_path / "truth.csv").read_text().splitlines()
    assert rows[0] == "t,x,y,speed,moving"
    assert len(rows) == 1 + 600
    t = np.array([float(r.split(",")[0]) for r in rows[1:]])
    assert np.allclose(np.diff(t), 0.1)
    assert t[0] == 1795000000.0
    gnss = [o for o in run.observations if isinstance(o, GnssFix | GnssNoFix)]
    assert [o.t for o in gnss] == [1795000000.0 + k for k in range(60)]


def test_truth_kinematics_are_forklift_like() -> None:
    run = simulate("yard_trips", seed=3, duration_s=900)
    tr = run.truth
    assert 2.0 <= tr.speed.max() <= 3.6
    accel = np.diff(tr.speed) / 0.1
    assert np.abs(accel).max() < 1.5  # gentle: accel 0.7, braking 1.2 m/s^2
    step = np.hypot(np.diff(tr.x), np.diff(tr.y)) / 0.1
    assert np.allclose(step, (tr.speed[1:] + tr.speed[:-1]) / 2, atol=0.35)
    assert 0.15 < tr.moving.mean() < 0.9  # both moving and standing
    assert (tr.y > run.plant.wall_y_m).any()  # a yard trip happened


def test_fleet_writes_one_bundle_per_truck_same_site(tmp_path: Path) -> None:
    paths = write_fleet("indoor_shift", 3, seed=2, out_dir=tmp_path, duration_s=30)
    assert [p.name for p in paths] == ["fl-01", "fl-02", "fl-03"]
    sites = [load_site(p / "site.json") for p in paths]
    assert sites[0] == sites[1] == sites[2]
    truths = [(p / "truth.csv").read_text() for p in paths]
    assert len(set(truths)) == 3
    single = simulate("indoor_shift", seed=2, duration_s=30)
    assert list(Bundle.open(paths[0]).observations()) == single.observations


def test_cli_list_errors_and_bundle(tmp_path: Path) -> None:
    py = sys.executable
    out = subprocess.run([py, "-m", "firmware_sim", "--list"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == list(SCENARIOS)
    bad = subprocess.run([py, "-m", "firmware_sim", "no_such", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "no_such" in bad.stderr
    ok = subprocess.run([py, "-m", "edge_agent", "simulate", "sparse_aps", "--seed", "3",
                         "--duration", "20", "--out", str(tmp_path / "b")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "b" / "wifi.pcap").exists()
    assert len(ok.stdout.strip().splitlines()) == 1


def test_beacons_in_the_pcap_count_up_like_a_real_ap(tmp_path: Path) -> None:
    """Sequence numbers and TSF advance by one beacon (102.4 ms, within the AP's clock error)
    per beacon interval, so a capture reads like one from a real monitor interface."""
    from scapy.layers.dot11 import Dot11, Dot11Beacon, RadioTap
    from scapy.utils import RawPcapReader

    run = simulate("sparse_aps", seed=1, duration_s=30)
    run.write_bundle(tmp_path)
    bssid = run.site.wifi_aps[0].bssid
    seqs, tsfs, times = [], [], []
    for data, meta in RawPcapReader(str(tmp_path / "wifi.pcap")):
        p = RadioTap(data)
        if p[Dot11].addr2 == bssid:
            seqs.append(p[Dot11].SC >> 4)
            tsfs.append(p[Dot11Beacon].timestamp)
            times.append(meta.sec + meta.usec * 1e-6)
    assert len(seqs) > 20
    beacons = np.diff(np.array(tsfs)) / 102_400
    assert np.allclose(beacons, np.round(beacons), atol=0.01)  # whole beacon intervals
    assert np.array_equal(np.round(beacons) % 4096, np.diff(seqs) % 4096)
    # TSF and capture time advance together (to the AP's +-25 ppm and the CSMA deferral)
    assert np.allclose(np.diff(np.array(tsfs)) * 1e-6, np.diff(times), atol=0.01)


def test_same_seed_same_bundle_bytes(tmp_path: Path) -> None:
    for d in ("a", "b"):
        simulate("dense_ble", seed=9, duration_s=60).write_bundle(tmp_path / d)
    for f in ("site.json", "wifi.pcap", "ble.pcap", "gps.nmea", "truth.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_simulate_command_has_the_simulator_options_and_says_when_it_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One option list (firmware_sim.cli.add_arguments) for both entry points; an agent installed
    without firmware_sim still parses `simulate` and says why it cannot run (one line, exit 2)."""
    import argparse

    from edge_agent.commands import simulate as command
    from edge_agent.errors import InputError
    from firmware_sim import cli

    def options(p: argparse.ArgumentParser) -> set[str]:
        return {s for a in p._actions for s in a.option_strings} | {
            a.dest for a in p._actions if not a.option_strings}

    direct = argparse.ArgumentParser()
    cli.add_arguments(direct)
    sub = argparse.ArgumentParser().add_subparsers()
    command.register(sub)
    assert options(direct) == options(sub.choices["simulate"]) >= {"--seed", "--trucks"}
    monkeypatch.setattr(command, "_cli", lambda: None)
    p = argparse.ArgumentParser()
    command.register(p.add_subparsers())
    args = p.parse_args(["simulate", "indoor_shift", "--out", "x"])
    with pytest.raises(InputError, match="not installed"):
        args.func(args)
