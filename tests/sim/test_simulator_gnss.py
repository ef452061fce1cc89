"""GNSS receiver model: outdoor error statistics, indoor outages, wild fixes, sentences written.

The fixes are read back from gps.nmea through the agent's own GnssSource and compared with
where the truck really stood.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_agent.observations import GnssFix, GnssNoFix
from edge_agent.sources.gnss import GnssSource
from firmware_sim import SCENARIOS, simulate
from firmware_sim.gnss import simulate_gnss
from firmware_sim.motion import Track
from firmware_sim.run import T0_S
from firmware_sim.world import build_world


def parked(x_m: float, y_m: float, duration_s: float) -> Track:
    return Track(np.array([T0_S, T0_S + duration_s]), np.array([x_m, x_m]),
                 np.array([y_m, y_m]), np.zeros(2))


def replay_parked(tmp_path: Path, x_m: float, y_m: float, duration_s: float,
                  seed: int = 1) -> list[GnssFix | GnssNoFix]:
    sc = SCENARIOS["yard_trips"]
    plant = sc.plant()
    site = build_world(sc, plant, 0).survey
    gc = replace(sc.gnss, gsa=False, gsv=False)  # fewer sentences to parse: a faster test
    epochs = simulate_gnss(gc, plant, site, parked(x_m, y_m, duration_s), T0_S,
                           duration_s, np.random.default_rng(seed))
    path = tmp_path / "gps.nmea"
    path.write_text("\r\n".join(line for e in epochs for line in e.lines) + "\r\n")
    return list(GnssSource.replay(path, site))


def test_open_sky_error_is_slow_gauss_markov_with_the_configured_sigma(tmp_path: Path) -> None:
    gc = SCENARIOS["yard_trips"].gnss
    x0, y0 = 50.0, 86.0  # 26 m from the hall wall: multipath negligible
    n = 12000
    obs = replay_parked(tmp_path, x0, y0, n)
    assert len(obs) == n
    assert all(isinstance(o, GnssFix) for o in obs[10:])  # open sky: after the first fix,
    fixes = [o for o in obs if isinstance(o, GnssFix)]  # one every second
    ex = np.array([f.x_m - x0 for f in fixes])
    ey = np.array([f.y_m - y0 for f in fixes])
    wild = np.hypot(ex, ey) > 12
    sigma = gc.outdoor_sigma_m * (1 + gc.wall_multipath_gain * math.exp(-26 / 6))
    assert np.std(ex[~wild]) == pytest.approx(sigma, rel=0.15)
    assert np.std(ey[~wild]) == pytest.approx(sigma, rel=0.15)
    lag = int(gc.tau_s)
    ok = ~wild[:-lag] & ~wild[lag:]
    rho = np.corrcoef(ex[:-lag][ok], ex[lag:][ok])[0, 1]
    assert rho == pytest.approx(math.exp(-1), abs=0.15)
    # wild fixes: 20-40 m off, at the configured rate, with an HDOP that looks fine
    starts = np.flatnonzero(wild[1:] & ~wild[:-1]).size + int(wild[0])
    expected = gc.wild_per_hour * n / 3600
    assert 0.5 * expected < starts < 1.6 * expected
    off = np.hypot(ex[wild], ey[wild])
    assert off.min() > gc.wild_range_m[0] - 8 and off.max() < gc.wild_range_m[1] + 8
    assert max(f.hdop for f, w in zip(fixes, wild, strict=True) if w) <= 1.2
    assert all(f.has_gst for f in fixes)


def test_deep_indoors_never_a_fix(tmp_path: Path) -> None:
    obs = replay_parked(tmp_path, 50.0, 25.0, 600)
    assert len(obs) == 600 and all(isinstance(o, GnssNoFix) for o in obs)


def test_near_a_door_inside_fixes_are_rare_bad_and_look_worse(tmp_path: Path) -> None:
    x0, y0 = 25.0, 56.0  # 4 m inside dock door 1
    obs = replay_parked(tmp_path, x0, y0, 3000)
    fixes = [o for o in obs if isinstance(o, GnssFix)]
    assert 0.02 < len(fixes) / len(obs) < 0.5
    err = np.array([math.hypot(f.x_m - x0, f.y_m - y0) for f in fixes])
    assert np.sqrt(np.mean(err ** 2)) > 4.0  # far worse than open sky
    assert np.median([f.hdop for f in fixes]) > 2.0


def test_gst_and_talker_per_scenario(tmp_path: Path) -> None:
    for name in ("indoor_shift", "yard_trips", "sparse_aps", "high_bay"):
        run = simulate(name, seed=1, duration_s=20)
        run.write_bundle(tmp_path / name)
        text = (tmp_path / name / "gps.nmea").read_text()
        gc = SCENARIOS[name].gnss
        assert (f"${gc.talker}RMC" in text) and (f"${gc.talker}GGA" in text)
        assert ("GST," in text) == (gc.gst and any(e.fix for e in run.gnss))
