"""The simulator's building blocks against their definitions: random fields, fading, the plant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from firmware_sim.fields import FadingField, ShadowField, rician_log_mean_db
from firmware_sim.motion import MotionParams, drive_profile
from firmware_sim.plant import hall_with_yard


def test_shadow_field_has_gudmundson_correlation() -> None:
    rng = np.random.default_rng(0)
    lags = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    acc = np.zeros(len(lags))
    var = 0.0
    n_fields = 150
    for _ in range(n_fields):
        f = ShadowField.draw(rng, 4.0, 4.0)
        x, y = rng.uniform(0, 100, 300), rng.uniform(0, 60, 300)
        a = rng.uniform(0, 2 * math.pi, 300)
        s0 = f(x, y)
        var += float(np.mean(s0 ** 2))
        for i, lag in enumerate(lags):
            acc[i] += float(np.mean(s0 * f(x + lag * np.cos(a), y + lag * np.sin(a))))
    assert var / n_fields == pytest.approx(16.0, rel=0.1)
    assert np.allclose(acc / n_fields / 16.0, np.exp(-lags / 4.0), atol=0.06)


def test_shadow_field_is_a_function_of_position_only() -> None:
    f = ShadowField.draw(np.random.default_rng(1), 4.0, 4.0)
    x = np.array([3.0, 50.0])
    assert np.array_equal(f(x, x), f(x, x))
    assert np.all(ShadowField.draw(np.random.default_rng(1), 0.0, 4.0)(x, x) == 0.0)


@pytest.mark.parametrize("k_db", [4.0, -100.0])
def test_fading_is_rician_with_zero_log_mean(k_db: float) -> None:
    rng = np.random.default_rng(2)
    lm = rician_log_mean_db(k_db)
    vals = []
    for _ in range(200):
        f = FadingField.draw(rng, 2437.0, k_db, 0.5, lm)
        vals.append(f(rng.uniform(0, 50, 200), rng.uniform(0, 50, 200), np.zeros(200)))
    v = np.concatenate(vals)
    assert abs(v.mean()) < 0.25
    lin = 10 ** (v / 10) * 10 ** (lm / 10)  # back to unit-mean power
    assert lin.mean() == pytest.approx(1.0, rel=0.06)
    # Rayleigh: power is exponential, P(|h|^2 < 0.1) = 1 - exp(-0.1) = 9.5 %; Rician K=4 dB: less
    deep = (lin < 0.1).mean()
    if k_db < -50:
        assert deep == pytest.approx(1 - math.exp(-0.1), abs=0.02)
    else:
        assert deep < 0.05


def test_fading_decorrelates_within_half_a_wavelength_but_barely_moves_in_time() -> None:
    rng = np.random.default_rng(3)
    lm = rician_log_mean_db(4.0)
    lam_m = 299_792_458.0 / 2437e6
    space, time_sd = [], []
    for _ in range(200):
        f = FadingField.draw(rng, 2437.0, 4.0, 0.5, lm)
        x = rng.uniform(0, 50, 100)
        # first zero of Clarke's autocorrelation J0(2 pi d / lambda): d = 0.383 lambda
        a, b = f(x, x, np.zeros(100)), f(x + 0.383 * lam_m, x, np.zeros(100))
        space.append(np.corrcoef(a, b)[0, 1])
        t = np.arange(0.0, 60.0, 0.5)
        time_sd.append(np.std(f(np.full(len(t), 7.0), np.full(len(t), 9.0), t)))
    assert abs(np.mean(space)) < 0.15
    assert np.median(time_sd) < 2.0  # a standing receiver: flutter, not fades


def test_route_graph_splits_at_junctions_and_reaches_every_place() -> None:
    plant = hall_with_yard("t")
    g = plant.graph
    for a in (plant.park, *plant.docks):
        for b in (*plant.racks[:5], *plant.yard_spots):
            path = g.shortest_path(a, b)
            assert path[0] == a and path[-1] == b
    # every aisle edge is a straight piece between nodes, none longer than the pitch of places
    assert max(math.dist(g.nodes[i], g.nodes[j]) for i, j, *_ in g.edges) <= 20.0


def test_drive_profile_respects_limits_and_rounds_corners() -> None:
    mp = MotionParams()
    pts = [(0.0, 0.0), (20.0, 0.0), (20.0, 20.0)]
    t, x, y, v = drive_profile(pts, [3.0, 3.0], mp)
    assert v[0] == 0.0 and v[-1] == 0.0 and v.max() <= 3.0 + 1e-9
    dv = np.diff(v)
    dt = np.diff(t)
    assert (dv / dt).max() <= mp.accel_mps2 + 1e-6
    assert (-dv / dt).max() <= mp.decel_mps2 + 1e-6
    corner = (x > 17.6) & (y < 2.4)  # on the 2.5 m arc
    assert v[corner].max() <= math.sqrt(mp.lateral_accel_mps2 * mp.turn_radius_m) + 1e-9
    assert np.hypot(x - 20.0, y).min() > 0.5  # the corner is cut on an arc, not at the vertex
    assert (x[-1], y[-1]) == (20.0, 20.0)


def test_wall_crossing_through_doors_only_below_their_height() -> None:
    plant = hall_with_yard("t")
    door = plant.doors[0]
    x = np.array([door.x_m, door.x_m + 10.0, door.x_m])
    y = np.array([50.0, 50.0, 50.0])
    crosses, via = plant.wall_crossing(x, y, 2.0, door.x_m, 70.0, 2.0)
    assert crosses.all()
    assert via.tolist() == [True, False, True]
    crosses, via = plant.wall_crossing(x[:1], y[:1], 2.0, door.x_m, 70.0, 30.0)  # high AP
    assert crosses[0] and not via[0]


def test_interference_bursts_cover_the_configured_share_of_time() -> None:
    from firmware_sim.receivers import in_bursts, interference_bursts

    starts, ends = interference_bursts(np.random.default_rng(4), 0.0, 20000.0, 0.03, 0.4)
    assert np.all(np.diff(starts) > 0) and np.all(ends > starts)
    t = np.arange(0.0, 20000.0, 0.05)
    assert in_bursts(t, starts, ends).mean() == pytest.approx(0.03, rel=0.15)
    assert np.mean(ends - starts) == pytest.approx(0.4, rel=0.1)


def test_an_ap_outage_silences_exactly_that_ap_for_its_duration() -> None:
    from edge_agent.observations import WifiObs
    from firmware_sim import SCENARIOS, simulate

    run = simulate("high_bay", seed=1, duration_s=900)
    idx, start_s, dur_s = SCENARIOS["high_bay"].wifi.outage or (0, 0.0, 0.0)
    bssid = run.site.wifi_aps[idx].bssid
    t = np.array([o.t - run.t0 for o in run.observations
                  if isinstance(o, WifiObs) and o.bssid == bssid])
    assert not ((t >= start_s + 0.01) & (t < start_s + dur_s)).any()
    assert (t < start_s).any() and (t >= start_s + dur_s).any()
