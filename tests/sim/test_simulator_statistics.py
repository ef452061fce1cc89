"""Statistics of what firmware_sim writes match its configured models.

Each test fits or counts from the observations (as the bundle replays them) against the truth,
so a model that silently stops doing what docs/simulator.md says fails here.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from edge_agent.observations import BleObs, WifiObs
from firmware_sim import SCENARIOS, SimRun, simulate
from firmware_sim.receivers import BEACON_AIRTIME_S

Array = npt.NDArray[np.float64]
RX_HEIGHT_M = SCENARIOS["indoor_shift"].wifi.link.rx_height_m


def wifi_arrays(run: SimRun) -> tuple[Array, Array, npt.NDArray[np.str_], Array, Array, Array]:
    obs = [o for o in run.observations if isinstance(o, WifiObs)]
    t = np.array([o.t for o in obs])
    rssi = np.array([o.rssi_dbm for o in obs])
    bssid = np.array([o.bssid for o in obs])
    tr = run.truth
    return (t, rssi, bssid, np.interp(t, tr.t, tr.x), np.interp(t, tr.t, tr.y),
            np.interp(t, tr.t, tr.speed))


def fit_path_loss(run: SimRun, max_d_m: float = 30.0, fixed_exponent: bool = False
                  ) -> list[tuple[float, float, float, float]]:
    """Per AP (fit rssi_1m, fit n, true rssi_1m, true n) from frames heard while moving closer
    than max_d_m (where the -92 dBm sensitivity censors nothing), for APs passed within 8 m."""
    _t, rssi, bssid, x, y, v = wifi_arrays(run)
    out = []
    for ap in run.true_site.wifi_aps:
        m = (bssid == ap.bssid) & (v > 0.5)
        d = np.sqrt((x[m] - ap.x) ** 2 + (y[m] - ap.y) ** 2 + (RX_HEIGHT_M - ap.z) ** 2)
        sel = d < max_d_m
        if sel.sum() < 100 or d.min() > 8.0:
            continue
        r, ld = rssi[m][sel], -10 * np.log10(d[sel])
        if fixed_exponent:
            a = float(np.mean(r - ap.path_loss_exponent * ld))
            out.append((a, ap.path_loss_exponent, ap.rssi_1m_dbm, ap.path_loss_exponent))
            continue
        coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(r)), ld]), r, rcond=None)
        out.append((float(coef[0]), float(coef[1]), ap.rssi_1m_dbm, ap.path_loss_exponent))
    return out


def test_path_loss_fit_recovers_true_parameters_without_shadowing() -> None:
    sc = SCENARIOS["indoor_shift"]
    no_shadow = replace(sc, wifi=replace(sc.wifi, link=replace(sc.wifi.link,
                                                               shadow_sigma_db=0.0)))
    run = simulate(no_shadow, seed=2, duration_s=3600)
    fits = fit_path_loss(run)
    assert len(fits) >= 8
    d_a = np.array([f[0] - f[2] for f in fits])
    d_n = np.array([f[1] - f[3] for f in fits])
    # Per AP the slope is known only to ~0.1 (distances 5-30 m, 4 dB fading), and the
    # intercept, an extrapolation to 1 m, to ~1.5 dB; across APs the errors average out.
    assert np.abs(d_a).max() < 4.0, d_a
    assert np.abs(d_n).max() < 0.35, d_n
    assert abs(d_a.mean()) < 0.8  # fading is zero-mean in dB, rounding unbiased
    assert abs(d_n.mean()) < 0.08
    # and non-parametrically: the mean residual against the true law is flat with distance
    _t, rssi, bssid, x, y, v = wifi_arrays(run)
    for ap in run.true_site.wifi_aps:
        m = (bssid == ap.bssid) & (v > 0.5)
        d = np.sqrt((x[m] - ap.x) ** 2 + (y[m] - ap.y) ** 2 + (RX_HEIGHT_M - ap.z) ** 2)
        res = rssi[m] - (ap.rssi_1m_dbm - 10 * ap.path_loss_exponent * np.log10(d))
        k = np.digitize(d, [5.0, 10.0, 15.0, 20.0, 30.0])
        for j in range(1, 5):
            if (k == j).sum() >= 80:
                assert abs(res[k == j].mean()) < 1.5, (ap.bssid, j)


def test_rssi_1m_recovered_with_shadowing_and_offsets_differ_from_survey() -> None:
    run = simulate("indoor_shift", seed=3, duration_s=3600)
    fits = fit_path_loss(run, fixed_exponent=True)
    d_a = np.array([f[0] - f[2] for f in fits])
    assert len(fits) >= 8
    assert np.abs(d_a).max() < 4.0, d_a  # the local shadowing mean of a few dozen patches
    assert abs(d_a.mean()) < 1.2
    survey = {ap.bssid: ap for ap in run.site.wifi_aps}
    offsets = np.array([ap.rssi_1m_dbm - survey[ap.bssid].rssi_1m_dbm
                        for ap in run.true_site.wifi_aps])
    assert (offsets < 0).mean() > 0.6  # the truck's radio hears less than the survey phone
    assert offsets.std() > 1.0  # and APs differ from each other by several dB
    expo = np.array([ap.path_loss_exponent for ap in run.true_site.wifi_aps])
    assert expo.std() > 0.05


def test_shadowing_correlation_length_from_residuals() -> None:
    bins = np.array([0.3, 0.8, 1.5, 2.5, 3.5, 4.5, 6.0, 8.0])
    s_sum = np.zeros(len(bins) - 1)
    n_sum = np.zeros(len(bins) - 1)
    rng = np.random.default_rng(0)
    for seed in range(1, 5):  # four plants: the field of one route is too few patches
        run = simulate("indoor_shift", seed=seed, duration_s=900)
        _t, rssi, bssid, x, y, v = wifi_arrays(run)
        for ap in run.true_site.wifi_aps:
            m = (bssid == ap.bssid) & (v > 0.5)
            d = np.sqrt((x[m] - ap.x) ** 2 + (y[m] - ap.y) ** 2 + (RX_HEIGHT_M - ap.z) ** 2)
            sel = d < 30
            e = rssi[m][sel] - (ap.rssi_1m_dbm - 10 * ap.path_loss_exponent * np.log10(d[sel]))
            px, py = x[m][sel], y[m][sel]
            if len(e) > 700:
                i = rng.choice(len(e), 700, replace=False)
                e, px, py = e[i], px[i], py[i]
            lag = np.hypot(px[:, None] - px[None], py[:, None] - py[None])
            k = np.digitize(lag, bins) - 1
            prod = e[:, None] * e[None]
            for j in range(len(bins) - 1):
                s_sum[j] += prod[k == j].sum()
                n_sum[j] += (k == j).sum()
    cov = s_sum / n_sum
    mid = (bins[1:] + bins[:-1]) / 2
    slope, icpt = np.polyfit(mid, np.log(cov), 1)
    link = SCENARIOS["indoor_shift"].wifi.link
    # fading decorrelates within centimetres, so beyond 0.3 m only shadowing is left
    assert 0.6 * link.shadow_corr_m < -1 / slope < 1.6 * link.shadow_corr_m
    assert 0.6 * link.shadow_sigma_db ** 2 < np.exp(icpt) < 1.5 * link.shadow_sigma_db ** 2


@pytest.fixture(scope="module")
def shift() -> SimRun:
    return simulate("indoor_shift", seed=5, duration_s=1200)


def test_wifi_frame_rate_per_ap_near_the_ap(shift: SimRun) -> None:
    sc = shift.scenario.wifi
    t, _rssi, bssid, x, y, _v = wifi_arrays(shift)
    tr = shift.truth
    expected = (1 / sc.beacon_interval_s / len(sc.channels) * (1 - sc.switch_s / sc.dwell_s)
                * (1 - sc.link.frame_loss))
    n_tot = 0
    s_tot = 0.0
    for ap in shift.true_site.wifi_aps:
        near_t = np.hypot(tr.x - ap.x, tr.y - ap.y) < 12  # strong: nothing lost to sensitivity
        near_f = (bssid == ap.bssid) & (np.hypot(x - ap.x, y - ap.y) < 12)
        s_tot += near_t.sum() * 0.1
        n_tot += near_f.sum()
        times = np.sort(t[bssid == ap.bssid])
        gaps = np.diff(times)
        within = gaps[gaps < 0.15]  # consecutive beacons inside one dwell
        assert abs(np.median(within) - sc.beacon_interval_s) < 0.001
    assert s_tot > 300
    assert n_tot / s_tot == pytest.approx(expected, rel=0.08)


def test_monitor_hears_one_channel_at_a_time(shift: SimRun) -> None:
    sc = shift.scenario.wifi
    obs = [o for o in shift.observations if isinstance(o, WifiObs)]
    cycle = sc.dwell_s * len(sc.channels)
    for ch in sc.channels:
        phase = np.sort(np.array([(o.t - BEACON_AIRTIME_S) % cycle for o in obs
                                  if o.channel == ch]))
        # all frames of a channel fall into one dwell-long arc of the hopping cycle
        gaps = np.diff(np.concatenate([phase, [phase[0] + cycle]]))
        assert cycle - gaps.max() <= sc.dwell_s + 0.003


def test_sensitivity_censors_weak_frames_and_rssi_is_integer(shift: SimRun) -> None:
    _, rssi, *_ = wifi_arrays(shift)
    link = shift.scenario.wifi.link
    assert np.all(rssi == np.round(rssi))
    # a soft threshold: a few frames are decoded below the nominal sensitivity, none far below
    assert rssi.min() >= link.sensitivity_dbm - 8 * link.sensitivity_soft_db
    assert (rssi < link.sensitivity_dbm - 3 * link.sensitivity_soft_db).mean() < 0.005
    assert (rssi < link.sensitivity_dbm).mean() < 0.03


def test_ble_advertisement_rate_near_each_beacon() -> None:
    shift = simulate("dense_ble", seed=5, duration_s=900)
    bc = shift.scenario.ble
    assert bc is not None
    obs = [o for o in shift.observations if isinstance(o, BleObs)]
    tr = shift.truth
    ratios = []
    loss = 1 - (1 - bc.link.frame_loss) * (1 - shift.world.ble_collision_loss)
    for em in shift.world.ble:
        if not em.surveyed:
            continue
        te = em.true
        near_t = np.hypot(tr.x - te.x, tr.y - te.y) < 7
        if near_t.sum() * 0.1 < 30:
            continue
        ts = np.array([o.t for o in obs if o.beacon_id == em.beacon_id])
        xs, ys = np.interp(ts, tr.t, tr.x), np.interp(ts, tr.t, tr.y)
        n = (np.hypot(xs - te.x, ys - te.y) < 7).sum()
        expected = 1 / (em.interval_s + bc.adv_delay_max_s / 2) * (1 - loss)
        ratios.append(n / (near_t.sum() * 0.1) / expected)
    assert len(ratios) >= 3
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.1)


def test_wall_and_door_loss_between_hall_and_yard() -> None:
    run = simulate("yard_trips", seed=2, duration_s=1800)
    _t, rssi, bssid, x, y, _v = wifi_arrays(run)
    plant = run.plant
    link = run.scenario.wifi.link
    wall_res: list[Array] = []
    open_res: list[Array] = []
    for ap in run.true_site.wifi_aps[12:]:  # the two APs on the outside of the wall
        m = bssid == ap.bssid
        d = np.sqrt((x[m] - ap.x) ** 2 + (y[m] - ap.y) ** 2 + (RX_HEIGHT_M - ap.z) ** 2)
        res = rssi[m] - (ap.rssi_1m_dbm - 10 * ap.path_loss_exponent * np.log10(d))
        crosses, via_door = plant.wall_crossing(x[m], y[m], RX_HEIGHT_M, ap.x, ap.y, ap.z)
        close = d < 15
        wall_res.append(res[close & crosses & ~via_door])
        open_res.append(res[close & ~crosses])
    loss = np.mean(np.concatenate(open_res)) - np.mean(np.concatenate(wall_res))
    assert loss == pytest.approx(link.wall_loss_db, abs=3.0)


def test_stale_survey_twin_differs_only_in_the_moved_ap() -> None:
    stale = simulate("stale_survey", seed=1, duration_s=300)
    ctrl = simulate("stale_survey_control", seed=1, duration_s=300)
    assert stale.site == ctrl.site  # the same survey
    assert np.array_equal(stale.truth.x, ctrl.truth.x)
    idx, _dx, _dy = stale.scenario.wifi.moved_ap or (0, 0.0, 0.0)
    moved = stale.true_site.wifi_aps[idx]
    where = ctrl.true_site.wifi_aps[idx]
    assert np.hypot(moved.x - where.x, moved.y - where.y) == pytest.approx(25.0)
    others_s = [o for o in stale.observations if getattr(o, "bssid", None) != moved.bssid]
    others_c = [o for o in ctrl.observations if getattr(o, "bssid", None) != moved.bssid]
    assert others_s == others_c
    assert ([o for o in stale.observations if getattr(o, "bssid", None) == moved.bssid]
            != [o for o in ctrl.observations if getattr(o, "bssid", None) == moved.bssid])
