"""`edge-agent calibrate`: fit each AP's and beacon's rssi_1m and exponent from known positions."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from edge_agent.calibration import (
    DEFAULT_RX_HEIGHT_M,
    CalibrationResult,
    KnownPositions,
    calibrate,
    load_points_csv,
    load_truth_csv,
)
from edge_agent.commands.survey import bundle_sources, capture_sources
from edge_agent.site import load_site


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit each AP's RSSI at 1 m and path-loss exponent from known positions",
        description="Stand at a few known points (--points) or walk a known path (--truth) while "
                    "the agent records; this fits every surveyed AP and beacon robustly "
                    "(Huber then bisquare IRLS on RSSI against log10 distance, samples near the "
                    "receiver's floor left out), reports residuals and the APs that look moved, "
                    "and writes an updated site.json.")
    p.add_argument("--site", required=True, type=Path, help="the survey to calibrate")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundle", type=Path, metavar="DIR",
                     help="capture bundle recorded during the calibration walk")
    src.add_argument("--capture", nargs="+", type=Path, metavar="FILE",
                     help="pcap files recorded during the calibration walk")
    pos = p.add_mutually_exclusive_group(required=True)
    pos.add_argument("--points", type=Path, metavar="CSV",
                     help="standing points: t_start,t_end,x,y (UTC s, site metres)")
    pos.add_argument("--truth", type=Path, metavar="CSV",
                     help="a known path: t,x,y (UTC s, site metres), e.g. a bundle's truth.csv")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write the calibrated site (default: SITE with "
                        ".calibrated.json)")
    p.add_argument("--rx-height", type=float, default=DEFAULT_RX_HEIGHT_M, metavar="M",
                   help=f"receiver antenna height above the floor (default {DEFAULT_RX_HEIGHT_M})")
    p.add_argument("--wifi-floor", type=float, default=None, metavar="DBM",
                   help="Wi-Fi receiver sensitivity (default: the weakest RSSI heard)")
    p.add_argument("--ble-floor", type=float, default=None, metavar="DBM",
                   help="BLE receiver sensitivity (default: the weakest RSSI heard)")
    p.add_argument("--keep-positions", action="store_true",
                   help="report moved APs but keep their surveyed positions in the output")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def format_report(res: CalibrationResult) -> str:
    lines = [f"{'kind':4} {'id':44} {'status':15} {'n':>6}  {'rssi_1m dBm':>22}  "
             f"{'exponent':>18}  {'resid. dB':>11}  moved"]
    for f in res.fits:
        if f.status in ("fitted", "offset_only"):
            p1 = f"{f.nominal_rssi_1m_dbm:6.1f} -> {f.rssi_1m_dbm:6.1f}±{f.rssi_1m_se_db:3.1f}"
            ple = f"{f.nominal_ple:4.2f} -> {f.path_loss_exponent:4.2f}±{f.ple_se:4.2f}"
            res_db = f"{f.nominal_residual_rms_db:4.1f}->{f.residual_rms_db:4.1f}"
        else:
            p1, ple, res_db = "kept", "kept", "-"
        moved = (f"YES: at ({f.fitted_xy[0]:.1f}, {f.fitted_xy[1]:.1f}), {f.moved_by_m:.1f} m "
                 f"away" if f.moved and f.fitted_xy else "no")
        lines.append(f"{f.kind:4} {f.key:44.44} {f.status:15} {f.n_samples:6d}  {p1:>22}  "
                     f"{ple:>18}  {res_db:>11}  {moved}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    positions: KnownPositions = (load_points_csv(args.points) if args.points
                                 else load_truth_csv(args.truth))
    sources = (bundle_sources(args.bundle, site) if args.bundle
               else capture_sources(args.capture, site))
    floors = {k: v for k, v in (("wifi", args.wifi_floor), ("ble", args.ble_floor))
              if v is not None}
    res = calibrate(site, itertools.chain.from_iterable(sources), positions,
                    rx_height_m=args.rx_height, sensitivity_dbm=floors,
                    move_aps=not args.keep_positions)
    out = args.out or args.site.with_name(args.site.stem + ".calibrated.json")
    res.site.save(out)
    if args.json:
        print(json.dumps({"fits": [f.to_dict() for f in res.fits],
                          "floor_dbm": res.floor_dbm,
                          "samples_with_position": res.samples_with_position,
                          "samples_without_position": res.samples_without_position,
                          "out": str(out)}, indent=2))
    else:
        print(format_report(res))
    fitted = sum(1 for f in res.fits if f.status in ("fitted", "offset_only"))
    moved = ", ".join(f.key for f in res.moved) or "none"
    print(f"calibrate: {fitted} of {len(res.fits)} transmitters fitted from "
          f"{res.samples_with_position} samples with a known position "
          f"({res.samples_without_position} without); moved: {moved}; wrote {out}",
          file=sys.stderr)
    return 0
