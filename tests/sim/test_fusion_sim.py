"""Seeded simulations through the tracker: error bounds, wild GNSS fixes, a moved AP, idle trucks.

Runs are short (5-15 simulated minutes) to keep the suite fast; benchmarks/accuracy.py runs the
full scenarios. Bounds sit a little above what these runs give (figures in docs/fusion.md): they
catch regressions; the issue's targets (RMSE <= 5 m everywhere) are not all met yet.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from edge_agent.estimate import Estimate
from edge_agent.fusion.baselines import weighted_centroid
from edge_agent.fusion.evaluate import Truth, gnss_seconds, motion_figures, score
from edge_agent.fusion.tracker import Tracker, TrackerParams
from edge_agent.observations import GnssFix, Observation

firmware_sim = pytest.importorskip("firmware_sim")
from firmware_sim.plans import plan_site  # noqa: E402


@cache
def _sim(name: str, seed: int, duration_s: float) -> object:
    return firmware_sim.simulate(name, seed=seed, duration_s=duration_s)


def _truth(run: object) -> Truth:
    tr = run.truth  # type: ignore[attr-defined]
    get = (lambda k: getattr(tr, k)) if hasattr(tr, "t") else (lambda k: tr[k])
    return Truth(*(np.asarray(get(k), dtype=np.float64) for k in ("t", "x", "y", "speed",
                                                                   "moving")))


def _track(run: object, observations: list[Observation] | None = None
           ) -> tuple[list[Estimate], Tracker]:
    tr = Tracker(run.site)  # type: ignore[attr-defined]
    out: list[Estimate] = []
    for o in observations if observations is not None else run.observations:  # type: ignore[attr-defined]
        out.extend(tr.process(o))
    out.extend(tr.finish())
    return out, tr


@pytest.mark.parametrize(("name", "seed", "rmse_m", "p95_m"),
                         [("indoor_shift", 1, 9.0, 18.0), ("yard_trips", 2, 8.0, 16.0)])
def test_error_bounds_and_half_the_centroid(name: str, seed: int, rmse_m: float,
                                            p95_m: float) -> None:
    run = _sim(name, seed, 600.0)
    truth = _truth(run)
    est, _ = _track(run)
    site = run.site  # type: ignore[attr-defined]
    s = score(site, truth, est)
    c = score(site, truth, weighted_centroid(site, run.observations))  # type: ignore[attr-defined]
    assert s.rmse_m < rmse_m
    assert s.p95_m < p95_m
    assert s.rmse_m < 0.5 * c.rmse_m
    assert s.availability >= 0.99


def test_yard_with_gnss_is_within_two_and_a_half_metres() -> None:
    run = _sim("yard_trips", 2, 600.0)
    truth = _truth(run)
    est, _ = _track(run)
    yard = score(run.site, truth, est).zones["yard"]  # type: ignore[attr-defined]
    assert yard[0] > 60  # the run does go out
    assert yard[1] < 2.5


def test_wild_indoor_fixes_are_gated() -> None:
    run = _sim("indoor_shift", 3, 300.0)
    truth = _truth(run)
    obs = list(run.observations)  # type: ignore[attr-defined]
    t0 = truth.t[0]
    wild_t = [t0 + 200.5 + k for k in range(5)]
    wild = []
    for t in wild_t:
        x, y, _ = truth.at(np.array([t]))
        wild.append(GnssFix(t, float(x[0]) + 30.0, float(y[0]), 1.5, 0.8, 1))
    with_wild = sorted([*obs, *wild], key=lambda o: o.t)
    clean, _ = _track(run, obs)
    dirty, tr = _track(run, with_wild)
    assert tr.stats["gnss_gated"] >= 4
    by_t = {e.t: e for e in clean}
    worst = max(math.hypot(e.x_m - by_t[e.t].x_m, e.y_m - by_t[e.t].y_m)
                for e in dirty if 200 <= e.t - t0 <= 210)
    assert worst < 3.0


@pytest.mark.parametrize("seed", [1, 5])  # 5: with the survey's exponents the moved AP fitted
def test_moved_ap_is_detected_and_reported(seed: int) -> None:  # the search area's corner best
    run = _sim("stale_survey", seed, 900.0)
    surveyed = {a.bssid: (a.x, a.y) for a in run.site.wifi_aps}  # type: ignore[attr-defined]
    real = {a.bssid: (a.x, a.y) for a in run.true_site.wifi_aps}  # type: ignore[attr-defined]
    moved = [b for b in surveyed if math.dist(surveyed[b], real[b]) > 10.0]
    assert len(moved) == 1
    _, tr = _track(run)
    h = tr.health()
    assert h["moved"] == moved
    assert h["emitters"][moved[0]]["moved"] is True  # type: ignore[index]
    control = _sim("stale_survey_control", seed, 900.0)
    _, tr_c = _track(control)
    assert tr_c.health()["moved"] == []


def test_an_ap_that_fades_faster_than_surveyed_is_not_reported_moved() -> None:
    # yard_trips seed 4 (30 min): one AP's best-fitting spot with the survey's exponent lay far
    # away (flagged at 384 s); with the learnt exponents it fits where it hangs
    _, tr = _track(_sim("yard_trips", 4, 1800.0))
    assert tr.health()["moved"] == []
    assert tr.stats["epochs"] >= 1790


def test_standing_truck_does_not_drift_and_is_seen_idle() -> None:
    run = _sim("indoor_shift", 4, 600.0)
    truth = _truth(run)
    est, _ = _track(run)
    te = np.array([e.t for e in est])
    _, _, moving = truth.at(te)
    # idle stretches of at least 30 s, skipping 8 s after the stop (detection delay)
    spreads = []
    idle_flags = []
    k = 0
    while k < len(est):
        j = k
        while j < len(est) and not moving[j]:
            j += 1
        if j - k >= 30:
            seg = est[k + 8:j]
            xs = np.array([e.x_m for e in seg])
            ys = np.array([e.y_m for e in seg])
            spreads.append(float(np.max(np.hypot(xs - np.median(xs), ys - np.median(ys)))))
            idle_flags.extend(not e.moving for e in seg)
        k = j + 1
    assert spreads, "the run has no idle stretch"
    assert max(spreads) < 2.5
    assert np.mean(idle_flags) > 0.9


def test_yard_driving_without_frame_pairs_is_seen_moving_from_the_gnss_speed() -> None:
    # high_bay seed 0: in the yard few APs are heard (no frame pairs for the fading cue); the
    # fixes' speed over ground carries the motion cue there (moving share 31.7 % without it)
    run = _sim("high_bay", 0, 900.0)
    est, _ = _track(run)
    m = motion_figures(_truth(run), est)
    assert abs(m["moving_share_est"] - m["moving_share_true"]) < 0.03


def test_plan_without_yard_aisles_tracks_the_yard_as_open_ground() -> None:
    # site.json draws the hall's aisles only: the yard becomes open ground of the route filter
    # (GNSS places the truck there) instead of the whole site going to the 2-D tracker
    run = _sim("yard_trips", 2, 600.0)
    site = run.site  # type: ignore[attr-defined]
    hall_only = plan_site(site, "hall")
    truth = _truth(run)
    figures = {}
    for open_ground in (True, False):
        tr = Tracker(hall_only, TrackerParams(route_open_ground=open_ground))
        est = [e for o in run.observations for e in tr.process(o)]  # type: ignore[attr-defined]
        est += tr.finish()
        figures[open_ground] = (tr.mode, score(site, truth, est).zones)
    mode, zones = figures[True]
    assert mode == "route"
    assert zones["yard"][0] > 60 and zones["yard"][1] < 2.5  # measured 1.56 m
    assert zones["hall"][1] < 6.0  # measured 4.87 m (dock doors inferred)
    mode_2d, zones_2d = figures[False]
    assert mode_2d == "2d"
    assert zones["hall"][1] < zones_2d["hall"][1] - 0.5  # 2-D: 6.24 m


def test_confident_yard_fixes_the_track_cannot_explain_reseed_it() -> None:
    # high_bay seed 0 leaves the hall at 283 s while the track is lost 40 m inside: fixes in
    # the yard that no outdoor mass explains seed mass by them, and the track follows sooner
    run = _sim("high_bay", 0, 600.0)
    truth = _truth(run)
    obs = list(run.observations)  # type: ignore[attr-defined]
    keep = gnss_seconds(obs, run.site, truth)  # type: ignore[attr-defined]
    figures = {}
    for fixes in (2, 0):
        tr = Tracker(run.site, TrackerParams(reseed_fixes=fixes))  # type: ignore[attr-defined]
        est = [e for o in obs for e in tr.process(o)] + tr.finish()
        est = [e for e in est if e.valid and e.t in keep]
        tx, ty, _ = truth.at(np.array([e.t for e in est]))
        err = np.hypot(np.array([e.x_m for e in est]) - tx, np.array([e.y_m for e in est]) - ty)
        figures[fixes] = (float(np.sqrt(np.mean(err ** 2))), tr.stats["gnss_reseeds"])
    assert figures[2][1] > 0 and figures[0][1] == 0
    assert figures[2][0] < figures[0][0] - 0.5  # measured 3.56 against 4.72 m
