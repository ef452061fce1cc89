"""Tracker on hand-made observation streams: emission timing, warm-up, gating, bounds, health."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge_agent.estimate import Estimate
from edge_agent.fusion.tracker import Tracker, TrackerParams
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Site, site_from_dict

T0 = 1_795_000_000.0
APS = [("02:00:00:00:00:01", 5.0, 5.0), ("02:00:00:00:00:02", 55.0, 5.0),
       ("02:00:00:00:00:03", 5.0, 45.0), ("02:00:00:00:00:04", 55.0, 45.0),
       ("02:00:00:00:00:05", 30.0, 25.0)]


def _site(aisles: bool = False) -> Site:
    d: dict[str, object] = {
        "site": "t", "origin": {"lat": 47.0, "lon": 7.0},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 60, "ymax": 80},
        "zones": [{"name": "hall", "polygon": [[0, 0], [60, 0], [60, 50], [0, 50]],
                   "indoor": True},
                  {"name": "yard", "polygon": [[0, 50], [60, 50], [60, 80], [0, 80]],
                   "indoor": False}],
        "wifi_aps": [{"bssid": b, "ssid": "s", "channel": 1, "x": x, "y": y, "z": 4.0,
                      "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5} for b, x, y in APS],
        "ble_beacons": [{"address": "C0:00:00:00:00:01", "x": 30.0, "y": 10.0, "z": 2.5,
                         "rssi_1m_dbm": -59.0, "path_loss_exponent": 2.0}],
    }
    if aisles:
        # one aisle, and one zone it covers (the tracker ignores aisles that leave a sizeable
        # zone uncovered, see aisle_coverage.py: here all of the zone is near the aisle)
        d["aisles"] = [{"from": [10.0, 20.0], "to": [50.0, 20.0], "width_m": 3.0}]
        d["zones"] = [{"name": "hall", "polygon": [[5, 14], [55, 14], [55, 26], [5, 26]],
                       "indoor": True}]
    return site_from_dict(d)


def _rssi(x: float, y: float, ax: float, ay: float) -> float:
    d = math.sqrt((x - ax) ** 2 + (y - ay) ** 2 + 2.5 ** 2)
    return -40.0 - 25.0 * math.log10(d)


def _standing(x: float, y: float, seconds: int, rng: np.random.Generator | None = None,
              start: float = T0, frame_sigma_db: float = 0.3) -> list[Observation]:
    """Beacons of every AP at 0.1 s spacing from (x, y). Standing, fading changes slowly: a
    per-second error (sigma 2 dB) plus a small frame-to-frame one; `frame_sigma_db` large is
    what a moving receiver sees (fast fading decorrelates over centimetres)."""
    out: list[Observation] = []
    for s in range(seconds):
        slow = {b: float(rng.normal(0, 2.0)) if rng is not None else 0.0 for b, _, _ in APS}
        for k in range(5):
            for b, ax, ay in APS:
                fast = float(rng.normal(0, frame_sigma_db)) if rng is not None else 0.0
                out.append(WifiObs(start + s + 0.05 + 0.1 * k, b,
                                   _rssi(x, y, ax, ay) + slow[b] + fast, 1))
    return out


def _run(tr: Tracker, obs: list[Observation]) -> list[Estimate]:
    est: list[Estimate] = []
    for o in obs:
        est.extend(tr.process(o))
    est.extend(tr.finish())
    return est


def test_estimate_for_t_waits_for_later_data_and_includes_data_at_t() -> None:
    tr = Tracker(_site())
    b = APS[0][0]
    assert tr.process(WifiObs(T0 + 0.2, b, -60.0, 1)) == []
    assert tr.process(WifiObs(T0 + 1.0, b, -60.0, 1)) == []  # t == 1 s belongs to second 1
    out = tr.process(WifiObs(T0 + 1.01, b, -60.0, 1))
    assert [e.t for e in out] == [T0 + 1.0]
    assert tr.stats["frames"] == 2
    assert [e.t for e in tr.finish()] == [T0 + 2.0]


def test_every_whole_second_of_a_gap_is_emitted() -> None:
    tr = Tracker(_site())
    obs = _standing(20.0, 20.0, 3)
    est = _run(tr, [*obs, *_standing(20.0, 20.0, 2, start=T0 + 6)])
    ts = [e.t - T0 for e in est]
    assert ts == [float(k) for k in range(1, 9)]
    assert all(e.valid for e in est)


def test_no_position_before_enough_emitters() -> None:
    tr = Tracker(_site())
    b = APS[0][0]
    est = _run(tr, [WifiObs(T0 + 0.5, b, -60.0, 1), WifiObs(T0 + 1.5, b, -60.0, 1)])
    assert [e.valid for e in est] == [False, False]


def test_noise_free_standing_truck_is_found_and_does_not_drift() -> None:
    est = _run(Tracker(_site()), _standing(20.0, 30.0, 120))
    late = [e for e in est if e.t - T0 > 60]
    errs = [math.hypot(e.x_m - 20.0, e.y_m - 30.0) for e in late]
    # Standing still, place and survey offsets are confounded: the filter converges slowly
    # (by design, see docs/fusion.md) but steadily and without wandering.
    assert max(errs) < 5.5
    assert errs[-1] < 4.5
    xs = [e.x_m for e in late]
    ys = [e.y_m for e in late]
    assert max(xs) - min(xs) < 1.0 and max(ys) - min(ys) < 1.0
    assert not any(e.moving for e in late)
    assert all(e.speed_mps == 0.0 for e in late)


def test_wild_indoor_fix_is_gated_and_does_not_pull_the_track() -> None:
    rng = np.random.default_rng(0)
    obs = _standing(20.0, 30.0, 90, rng)
    # a confident-looking fix 30 m off, every second for 10 s
    obs += [GnssFix(T0 + 60 + s + 0.5, 50.0, 10.0, 1.5, 0.8, 1) for s in range(10)]
    obs.sort(key=lambda o: o.t)
    tr = Tracker(_site())
    est = _run(tr, obs)
    during = [e for e in est if 60 < e.t - T0 <= 72]
    assert max(math.hypot(e.x_m - 20.0, e.y_m - 30.0) for e in during) < 5.0
    assert tr.stats["gnss_gated"] >= 8


def test_outdoor_fixes_alone_give_a_position_near_them() -> None:
    rng = np.random.default_rng(1)
    obs: list[Observation] = [GnssFix(T0 + s + 0.5, 30.0 + float(rng.normal(0, 1.0)),
                                      65.0 + float(rng.normal(0, 1.0)), 1.0, 0.7, 1)
                              for s in range(40)]
    obs.append(GnssNoFix(T0 + 40.5))
    tr = Tracker(_site())
    est = _run(tr, obs)
    assert est[0].valid
    assert math.hypot(est[-2].x_m - 30.0, est[-2].y_m - 65.0) < 2.0
    assert tr.stats["gnss_no_fix"] == 1


def test_estimates_stay_inside_the_site_bounds() -> None:
    # signals that best fit a point outside the bounds
    est = _run(Tracker(_site()), _standing(-15.0, -10.0, 30))
    assert all(0.0 <= e.x_m <= 60.0 and 0.0 <= e.y_m <= 80.0 for e in est if e.valid)


def test_aisle_prior_keeps_the_2d_estimate_on_it() -> None:
    # the 2-D grids with the aisle prior (use_route=False): the route filter's cells all lie on
    # the centre line, so only the 2-D path can leave the aisle
    rng = np.random.default_rng(2)
    obs = _standing(30.0, 21.0, 60, rng)
    grid_only = TrackerParams(use_route=False)
    free = _run(Tracker(_site(), grid_only), obs)
    snapped = _run(Tracker(_site(aisles=True), grid_only), obs)
    assert abs(snapped[-1].y_m - 20.0) < abs(free[-1].y_m - 20.0) + 0.2
    assert abs(snapped[-1].y_m - 20.0) < 1.5 + 1.0  # inside the aisle, to one 2 m cell


def test_unsurveyed_emitters_are_counted_not_used() -> None:
    tr = Tracker(_site())
    _run(tr, [WifiObs(T0 + 0.5, "02:ff:ff:ff:ff:ff", -50.0, 1),
              BleObs(T0 + 0.6, "AA:BB:CC:DD:EE:FF", -60.0)])
    assert tr.stats["unknown_frames"] == 2


def test_health_is_json_and_names_every_emitter() -> None:
    tr = Tracker(_site())
    _run(tr, _standing(20.0, 30.0, 20))
    h = json.loads(json.dumps(tr.health()))
    assert set(h["emitters"]) == {b for b, _, _ in APS} | {"C0:00:00:00:00:01"}
    assert h["moved"] == []
    assert h["epochs"] == 20


@pytest.mark.parametrize("moving_y", [12.0])
def test_a_truck_that_drives_is_seen_moving(moving_y: float) -> None:
    rng = np.random.default_rng(3)
    obs: list[Observation] = []
    obs += _standing(10.0, moving_y, 30, rng)
    for s in range(30):  # 1.5 m/s along x
        obs += _standing(10.0 + 1.5 * s, moving_y, 1, rng, start=T0 + 30 + s,
                         frame_sigma_db=5.0)
    est = _run(Tracker(_site()), obs)
    first = [e.moving for e in est if 10 < e.t - T0 <= 30]
    second = [e.moving for e in est if 40 < e.t - T0 <= 60]
    assert sum(first) <= 2
    assert sum(second) >= 15
    assert est[-1].x_m > 40.0


def test_a_long_silence_is_not_emitted_second_by_second() -> None:
    tr = Tracker(_site())
    obs = _standing(20.0, 30.0, 5)
    later = _standing(20.0, 30.0, 5, start=T0 + 3 * 365 * 86400.0)  # a log whose clock jumps
    est = _run(tr, [*obs, *later])
    assert len(est) < 200
    assert tr.stats["restarts"] == 1
    assert est[-1].valid and est[-1].t > T0 + 3 * 365 * 86400.0
    assert not any(e.valid for e in est if T0 + 70 < e.t < T0 + 3 * 365 * 86400.0)


def test_consistent_outdoor_fixes_win_over_a_wrong_start() -> None:
    # a cold start puts the first fix 80 m off; the next ones agree with each other
    obs: list[Observation] = [GnssFix(T0 + 0.5, 10.0, 55.0, 3.0, 1.0, 1)]
    obs += [GnssFix(T0 + s + 0.5, 50.0, 75.0 - 0.01 * s, 1.5, 0.8, 1) for s in range(1, 20)]
    tr = Tracker(_site())
    est = _run(tr, obs)
    assert tr.stats["gnss_track_resets"] == 1
    assert math.hypot(est[-2].x_m - 50.0, est[-2].y_m - 75.0) < 2.0


def test_standing_still_does_not_pile_up_confidence_in_the_coarse_grid() -> None:
    """Standing, every second repeats the same shadowing: the coarse grid takes it as a fraction
    of a second, like the EKF's fix, instead of sharpening as if each were new information."""
    from dataclasses import replace

    from edge_agent.fusion.tracker import TrackerParams

    obs = _standing(20.0, 20.0, 120, np.random.default_rng(3))
    spread = {}
    for temper in (False, True):
        tr = Tracker(_site(), replace(TrackerParams(), temper_coarse=temper))
        _run(tr, obs)
        _, _, cov = tr.grid.mean_cov()
        spread[temper] = float(np.trace(cov))
        assert not tr.motion.moving
    assert spread[True] > 1.5 * spread[False]


def test_grid_update_weight_scales_the_log_likelihood() -> None:
    from edge_agent.fusion.doors import WallModel
    from edge_agent.fusion.grid import GridFilter

    site = _site()
    ex = np.array([x for _, x, _ in APS])
    ey = np.array([y for _, _, y in APS])
    walls = WallModel(ex, ey, np.full(5, 2.0), np.ones(5, dtype=bool), 2.0)
    args = (site, 4.0, ex, ey, np.full(5, 2.0), np.full(5, -40.0), np.full(5, 2.5), walls)
    full, half = GridFilter(*args), GridFilter(*args)
    idx = np.arange(3)
    z = np.array([_rssi(20.0, 20.0, ax, ay) for _, ax, ay in APS[:3]])
    none = np.zeros(0, dtype=np.intp)
    full.update_rssi(idx, z, none)
    half.update_rssi(idx, z, none, weight=0.5)
    keep = full.logp > -50.0  # away from the floor
    assert full.logp.min() < -5.0  # the data do discriminate between cells
    assert np.allclose(half.logp[keep], 0.5 * full.logp[keep], atol=1e-9)


def _table_times(tr: Tracker, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Seconds (after T0) at which the tracker rebuilt its likelihood tables over 300 s of a
    standing truck."""
    when: list[float] = []
    build = tr._calibrate_tables

    def counted() -> None:
        when.append(float(tr._last_t or 0.0) - T0)
        build()

    monkeypatch.setattr(tr, "_calibrate_tables", counted)
    _run(tr, _standing(20.0, 15.0, 300, np.random.default_rng(3)))
    return when


@pytest.mark.parametrize("aisles", [False, True])
def test_tables_take_the_calibration_every_20_s_early_then_every_60_s(
        aisles: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _table_times(Tracker(_site(aisles)), monkeypatch) == [
        1.0, 21.0, 41.0, 61.0, 81.0, 101.0, 161.0, 221.0, 281.0]
    # as before 0.4: every 60 s from the start
    assert _table_times(Tracker(_site(aisles), TrackerParams(tables_early_every_s=60.0)),
                        monkeypatch) == [1.0, 61.0, 121.0, 181.0, 241.0]
