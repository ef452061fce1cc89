"""Per-AP (and per-beacon) calibration of the log-distance model from known receiver positions.

rssi = rssi_1m_dbm - 10 * path_loss_exponent * log10(d_3d), fitted robustly (Huber IRLS), with
samples near the receiver's sensitivity floor left out (censoring), and a search for APs that moved.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.errors import InputError
from edge_agent.observations import BleObs, Observation, WifiObs
from edge_agent.site import BleBeacon, Site, WifiAp

FloatArray = npt.NDArray[np.float64]

# Receiver antenna height: on a forklift's overhead guard, about 2 m above the floor.
DEFAULT_RX_HEIGHT_M = 2.0
# Huber's tuning constant: 95 % efficiency under Gaussian noise, bounded influence of outliers
# (a person or a pallet between the AP and the receiver costs 10-20 dB on single samples).
HUBER_K = 1.345
# Tukey bisquare constant: 95 % efficiency, zero weight beyond 4.685 sigma.
BISQUARE_C = 4.685
# Keep a sample only where the fitted mean is this many sigmas above the sensitivity floor: below
# that the receiver reports only the upper tail (weaker frames are never heard) and biases the fit.
CENSOR_MARGIN_SIGMA = 2.0
# Fewer samples than this and the fit is noise: keep the survey values.
MIN_SAMPLES = 30
# log10(d) must span at least this (a factor 2 in distance) to tell rssi_1m from the exponent;
# otherwise only rssi_1m is fitted with the survey exponent held.
MIN_LOG10_SPAN = 0.3
# Physical ranges; a fit outside them is clipped and the exponent held.
PLE_RANGE = (1.5, 5.0)
RSSI_1M_RANGE_DBM = (-90.0, -10.0)
# An AP "looks moved" when another position explains the data this much better (robust RMS ratio)
# and lies at least this far away; smaller shifts are within survey error.
MOVED_RMS_RATIO = 0.75
MOVED_MIN_DISTANCE_M = 4.0
# Position search grid for moved APs: coarse then fine, metres.
SEARCH_COARSE_M = 2.0
SEARCH_FINE_M = 0.5
# Receiver positions are binned to this size for the position search (medians per bin).
POSITION_BIN_M = 1.0
# A known path with a gap longer than this between its samples gives no position inside the gap.
MAX_PATH_GAP_S = 2.0


class KnownPositions(Protocol):
    """Where the receiver was at time t (site metres), or None when unknown."""

    def positions_at(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        ...


@dataclass(frozen=True)
class StandingPoints:
    """The engineer stood at (x, y) from t_start to t_end (points.csv)."""

    points: tuple[tuple[float, float, float, float], ...]  # (t_start, t_end, x, y)

    def positions_at(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        x = np.full(t_s.shape, np.nan)
        y = np.full(t_s.shape, np.nan)
        for t0, t1, px, py in self.points:
            m = (t_s >= t0) & (t_s <= t1)
            x[m], y[m] = px, py
        return x, y, ~np.isnan(x)


@dataclass(frozen=True)
class KnownPath:
    """A known path (truth.csv: t,x,y,...), linearly interpolated; gaps give no position."""

    t_s: FloatArray
    x_m: FloatArray
    y_m: FloatArray
    max_gap_s: float = MAX_PATH_GAP_S

    def positions_at(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        x = np.interp(t_s, self.t_s, self.x_m)
        y = np.interp(t_s, self.t_s, self.y_m)
        i = np.clip(np.searchsorted(self.t_s, t_s), 1, len(self.t_s) - 1)
        gap = self.t_s[i] - self.t_s[i - 1]
        ok = (t_s >= self.t_s[0]) & (t_s <= self.t_s[-1]) & (gap <= self.max_gap_s)
        return x, y, ok


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            for col in required:
                if col not in header:
                    raise InputError(path, f"missing column (need {','.join(required)})",
                                     field=col, value=",".join(header))
            return list(reader)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None


def _num(path: Path, row: dict[str, str], col: str, line: int) -> float:
    try:
        v = float(row[col])
    except (TypeError, ValueError):
        raise InputError(path, "must be a number", field=f"line {line}: {col}",
                         value=row[col]) from None
    if not math.isfinite(v):
        raise InputError(path, "must be finite", field=f"line {line}: {col}", value=row[col])
    return v


def load_points_csv(path: str | Path) -> StandingPoints:
    """points.csv: header t_start,t_end,x,y; one row per standing point (UTC s, site metres)."""
    p = Path(path)
    pts = []
    for i, row in enumerate(_read_csv(p, ("t_start", "t_end", "x", "y")), start=2):
        t0, t1 = _num(p, row, "t_start", i), _num(p, row, "t_end", i)
        if t1 <= t0:
            raise InputError(p, "t_end must be after t_start", field=f"line {i}: t_end",
                             value=row["t_end"])
        pts.append((t0, t1, _num(p, row, "x", i), _num(p, row, "y", i)))
    if not pts:
        raise InputError(p, "no standing points")
    return StandingPoints(tuple(pts))


def load_truth_csv(path: str | Path) -> KnownPath:
    """truth.csv (t,x,y,...): a known path, at any rate, time-sorted."""
    p = Path(path)
    rows = _read_csv(p, ("t", "x", "y"))
    if len(rows) < 2:
        raise InputError(p, "a path needs at least 2 rows", value=len(rows))
    t = np.array([_num(p, r, "t", i) for i, r in enumerate(rows, start=2)])
    if np.any(np.diff(t) <= 0):
        bad = int(np.argmax(np.diff(t) <= 0)) + 3
        raise InputError(p, "t must increase", field=f"line {bad}: t", value=rows[bad - 2]["t"])
    x = np.array([_num(p, r, "x", i) for i, r in enumerate(rows, start=2)])
    y = np.array([_num(p, r, "y", i) for i, r in enumerate(rows, start=2)])
    return KnownPath(t, x, y)


# --- the robust fit ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogDistanceFit:
    rssi_1m_dbm: float
    path_loss_exponent: float
    rssi_1m_se_db: float
    ple_se: float
    sigma_db: float  # robust residual scale (1.4826 * MAD) of the samples used
    n_used: int
    exponent_held: bool
    used: npt.NDArray[np.bool_]  # the samples clear of the floor, that the fit used


def _mad_sigma(r: FloatArray) -> float:
    return float(1.4826 * np.median(np.abs(r - np.median(r)))) if len(r) else float("nan")


def fit_log_distance(d_m: FloatArray, rssi_dbm: FloatArray, *, floor_dbm: float | None,
                     ple_prior: float = 2.5, iterations: int = 8) -> LogDistanceFit | None:
    """Robust IRLS fit of rssi = a - 10 n log10(d), leaving out samples near the floor.

    Huber iterations first (convex: a safe start), then Tukey's bisquare at the Huber scale (it
    rejects the one-sided -10..-25 dB blocked samples that Huber only down-weights). Returns None
    when fewer than MIN_SAMPLES lie clear of the floor. Holds n at `ple_prior` when log10(d) spans
    too little to separate a from n.
    """
    x = -10.0 * np.log10(np.maximum(d_m, 0.1))
    y = rssi_dbm.astype(np.float64)
    use = np.ones(len(y), dtype=bool)
    a, n = float(np.median(y - ple_prior * x)), ple_prior
    sigma = max(_mad_sigma(y - (a + n * x)), 1.0)
    held = False
    enough = True
    for it in range(2 * iterations):
        huber = it < iterations
        if floor_dbm is not None:
            # Censoring: keep only where the model puts the mean well above the floor.
            use = (a + n * x) >= floor_dbm + CENSOR_MARGIN_SIGMA * sigma
        enough = int(use.sum()) >= MIN_SAMPLES
        if not enough:
            use = np.ones(len(y), dtype=bool)  # provisional: the final pass must have enough
        xs, ys = x[use], y[use]
        held = float(np.ptp(xs)) / 10.0 < MIN_LOG10_SPAN
        r = ys - (a + n * xs)
        if huber:
            sigma = max(_mad_sigma(r), 0.5)
        u = np.abs(r) / sigma
        if huber:
            w = np.where(u <= HUBER_K, 1.0, HUBER_K / np.maximum(u, 1e-12))
        else:
            w = np.where(u < BISQUARE_C, (1.0 - (u / BISQUARE_C) ** 2) ** 2, 0.0)
        sw = float(np.sum(w))
        if sw <= 0:
            break
        if held:
            n = ple_prior
            a = float(np.sum(w * (ys - n * xs)) / sw)
        else:
            mx, my = np.sum(w * xs) / sw, np.sum(w * ys) / sw
            wsxx = float(np.sum(w * (xs - mx) ** 2))
            n = float(np.sum(w * (xs - mx) * (ys - my)) / wsxx)
            a = float(my - n * mx)
            if not PLE_RANGE[0] <= n <= PLE_RANGE[1]:
                n = float(np.clip(n, *PLE_RANGE))
                a = float(np.sum(w * (ys - n * xs)) / sw)
                held = True
    if not enough:
        return None
    xs, ys = x[use], y[use]
    r = ys - (a + n * xs)
    sigma = max(_mad_sigma(r), 0.5)
    m = len(xs)
    a_se: float
    n_se: float
    if held:
        a_se, n_se = sigma / math.sqrt(m), 0.0
    else:
        sxx = float(np.sum((xs - xs.mean()) ** 2))
        n_se = sigma / math.sqrt(sxx)
        a_se = sigma * math.sqrt(1.0 / m + float(xs.mean()) ** 2 / sxx)
    a = float(np.clip(a, *RSSI_1M_RANGE_DBM))
    return LogDistanceFit(a, n, a_se, n_se, sigma, m, held, use)


# --- per transmitter ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TransmitterFit:
    """The calibration of one AP or beacon, with what it was before and how well it fits."""

    kind: str  # "wifi" | "ble"
    key: str  # BSSID or beacon id
    status: str  # "fitted" | "offset_only" | "too_few_samples" | "not_heard"
    n_samples: int
    nominal_rssi_1m_dbm: float
    nominal_ple: float
    rssi_1m_dbm: float
    path_loss_exponent: float
    rssi_1m_se_db: float = 0.0
    ple_se: float = 0.0
    residual_rms_db: float = float("nan")  # robust, with the fitted values
    nominal_residual_rms_db: float = float("nan")  # robust, with the survey values
    nominal_xy: tuple[float, float] = (0.0, 0.0)
    fitted_xy: tuple[float, float] | None = None  # set when the AP looks moved
    moved: bool = False

    @property
    def moved_by_m(self) -> float:
        if self.fitted_xy is None:
            return 0.0
        return math.dist(self.fitted_xy, self.nominal_xy)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "kind": self.kind, "key": self.key, "status": self.status,
            "n_samples": self.n_samples,
            "nominal": {"rssi_1m_dbm": self.nominal_rssi_1m_dbm,
                        "path_loss_exponent": self.nominal_ple},
            "fitted": {"rssi_1m_dbm": round(self.rssi_1m_dbm, 2),
                       "path_loss_exponent": round(self.path_loss_exponent, 3),
                       "rssi_1m_se_db": round(self.rssi_1m_se_db, 2),
                       "ple_se": round(self.ple_se, 3)},
            "residual_rms_db": _round(self.residual_rms_db),
            "nominal_residual_rms_db": _round(self.nominal_residual_rms_db),
            "moved": self.moved,
        }
        if self.fitted_xy is not None:
            d["fitted_xy"] = [round(self.fitted_xy[0], 1), round(self.fitted_xy[1], 1)]
            d["moved_by_m"] = round(self.moved_by_m, 1)
        return d


def _round(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 2)


@dataclass
class CalibrationResult:
    site: Site  # the updated survey
    fits: list[TransmitterFit]
    samples_with_position: int = 0
    samples_without_position: int = 0
    floor_dbm: dict[str, float] = field(default_factory=dict)

    @property
    def moved(self) -> list[TransmitterFit]:
        return [f for f in self.fits if f.moved]


@dataclass
class _Samples:
    t: list[float] = field(default_factory=list)
    rssi: list[float] = field(default_factory=list)


def _robust_rms(rssi: FloatArray, d_m: FloatArray, a: float, n: float,
                use: npt.NDArray[np.bool_]) -> float:
    """1.4826 * median |residual|: an RMS that counts bias too and shrugs off blocked samples."""
    r = rssi[use] - (a - 10.0 * n * np.log10(np.maximum(d_m[use], 0.1)))
    return float(1.4826 * np.median(np.abs(r))) if len(r) >= 3 else float("nan")


def _search_position(px: FloatArray, py: FloatArray, rssi: FloatArray, z_ap_m: float,
                     rx_height_m: float, site: Site, floor_dbm: float | None
                     ) -> tuple[tuple[float, float], float]:
    """Grid search for the AP position that best explains per-bin median RSSI (LS fit of a, n)."""
    keys = np.stack([np.round(px / POSITION_BIN_M), np.round(py / POSITION_BIN_M)], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    med = np.array([np.median(rssi[inv == i]) for i in range(len(uniq))])
    bx, by = uniq[:, 0] * POSITION_BIN_M, uniq[:, 1] * POSITION_BIN_M
    if floor_dbm is not None:
        keep = med >= floor_dbm + 3.0  # a median at the floor is censored: no distance information
        if keep.sum() >= 4:
            bx, by, med = bx[keep], by[keep], med[keep]
    dz2 = (z_ap_m - rx_height_m) ** 2

    def costs(cx: FloatArray, cy: FloatArray) -> FloatArray:
        d = np.sqrt((cx[:, None] - bx[None, :]) ** 2 + (cy[:, None] - by[None, :]) ** 2 + dz2)
        x = -10.0 * np.log10(np.maximum(d, 0.1))
        mx = x.mean(axis=1, keepdims=True)
        my = med.mean()
        sxx = ((x - mx) ** 2).sum(axis=1, keepdims=True)
        n = np.clip(((x - mx) * (med - my)).sum(axis=1, keepdims=True) / np.maximum(sxx, 1e-9),
                    *PLE_RANGE)
        a = my - n * mx
        r = med[None, :] - (a + n * x)
        # Robust cost: mean absolute residual (medians of bins already tame outliers).
        out: FloatArray = np.abs(r).mean(axis=1)
        return out

    b = site.bounds
    gx, gy = np.meshgrid(np.arange(b.xmin, b.xmax + 1e-9, SEARCH_COARSE_M),
                         np.arange(b.ymin, b.ymax + 1e-9, SEARCH_COARSE_M))
    cx, cy = gx.ravel(), gy.ravel()
    c = costs(cx, cy)
    i = int(np.argmin(c))
    fx, fy = np.meshgrid(
        np.arange(cx[i] - SEARCH_COARSE_M, cx[i] + SEARCH_COARSE_M + 1e-9, SEARCH_FINE_M),
        np.arange(cy[i] - SEARCH_COARSE_M, cy[i] + SEARCH_COARSE_M + 1e-9, SEARCH_FINE_M))
    c2 = costs(fx.ravel(), fy.ravel())
    j = int(np.argmin(c2))
    return (float(fx.ravel()[j]), float(fy.ravel()[j])), float(c2[j])


def _fit_one(kind: str, key: str, nominal: WifiAp | BleBeacon, px: FloatArray, py: FloatArray,
             rssi: FloatArray, *, site: Site, rx_height_m: float, floor_dbm: float | None,
             locate_moved: bool) -> TransmitterFit:
    base = TransmitterFit(kind, key, "too_few_samples", len(rssi), nominal.rssi_1m_dbm,
                          nominal.path_loss_exponent, nominal.rssi_1m_dbm,
                          nominal.path_loss_exponent, nominal_xy=(nominal.x, nominal.y))
    if len(rssi) < MIN_SAMPLES:
        return base
    dz2 = (nominal.z - rx_height_m) ** 2

    def dist(ax: float, ay: float) -> FloatArray:
        out: FloatArray = np.sqrt((px - ax) ** 2 + (py - ay) ** 2 + dz2)
        return out

    d = dist(nominal.x, nominal.y)
    fit = fit_log_distance(d, rssi, floor_dbm=floor_dbm, ple_prior=nominal.path_loss_exponent)
    if fit is None:
        return base
    above = fit.used
    nominal_rms = _robust_rms(rssi, d, nominal.rssi_1m_dbm, nominal.path_loss_exponent, above)
    fitted_rms = _robust_rms(rssi, d, fit.rssi_1m_dbm, fit.path_loss_exponent, above)
    fitted_xy: tuple[float, float] | None = None
    moved = False
    n_bins = len(np.unique(np.round(np.stack([px, py], 1) / POSITION_BIN_M), axis=0))
    if locate_moved and n_bins >= 6:
        (mx, my), _ = _search_position(px, py, rssi, nominal.z, rx_height_m, site, floor_dbm)
        if math.dist((mx, my), (nominal.x, nominal.y)) >= MOVED_MIN_DISTANCE_M:
            d2 = dist(mx, my)
            fit2 = fit_log_distance(d2, rssi, floor_dbm=floor_dbm,
                                    ple_prior=nominal.path_loss_exponent)
            if fit2 is not None:
                rms2 = _robust_rms(rssi, d2, fit2.rssi_1m_dbm, fit2.path_loss_exponent, above)
                if rms2 < MOVED_RMS_RATIO * fitted_rms:
                    moved, fitted_xy, fit, fitted_rms = True, (mx, my), fit2, rms2
    return TransmitterFit(kind, key, "offset_only" if fit.exponent_held else "fitted",
                          len(rssi), nominal.rssi_1m_dbm, nominal.path_loss_exponent,
                          fit.rssi_1m_dbm, fit.path_loss_exponent, fit.rssi_1m_se_db, fit.ple_se,
                          fitted_rms, nominal_rms, (nominal.x, nominal.y), fitted_xy, moved)


def calibrate(site: Site, observations: Iterable[Observation], positions: KnownPositions, *,
              rx_height_m: float = DEFAULT_RX_HEIGHT_M,
              sensitivity_dbm: dict[str, float] | None = None, locate_moved: bool = True,
              move_aps: bool = True, exclude_wall_crossing: bool = True) -> CalibrationResult:
    """Fit every surveyed AP and beacon heard while the receiver's position was known.

    `sensitivity_dbm` per kind ("wifi", "ble"): the receiver's floor; by default the weakest
    signal heard of that kind. `move_aps`: write the found position of moved APs into the site.
    `exclude_wall_crossing`: leave out samples taken on the other side of the exterior wall
    (an indoor/outdoor zone boundary, per the site.json spec) from the transmitter: the wall
    adds an unknown 5-15 dB that is not part of rssi_1m or the exponent.
    """
    samples: dict[tuple[str, str], _Samples] = defaultdict(_Samples)
    for ob in observations:
        if isinstance(ob, WifiObs):
            k = ("wifi", ob.bssid)
        elif isinstance(ob, BleObs):
            k = ("ble", ob.beacon_id)
        else:
            continue
        s = samples[k]
        s.t.append(ob.t)
        s.rssi.append(ob.rssi_dbm)
    floors: dict[str, float] = dict(sensitivity_dbm or {})
    for kind in ("wifi", "ble"):
        heard = [min(s.rssi) for (kd, _), s in samples.items() if kd == kind and s.rssi]
        if kind not in floors and heard:
            floors[kind] = float(min(heard))
    fits: list[TransmitterFit] = []
    with_pos = without_pos = 0
    transmitters: list[tuple[str, str, WifiAp | BleBeacon]] = (
        [("wifi", ap.bssid, ap) for ap in site.wifi_aps]
        + [("ble", b.beacon_id, b) for b in site.ble_beacons])
    for kind, key, nominal in transmitters:
        got = samples.get((kind, key))
        if got is None:
            fits.append(TransmitterFit(kind, key, "not_heard", 0, nominal.rssi_1m_dbm,
                                       nominal.path_loss_exponent, nominal.rssi_1m_dbm,
                                       nominal.path_loss_exponent,
                                       nominal_xy=(nominal.x, nominal.y)))
            continue
        t = np.asarray(got.t, dtype=np.float64)
        rssi = np.asarray(got.rssi, dtype=np.float64)
        px, py, ok = positions.positions_at(t)
        with_pos += int(ok.sum())
        without_pos += int((~ok).sum())
        if exclude_wall_crossing and site.zones:
            tx_indoor = site.is_indoor(nominal.x, nominal.y)
            ok = ok & (indoor_mask(site, px, py) == tx_indoor)
        fits.append(_fit_one(kind, key, nominal, px[ok], py[ok], rssi[ok], site=site,
                             rx_height_m=rx_height_m, floor_dbm=floors.get(kind),
                             locate_moved=locate_moved))
    return CalibrationResult(apply_fits(site, fits, move_aps=move_aps), fits, with_pos,
                             without_pos, floors)


def indoor_mask(site: Site, x_m: FloatArray, y_m: FloatArray) -> npt.NDArray[np.bool_]:
    """Vectorised Site.is_indoor: the first zone containing each point decides (even-odd rule)."""
    out = np.zeros(np.shape(x_m), dtype=bool)
    decided = np.zeros(np.shape(x_m), dtype=bool)
    for zone in site.zones:
        inside = np.zeros(np.shape(x_m), dtype=bool)
        pts = zone.polygon
        for i in range(len(pts)):
            (xi, yi), (xj, yj) = pts[i], pts[i - 1]
            if yi == yj:
                continue
            crosses = (yi > y_m) != (yj > y_m)
            x_cross = xi + (y_m - yi) * (xj - xi) / (yj - yi)
            inside ^= crosses & (x_m < x_cross)
        new = inside & ~decided
        out[new] = zone.indoor
        decided |= inside
    return out


def apply_fits(site: Site, fits: Iterable[TransmitterFit], *, move_aps: bool = True) -> Site:
    """The site with fitted rssi_1m/exponent (and, if asked, moved positions) written in."""
    by_key = {(f.kind, f.key): f for f in fits if f.status in ("fitted", "offset_only")}

    def values(kind: str, key: str, t: WifiAp | BleBeacon) -> tuple[float, float, float, float]:
        f = by_key.get((kind, key))
        if f is None:
            return t.rssi_1m_dbm, t.path_loss_exponent, t.x, t.y
        x, y = t.x, t.y
        if move_aps and f.moved and f.fitted_xy is not None:
            x, y = round(f.fitted_xy[0], 1), round(f.fitted_xy[1], 1)
        return round(f.rssi_1m_dbm, 2), round(f.path_loss_exponent, 3), x, y

    aps = []
    for a in site.wifi_aps:
        p1, n, x, y = values("wifi", a.bssid, a)
        aps.append(replace(a, rssi_1m_dbm=p1, path_loss_exponent=n, x=x, y=y))
    beacons = []
    for b in site.ble_beacons:
        p1, n, x, y = values("ble", b.beacon_id, b)
        beacons.append(replace(b, rssi_1m_dbm=p1, path_loss_exponent=n, x=x, y=y))
    return Site(site.site, site.origin, site.bounds, site.zones, site.aisles, tuple(aps),
                tuple(beacons))
