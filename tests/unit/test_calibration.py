"""Calibration: the robust fit recovers known parameters, handles censoring, finds moved APs;
and `edge-agent calibrate` end to end (observations -> wifi.pcap bundle -> fit -> site.json)."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_agent.calibration import (
    KnownPath,
    StandingPoints,
    calibrate,
    fit_log_distance,
    load_points_csv,
    load_truth_csv,
    model_error_db,
)
from edge_agent.capture.writers import write_observations_bundle
from edge_agent.cli import main
from edge_agent.errors import InputError
from edge_agent.observations import BleObs, Observation, WifiObs
from edge_agent.site import BleBeacon, Bounds, Origin, Site, WifiAp, load_site

RX_H = 2.0
FLOOR = -92.0


def make_site(aps: list[tuple[str, float, float, float, float]]) -> Site:
    return Site("t", Origin(47.0, 7.0), Bounds(0, 0, 80, 60),
                wifi_aps=tuple(WifiAp(b, "s", 1, x, y, 6.0, p1, n) for b, x, y, p1, n in aps),
                ble_beacons=(BleBeacon("C0:00:00:00:00:01", "", None, None, 40, 30, 2.5, -60.0,
                                       2.0),))


TRUE = make_site([
    ("02:00:00:00:00:01", 10, 10, -38.0, 2.2),
    ("02:00:00:00:00:02", 70, 10, -45.0, 3.0),
    ("02:00:00:00:00:03", 40, 50, -41.0, 2.6),
    ("02:00:00:00:00:04", 55, 35, -40.0, 2.4),  # the survey has it at (20, 45): moved
])
SURVEY = make_site([
    ("02:00:00:00:00:01", 10, 10, -40.0, 2.5),
    ("02:00:00:00:00:02", 70, 10, -40.0, 2.5),
    ("02:00:00:00:00:03", 40, 50, -40.0, 2.5),
    ("02:00:00:00:00:04", 20, 45, -40.0, 2.5),
])


def lawnmower(t0: float = 1.8e9, speed: float = 1.5) -> KnownPath:
    """A walk over the whole floor, rows 6 m apart, sampled at 10 Hz."""
    pts = []
    for i, y in enumerate(np.arange(3.0, 60.0, 6.0)):
        xs = (3.0, 77.0) if i % 2 == 0 else (77.0, 3.0)
        pts += [(xs[0], y), (xs[1], y)]
    seg = [math.dist(a, b) for a, b in itertools.pairwise(pts)]
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.arange(0.0, s[-1] / speed, 0.1)
    x = np.interp(t * speed, s, [p[0] for p in pts])
    y = np.interp(t * speed, s, [p[1] for p in pts])
    return KnownPath(t + t0, x, y)


def simulate(path: KnownPath, site: Site, seed: int = 1, shadow_db: float = 4.0,
             outlier_frac: float = 0.05) -> list[Observation]:
    rng = np.random.default_rng(seed)
    obs: list[Observation] = []
    for t, x, y in zip(path.t_s[::2], path.x_m[::2], path.y_m[::2], strict=True):
        for ap in site.wifi_aps:
            d = math.sqrt((x - ap.x) ** 2 + (y - ap.y) ** 2 + (ap.z - RX_H) ** 2)
            r = ap.rssi_1m_dbm - 10 * ap.path_loss_exponent * math.log10(d)
            r += rng.normal(0, shadow_db)
            if rng.random() < outlier_frac:
                r -= rng.uniform(10, 25)  # body / pallet blocking
            if r >= FLOOR:  # the receiver never reports what it cannot hear
                obs.append(WifiObs(float(t), ap.bssid, round(r), 1))
        b = site.ble_beacons[0]
        d = math.sqrt((x - b.x) ** 2 + (y - b.y) ** 2 + (b.z - RX_H) ** 2)
        r = b.rssi_1m_dbm - 10 * b.path_loss_exponent * math.log10(d) + rng.normal(0, 5)
        if r >= -100:
            obs.append(BleObs(float(t), b.beacon_id, round(r)))
    return sorted(obs, key=lambda o: o.t)


def test_fit_recovers_parameters_on_clean_synthetic_data() -> None:
    rng = np.random.default_rng(0)
    d = rng.uniform(2, 60, 2000)
    r = -42.0 - 10 * 2.8 * np.log10(d) + rng.normal(0, 3, d.size)
    fit = fit_log_distance(d, r, floor_dbm=None)
    assert fit is not None
    assert fit.rssi_1m_dbm == pytest.approx(-42.0, abs=0.8)
    assert fit.path_loss_exponent == pytest.approx(2.8, abs=0.06)
    assert fit.sigma_db == pytest.approx(3.0, rel=0.15)


def test_censoring_at_the_floor_would_bias_the_exponent_and_is_handled() -> None:
    rng = np.random.default_rng(1)
    d = rng.uniform(2, 150, 5000)
    r = -40.0 - 10 * 3.0 * np.log10(d) + rng.normal(0, 5, d.size)
    heard = r >= -95.0
    naive = fit_log_distance(d[heard], r[heard], floor_dbm=None)
    fit = fit_log_distance(d[heard], r[heard], floor_dbm=-95.0)
    assert naive is not None and fit is not None
    assert abs(naive.path_loss_exponent - 3.0) > 0.15  # the bias this guards against is real
    assert fit.path_loss_exponent == pytest.approx(3.0, abs=0.12)
    assert fit.rssi_1m_dbm == pytest.approx(-40.0, abs=1.5)


def test_huber_resists_blocked_samples() -> None:
    rng = np.random.default_rng(2)
    d = rng.uniform(2, 50, 1500)
    r = -40.0 - 25 * np.log10(d) + rng.normal(0, 3, d.size)
    r[rng.random(d.size) < 0.15] -= 20.0
    fit = fit_log_distance(d, r, floor_dbm=None)
    assert fit is not None
    assert fit.rssi_1m_dbm == pytest.approx(-40.0, abs=1.5)
    assert fit.path_loss_exponent == pytest.approx(2.5, abs=0.1)


def test_narrow_distance_span_holds_the_exponent() -> None:
    rng = np.random.default_rng(3)
    d = rng.uniform(9, 11, 200)
    r = -40.0 - 25 * np.log10(d) + rng.normal(0, 2, d.size)
    fit = fit_log_distance(d, r, floor_dbm=None, ple_prior=2.5)
    assert fit is not None and fit.exponent_held and fit.path_loss_exponent == 2.5
    assert fit.rssi_1m_dbm == pytest.approx(-40.0, abs=1.0)


def test_calibrate_on_a_known_path_recovers_truth_and_finds_the_moved_ap() -> None:
    path = lawnmower()
    res = calibrate(SURVEY, simulate(path, TRUE), path, rx_height_m=RX_H)
    fits = {f.key: f for f in res.fits}
    for ap in TRUE.wifi_aps[:3]:
        f = fits[ap.bssid]
        assert f.status == "fitted" and not f.moved, f
        # rssi_1m is an extrapolation to 1 m and trades off against the exponent (drawn towards
        # the site's pooled one): the curve over 5-60 m is what is recovered tightly.
        err = model_error_db(f.rssi_1m_dbm, f.path_loss_exponent, ap.rssi_1m_dbm,
                             ap.path_loss_exponent)
        before = model_error_db(f.nominal_rssi_1m_dbm, f.nominal_ple, ap.rssi_1m_dbm,
                                ap.path_loss_exponent)
        assert err < 1.5 and err < before, (f, err, before)
        assert f.rssi_1m_dbm == pytest.approx(ap.rssi_1m_dbm, abs=4.0), f
        assert f.path_loss_exponent == pytest.approx(ap.path_loss_exponent, abs=0.35), f
        assert f.residual_rms_db < f.nominal_residual_rms_db
    moved = fits["02:00:00:00:00:04"]
    assert moved.moved and moved.fitted_xy is not None
    assert math.dist(moved.fitted_xy, (55, 35)) < 3.0
    assert moved.path_loss_exponent == pytest.approx(2.4, abs=0.2)
    assert [f.key for f in res.moved] == ["02:00:00:00:00:04"]
    ap4 = res.site.ap("02:00:00:00:00:04")
    assert ap4 is not None and math.dist((ap4.x, ap4.y), (55, 35)) < 3.0
    beacon = fits["C0:00:00:00:00:01"]
    assert beacon.kind == "ble" and beacon.status == "fitted"
    assert beacon.path_loss_exponent == pytest.approx(2.0, abs=0.2)


def test_calibrate_without_move_keeps_survey_positions() -> None:
    path = lawnmower()
    res = calibrate(SURVEY, simulate(path, TRUE), path, rx_height_m=RX_H, move_aps=False)
    ap4 = res.site.ap("02:00:00:00:00:04")
    assert ap4 is not None and (ap4.x, ap4.y) == (20, 45)


def test_standing_points_fit_offsets_and_unheard_aps_keep_survey_values() -> None:
    t0 = 1.8e9
    spots = [(10.0, 20.0), (30.0, 20.0), (60.0, 40.0), (40.0, 10.0), (15.0, 50.0), (70.0, 55.0)]
    pts = StandingPoints(tuple((t0 + 60 * i, t0 + 60 * i + 50, x, y)
                               for i, (x, y) in enumerate(spots)))
    t = np.arange(t0, t0 + 360, 0.2)
    px, py, ok = pts.positions_at(t)
    path = KnownPath(t[ok], px[ok], py[ok], max_gap_s=1.0)
    unheard = WifiAp("02:00:00:00:00:99", "x", 1, 5, 5, 3, -40, 2.5)
    site = replace(SURVEY, wifi_aps=(*SURVEY.wifi_aps[:3], unheard))
    true3 = replace(TRUE, wifi_aps=TRUE.wifi_aps[:3])
    res = calibrate(site, simulate(path, true3, shadow_db=3.0), pts, rx_height_m=RX_H,
                    locate_moved=False)
    fits = {f.key: f for f in res.fits}
    assert fits["02:00:00:00:00:99"].status == "not_heard"
    for ap in true3.wifi_aps[::2]:
        f = fits[ap.bssid]
        assert f.status in ("fitted", "offset_only")
        err = model_error_db(f.rssi_1m_dbm, f.path_loss_exponent, ap.rssi_1m_dbm,
                             ap.path_loss_exponent)
        assert err < 2.5, (f, err)
    # AP 2 is heard only within a few dB of the floor from these spots: no fit, survey kept.
    f2 = fits["02:00:00:00:00:02"]
    assert f2.status == "too_few_samples" and f2.rssi_1m_dbm == -40.0
    assert res.samples_without_position == 0


def test_csv_loaders_name_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "points.csv"
    p.write_text("t_start,t_end,x,y\n0,10,1,2\n20,15,3,4\n")
    with pytest.raises(InputError, match=r"line 3: t_end"):
        load_points_csv(p)
    p.write_text("t_start,t_end,x\n0,10,1\n")
    with pytest.raises(InputError, match="missing column"):
        load_points_csv(p)
    q = tmp_path / "truth.csv"
    q.write_text("t,x,y,speed,moving\n0,1,2,0,0\n0.1,abc,2,0,0\n")
    with pytest.raises(InputError, match=r"line 3: x.*'abc'"):
        load_truth_csv(q)
    q.write_text("t,x,y\n0,1,2\n1,2,3\n")
    kp = load_truth_csv(q)
    x, _y, ok = kp.positions_at(np.array([0.5, 5.0]))
    assert ok.tolist() == [True, False] and x[0] == pytest.approx(1.5)


@pytest.fixture
def walk_bundle(tmp_path: Path) -> tuple[Path, Path, Path]:
    path = lawnmower()
    obs = simulate(path, TRUE, seed=5)
    bundle = tmp_path / "walk"
    write_observations_bundle(bundle, SURVEY, obs)
    truth = bundle / "truth.csv"
    rows = ["t,x,y"] + [f"{t:.3f},{x:.3f},{y:.3f}"
                        for t, x, y in zip(path.t_s, path.x_m, path.y_m, strict=True)]
    truth.write_text("\n".join(rows) + "\n")
    site = tmp_path / "site.json"
    SURVEY.save(site)
    return bundle, truth, site


def test_cli_writes_calibrated_site_and_flags_the_moved_ap(
        walk_bundle: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bundle, truth, site = walk_bundle
    assert main(["calibrate", "--site", str(site), "--bundle", str(bundle), "--truth",
                 str(truth), "--rx-height", "2.0", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    out = Path(report["out"])
    assert out == site.with_name("site.calibrated.json")
    moved = [f["key"] for f in report["fits"] if f["moved"]]
    assert moved == ["02:00:00:00:00:04"]
    assert "moved: 02:00:00:00:00:04" in captured.err
    cal = load_site(out)
    for ap in TRUE.wifi_aps:
        got = cal.ap(ap.bssid)
        assert got is not None
        err = model_error_db(got.rssi_1m_dbm, got.path_loss_exponent, ap.rssi_1m_dbm,
                             ap.path_loss_exponent)
        assert err < 2.0, (got, err)
    ap4 = cal.ap("02:00:00:00:00:04")
    assert ap4 is not None and math.dist((ap4.x, ap4.y), (55, 35)) < 3.0
    beacon = next(f for f in report["fits"] if f["kind"] == "ble")
    assert beacon["status"] == "fitted"
    assert beacon["fitted"]["path_loss_exponent"] == pytest.approx(2.0, abs=0.25)


def test_cli_points_csv_and_keep_positions(walk_bundle: tuple[Path, Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bundle, truth, site = walk_bundle
    t = np.loadtxt(truth, delimiter=",", skiprows=1)
    # Six 20 s "standing points" cut out of the walk (the receiver moves 30 m in each: a rough
    # test of the CSV path, not of standing accuracy).
    pts = tmp_path / "points.csv"
    rows = ["t_start,t_end,x,y"]
    for i in range(0, len(t) - 200, len(t) // 6):
        rows.append(f"{t[i, 0]:.1f},{t[i, 0] + 1.0:.1f},{t[i, 1]:.2f},{t[i, 2]:.2f}")
    pts.write_text("\n".join(rows) + "\n")
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--site", str(site), "--bundle", str(bundle), "--points", str(pts),
                 "--out", str(out), "--keep-positions"]) == 0
    text = capsys.readouterr()
    assert "rssi_1m dBm" in text.out and f"wrote {out}" in text.err
    ap4 = load_site(out).ap("02:00:00:00:00:04")
    assert ap4 is not None and (ap4.x, ap4.y) == (20, 45)


def test_cli_bad_points_file_exits_2(walk_bundle: tuple[Path, Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bundle, _truth, site = walk_bundle
    pts = tmp_path / "points.csv"
    pts.write_text("t_start,t_end,x,y\n10,5,1,1\n")
    assert main(["calibrate", "--site", str(site), "--bundle", str(bundle), "--points",
                 str(pts)]) == 2
    assert "line 2: t_end" in capsys.readouterr().err


def test_indoor_mask_matches_site_is_indoor() -> None:
    from edge_agent.calibration import indoor_mask
    from edge_agent.site import Zone

    site = Site("a", Origin(0, 0), Bounds(0, 0, 100, 90), zones=(
        Zone("hall", ((0, 0), (100, 0), (100, 60), (0, 60)), True),
        Zone("yard", ((0, 60), (100, 60), (100, 90), (0, 90)), False)))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-5, 105, 5000), rng.uniform(-5, 95, 5000)
    ref = np.array([site.is_indoor(a, b) for a, b in zip(x, y, strict=True)])
    assert (indoor_mask(site, x, y) == ref).all()


def test_samples_across_the_exterior_wall_are_left_out() -> None:
    from edge_agent.site import Zone

    zones = (Zone("hall", ((0, 0), (80, 0), (80, 40), (0, 40)), True),
             Zone("yard", ((0, 40), (80, 40), (80, 60), (0, 60)), False))
    true = replace(TRUE, wifi_aps=TRUE.wifi_aps[:3], zones=zones)
    survey_site = replace(SURVEY, wifi_aps=SURVEY.wifi_aps[:3], zones=zones)
    path = lawnmower()
    obs = simulate(path, true, seed=3)
    # A 12 dB exterior wall between AP 1 (indoor) and the yard, which the fit must not absorb.
    walled = [replace(o, rssi_dbm=o.rssi_dbm - 12) if isinstance(o, WifiObs)
              and o.bssid.endswith("01") and path.positions_at(np.array([o.t]))[1][0] > 40
              else o for o in obs]
    res = calibrate(survey_site, walled, path, rx_height_m=RX_H, locate_moved=False)
    f = next(f for f in res.fits if f.key.endswith("01"))
    assert f.path_loss_exponent == pytest.approx(2.2, abs=0.15), f
    assert f.rssi_1m_dbm == pytest.approx(-38.0, abs=2.0), f


def test_distances_clamp_at_the_trackers_far_field_limit() -> None:
    # A frame heard closer than 1 m counts as heard at 1 m, exactly as fusion.models evaluates
    # the curve (before, calibration clamped at 0.1 m and the tracker at 1 m).
    from edge_agent.fusion.models import MIN_DISTANCE_M, rssi_dbm

    assert MIN_DISTANCE_M == 1.0
    rng = np.random.default_rng(3)
    d = np.concatenate([np.full(20, 0.3), rng.uniform(2.0, 40.0, 200)])
    r = -40.0 - 25.0 * np.log10(np.maximum(d, 1.0)) + rng.normal(0.0, 1.0, len(d))
    near = fit_log_distance(d, r, floor_dbm=None)
    at_1m = fit_log_distance(np.maximum(d, 1.0), r, floor_dbm=None)
    assert near is not None and at_1m is not None
    assert near.rssi_1m_dbm == at_1m.rssi_1m_dbm
    assert near.path_loss_exponent == at_1m.path_loss_exponent
    # and the fitted curve predicts what the tracker's model predicts under the AP
    pred = rssi_dbm(0.0, 0.0, np.array([0.2]), np.array([0.0]), np.array([0.0]),
                    np.array([near.rssi_1m_dbm]), np.array([near.path_loss_exponent]))
    assert float(pred[0]) == pytest.approx(near.rssi_1m_dbm)
