"""Calibration on firmware_sim captures: parameter recovery and the replay error it saves.

    .venv/bin/python benchmarks/calibration.py [--seeds 2] [--duration 1200] [--scenarios a,b]

Per scenario and seed: the first half of the run (receiver positions from truth) calibrates the
survey; recovery is |fitted - true| of rssi_1m_dbm and path_loss_exponent against the simulator's
true_site, beside |survey - true|; the moved-AP search is scored against the AP that really moved.
Then the Tracker replays the whole run with the survey and with the calibrated site, and the
position RMSE over the second half (data the fit never saw) is printed side by side.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np

from edge_agent.calibration import CalibrationResult, KnownPath, calibrate, model_error_db
from edge_agent.estimate import Estimate
from edge_agent.fusion.evaluate import Truth, score
from edge_agent.fusion.tracker import Tracker
from edge_agent.observations import BleObs, Observation, WifiObs
from edge_agent.site import Site

DEFAULT_SCENARIOS = "indoor_shift,stale_survey,sparse_aps,dense_ble"


@dataclass
class Recovery:
    rssi_nominal_db: list[float]
    rssi_fitted_db: list[float]
    ple_nominal: list[float]
    ple_fitted: list[float]
    curve_nominal_db: list[float]
    curve_fitted_db: list[float]
    moved_true: set[str]
    moved_found: set[str]
    moved_err_m: list[float]


def true_params(site: Site) -> dict[str, tuple[float, float, float, float]]:
    out = {a.bssid: (a.rssi_1m_dbm, a.path_loss_exponent, a.x, a.y) for a in site.wifi_aps}
    out.update({b.beacon_id: (b.rssi_1m_dbm, b.path_loss_exponent, b.x, b.y)
                for b in site.ble_beacons})
    return out


def recovery(survey: Site, true_site: Site, res: CalibrationResult) -> Recovery:
    truth = true_params(true_site)
    nominal = true_params(survey)
    rec = Recovery([], [], [], [], [], [], set(), set(), [])
    for key, (_p, _n, x, y) in nominal.items():
        t = truth.get(key)
        if t is not None and math.dist((x, y), (t[2], t[3])) > 5.0:
            rec.moved_true.add(key)
    for f in res.fits:
        t = truth.get(f.key)
        if t is None or f.status not in ("fitted", "offset_only"):
            continue
        rec.rssi_nominal_db.append(abs(f.nominal_rssi_1m_dbm - t[0]))
        rec.rssi_fitted_db.append(abs(f.rssi_1m_dbm - t[0]))
        rec.ple_nominal.append(abs(f.nominal_ple - t[1]))
        rec.ple_fitted.append(abs(f.path_loss_exponent - t[1]))
        rec.curve_nominal_db.append(model_error_db(f.nominal_rssi_1m_dbm, f.nominal_ple, t[0],
                                                   t[1]))
        rec.curve_fitted_db.append(model_error_db(f.rssi_1m_dbm, f.path_loss_exponent, t[0],
                                                  t[1]))
        if f.moved and f.fitted_xy is not None:
            rec.moved_found.add(f.key)
            rec.moved_err_m.append(math.dist(f.fitted_xy, (t[2], t[3])))
    return rec


def replay(site: Site, observations: list[Observation]) -> list[Estimate]:
    tr = Tracker(site)
    out: list[Estimate] = []
    for ob in observations:
        out.extend(tr.process(ob))
    out.extend(tr.finish())
    return out


def main() -> None:
    from firmware_sim import simulate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=1200.0)
    ap.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    args = ap.parse_args()
    print("per run: n fitted; |d rssi_1m| p50/p90 and |d exponent| p50, survey -> fit; curve "
          "error 5-60 m (RMS dB) p50/p90, survey -> fit;\nmoved APs true/found (+false) and "
          "the found position's error; tracker RMSE over the run's 2nd half, survey -> "
          "calibrated, and the ratio")
    print(f"{'scenario':14} {'seed':>4} {'n':>3} {'|drssi_1m| dB':>24} {'|dn|':>14} "
          f"{'curve dB':>24} {'moved':>12} {'err m':>6} {'RMSE m':>15} {'ratio':>6} "
          f"{'fit s':>6}")
    ratios: list[float] = []
    curve_all: tuple[list[float], list[float]] = ([], [])
    for name in args.scenarios.split(","):
        for seed in range(args.seeds):
            run = simulate(name, seed=seed, duration_s=args.duration)
            obs = list(run.observations)
            t = np.asarray(run.truth.t)
            t_mid = float(t[0] + (t[-1] - t[0]) / 2)
            path = KnownPath(t[t < t_mid], np.asarray(run.truth.x)[t < t_mid],
                             np.asarray(run.truth.y)[t < t_mid])
            radio = [o for o in obs if isinstance(o, WifiObs | BleObs) and o.t < t_mid]
            t0 = time.perf_counter()
            res = calibrate(run.site, radio, path)
            fit_s = time.perf_counter() - t0
            rec = recovery(run.site, run.true_site, res)
            truth = Truth(t, np.asarray(run.truth.x), np.asarray(run.truth.y),
                          np.asarray(run.truth.speed), np.asarray(run.truth.moving))
            second = [float(s) for s in range(math.ceil(t_mid), math.floor(t[-1]) + 1)]
            rmse = [score(run.site, truth, replay(s, obs), mask_t=second).rmse_m
                    for s in (run.site, res.site)]
            ratios.append(rmse[1] / rmse[0])

            def p(v: list[float], q: float) -> float:
                return float(np.percentile(v, q)) if v else float("nan")

            found = f"{len(rec.moved_true)}/{len(rec.moved_found & rec.moved_true)}"
            if rec.moved_found - rec.moved_true:
                found += f"+{len(rec.moved_found - rec.moved_true)} false"
            err = f"{max(rec.moved_err_m):.1f}" if rec.moved_err_m else "-"
            print(f"{name:14} {seed:4d} {len(rec.rssi_fitted_db):3d} "
                  f"{p(rec.rssi_nominal_db, 50):5.2f}/{p(rec.rssi_nominal_db, 90):5.2f} -> "
                  f"{p(rec.rssi_fitted_db, 50):4.2f}/{p(rec.rssi_fitted_db, 90):5.2f} "
                  f"{p(rec.ple_nominal, 50):5.3f} -> {p(rec.ple_fitted, 50):5.3f} "
                  f"{p(rec.curve_nominal_db, 50):5.2f}/{p(rec.curve_nominal_db, 90):5.2f} -> "
                  f"{p(rec.curve_fitted_db, 50):4.2f}/{p(rec.curve_fitted_db, 90):5.2f} "
                  f"{found:>12} {err:>6} {rmse[0]:6.2f} -> {rmse[1]:5.2f} {ratios[-1]:6.2f} "
                  f"{fit_s:6.2f}")
            curve_all[0].extend(rec.curve_nominal_db)
            curve_all[1].extend(rec.curve_fitted_db)
    print(f"all runs: curve error 5-60 m p50 survey {np.median(curve_all[0]):.2f} dB -> fitted "
          f"{np.median(curve_all[1]):.2f} dB; replay RMSE ratio calibrated/survey, geometric "
          f"mean {math.exp(float(np.mean(np.log(ratios)))):.3f}")


if __name__ == "__main__":
    main()
