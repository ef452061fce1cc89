"""Per-AP (and per-beacon) calibration of the log-distance model from known receiver positions.

rssi = rssi_1m_dbm - 10 * path_loss_exponent * log10(d_3d), fitted on per-place medians (shadowing
is correlated over metres: thousands of frames from one spot are one measurement, not thousands),
robustly (Huber then bisquare IRLS), leaving out what the receiver's sensitivity censors, with each
exponent drawn towards the one the whole site shares; and a search for APs that moved.
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
from edge_agent.fusion.models import MIN_DISTANCE_M  # the tracker's clamp (see below)
from edge_agent.observations import BleObs, Observation, WifiObs
from edge_agent.site import BleBeacon, Site, WifiAp

FloatArray = npt.NDArray[np.float64]

# Distances are clamped at fusion.models.MIN_DISTANCE_M (1 m, the far-field limit), as the
# tracker does when it evaluates the curves fitted here: a frame heard under the AP must mean the
# same to both, or the fit would bend rssi_1m to points the tracker can never predict.
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
# The floor estimate: this percentile of all RSSI of one kind. Where many signals are weak the
# reports pile up just above the threshold, so 1 % of them lie within ~1 dB of it; where few are
# weak it errs high, which only costs the weakest samples, never biases the fit.
FLOOR_PERCENTILE = 1.0
# Fewer samples than this and the fit is noise: keep the survey values.
MIN_SAMPLES = 30
# Receiver positions are grouped into square places this size; each place gives one median.
# Below the ~3-5 m correlation length of indoor shadowing, so neighbouring places still differ.
PLACE_M = 2.0
# A place needs this many frames for its median to mean something (fast fading is ~5 dB).
MIN_PLACE_SAMPLES = 3
# ...and a transmitter this many places.
MIN_PLACES = 4
# Variance of one place's median: shadowing that differs between places (irreducible) plus fast
# fading averaged over the place's frames; gives places with few frames less weight.
PLACE_SHADOW_DB = 4.0
FAST_FADING_DB = 5.0
# Within one building the exponents of different APs differ by about this (1 sigma): each AP's
# exponent gets this prior around the exponent pooled over all transmitters of its kind. Without
# it a drive that stays 30-60 m from an AP extrapolates rssi_1m a decade out and misses by 5 dB.
PLE_PRIOR_SD = 0.2
# The pooled exponent itself has the survey's exponent as prior with this sd: surveys take it
# from tables for the building type, good to about this; where the data are few or mostly
# censored (a high-bay store with the trucks far from most APs) the survey value stands.
POOLED_PRIOR_SD = 0.3
# In the first pass each transmitter's exponent gets this loose prior around the survey's.
FIRST_PASS_PRIOR_SD = 0.5
# log10(d) must span at least this (a factor 2 in distance) to tell rssi_1m from the exponent;
# otherwise only rssi_1m is fitted with the survey exponent held.
MIN_LOG10_SPAN = 0.3
# Physical ranges; a fit outside them is clipped and the exponent held.
PLE_RANGE = (1.5, 5.0)
RSSI_1M_RANGE_DBM = (-90.0, -10.0)
# An AP "looks moved" when it fits badly where the survey has it (robust RMS over the places
# at least this: well-placed transmitters give 2-5 dB in simulation and on site, from
# shadowing), another position explains the same places this much better (RMS ratio), and that
# position lies at least this far away. With a truck's few aisles as geometry, a free position
# search "improves" the fit of most APs by moving them 5-30 m: the first test is what stops that.
MOVED_MIN_RMS_DB = 6.5
# ...and at least this many times the median RMS of its kind at their surveyed positions (a
# high-bay store with 6 dB shadowing has every AP near 6.5 dB).
MOVED_TYPICAL_FACTOR = 1.6
# Beacons need more: few frames per place, mounted low among racks and shaded by the truck's own
# body; in simulation well-placed beacons reached 2.2-3.4x their kind's typical RMS.
MOVED_TYPICAL_FACTOR_BLE = 3.5
MOVED_RMS_RATIO = 0.7
# Not fusion/ap_calibration.py's 10 m on purpose: here the receiver's positions are known (points
# or a surveyed path) and the search grid is 0.5 m, so 8 m is already well beyond shadowing; the
# tracker judges a move from its own estimated positions, several metres off, and needs 10 m.
MOVED_MIN_DISTANCE_M = 8.0
# Position search grid for moved APs: coarse then fine, metres.
SEARCH_COARSE_M = 2.0
SEARCH_FINE_M = 0.5
# Distances over which model_error_db compares curves: from under an AP to across a hall.
MODEL_ERROR_RANGE_M = (5.0, 60.0)
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


# --- the robust fit -----------------------------------------------------------------------------

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
    weights: FloatArray  # final robust x prior weights (0 for samples not used)


def _mad_sigma(r: FloatArray) -> float:
    return float(1.4826 * np.median(np.abs(r - np.median(r)))) if len(r) else float("nan")


def fit_log_distance(d_m: FloatArray, rssi_dbm: FloatArray, *, floor_dbm: float | None,
                     ple_prior: float = 2.5, ple_prior_sd: float | None = None,
                     sample_weights: FloatArray | None = None, min_samples: int = MIN_SAMPLES,
                     censor_sigma_db: float | None = None,
                     iterations: int = 8) -> LogDistanceFit | None:
    """Robust IRLS fit of rssi = a - 10 n log10(d), leaving out samples near the floor.

    Huber iterations first (convex: a safe start), then Tukey's bisquare at the Huber scale (it
    rejects the one-sided -10..-25 dB blocked samples that Huber only down-weights). With
    `ple_prior_sd`, n has a Gaussian prior N(ple_prior, sd^2) (a ridge term). `censor_sigma_db`:
    the spread of single frames, when the samples are place medians (censoring acts on frames;
    by default the fit's own residual scale). Returns None when
    fewer than `min_samples` lie clear of the floor. Holds n at `ple_prior` when log10(d) spans
    too little to separate a from n.
    """
    x = -10.0 * np.log10(np.maximum(d_m, MIN_DISTANCE_M))
    y = rssi_dbm.astype(np.float64)
    pw = np.ones(len(y)) if sample_weights is None else sample_weights / np.mean(sample_weights)
    use = np.ones(len(y), dtype=bool)
    a, n = float(np.median(y - ple_prior * x)), ple_prior
    sigma = max(_mad_sigma(y - (a + n * x)), 1.0)
    held = False
    enough = True
    w_all = np.zeros(len(y))
    for it in range(2 * iterations):
        huber = it < iterations
        if floor_dbm is not None:
            # Censoring: keep only where the model puts the mean well above the floor.
            # Frame by frame, fading decides what the floor takes (censor_sigma_db). Adding the
            # places' own shadowing to the margin recovered high-bay exponents better in
            # simulation but cost the tracker more than it gained (benchmarks/calibration.py).
            spread = sigma if censor_sigma_db is None else censor_sigma_db
            margin = CENSOR_MARGIN_SIGMA * spread
            use = (a + n * x) >= floor_dbm + margin
        enough = int(use.sum()) >= min_samples
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
        w = w * pw[use]
        sw = float(np.sum(w))
        if sw <= 0:
            break
        if held:
            n = ple_prior
            a = float(np.sum(w * (ys - n * xs)) / sw)
        else:
            lam = 0.0 if ple_prior_sd is None else (sigma / ple_prior_sd) ** 2
            sx, sxx = float(np.sum(w * xs)), float(np.sum(w * xs * xs)) + lam
            sy, sxy = float(np.sum(w * ys)), float(np.sum(w * xs * ys)) + lam * ple_prior
            det = sw * sxx - sx * sx
            if det <= 1e-12:
                n, held = ple_prior, True
                a = float(np.sum(w * (ys - n * xs)) / sw)
            else:
                n = (sw * sxy - sx * sy) / det
                a = (sy - n * sx) / sw
            if not PLE_RANGE[0] <= n <= PLE_RANGE[1]:
                n = float(np.clip(n, *PLE_RANGE))
                a = float(np.sum(w * (ys - n * xs)) / sw)
                held = True
        w_all = np.zeros(len(y))
        w_all[use] = w
    if not enough:
        return None
    xs, ys = x[use], y[use]
    r = ys - (a + n * xs)
    sigma = max(_mad_sigma(r), 0.5)
    m = len(xs)
    a_se: float
    n_se: float
    wu = np.maximum(pw[use], 1e-9)
    if held:
        a_se, n_se = sigma / math.sqrt(float(np.sum(wu))), 0.0
    else:
        lam = 0.0 if ple_prior_sd is None else (sigma / ple_prior_sd) ** 2
        sw = float(np.sum(wu))
        sx, sxx = float(np.sum(wu * xs)), float(np.sum(wu * xs * xs)) + lam
        det = max(sw * sxx - sx * sx, 1e-12)
        n_se = sigma * math.sqrt(sw / det)
        a_se = sigma * math.sqrt(sxx / det)
    a = float(np.clip(a, *RSSI_1M_RANGE_DBM))
    return LogDistanceFit(a, n, a_se, n_se, sigma, m, held, use, w_all)


@dataclass(frozen=True)
class Places:
    """Receiver positions grouped into PLACE_M squares: centre, median RSSI, frame count."""

    x_m: FloatArray
    y_m: FloatArray
    rssi_dbm: FloatArray
    count: npt.NDArray[np.int64]
    frame_sigma_db: float = FAST_FADING_DB  # robust spread of single frames around their place

    @property
    def weights(self) -> FloatArray:
        """Inverse variance of each place's median (shadowing + fading over its frames)."""
        out: FloatArray = 1.0 / (PLACE_SHADOW_DB ** 2 + FAST_FADING_DB ** 2 / self.count)
        return out

    def distances(self, ax: float, ay: float, dz_m: float) -> FloatArray:
        out: FloatArray = np.sqrt((self.x_m - ax) ** 2 + (self.y_m - ay) ** 2 + dz_m ** 2)
        return out


def group_places(px: FloatArray, py: FloatArray, rssi: FloatArray,
                 place_m: float = PLACE_M) -> Places:
    """Median RSSI per place (mean position of its frames); places with too few frames dropped."""
    if len(rssi) == 0:
        empty = np.zeros(0)
        return Places(empty, empty, empty, np.zeros(0, dtype=np.int64))
    keys = np.stack([np.floor(px / place_m), np.floor(py / place_m)], axis=1)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    bounds = np.cumsum(counts)[:-1]
    groups = np.split(order, bounds)
    keep = counts >= MIN_PLACE_SAMPLES
    xs = np.array([px[g].mean() for g, k in zip(groups, keep, strict=True) if k])
    ys = np.array([py[g].mean() for g, k in zip(groups, keep, strict=True) if k])
    med = np.array([np.median(rssi[g]) for g, k in zip(groups, keep, strict=True) if k])
    dev = np.concatenate([np.abs(rssi[g] - np.median(rssi[g]))
                          for g, k in zip(groups, keep, strict=True) if k] or [np.zeros(0)])
    frame_sigma = float(1.4826 * np.median(dev)) if dev.size else FAST_FADING_DB
    return Places(xs, ys, med, counts[keep].astype(np.int64), max(frame_sigma, 1.0))


def _robust_rms(rssi: FloatArray, d_m: FloatArray, a: float, n: float, w: FloatArray) -> float:
    """Weighted 1.4826 x median |residual|: an RMS that counts bias too, shrugs off outliers."""
    use = w > 0
    if use.sum() < 3:
        return float("nan")
    r = np.abs(rssi[use] - (a - 10.0 * n * np.log10(np.maximum(d_m[use], MIN_DISTANCE_M))))
    order = np.argsort(r)
    cw = np.cumsum(w[use][order])
    return float(1.4826 * r[order][int(np.searchsorted(cw, cw[-1] / 2))])


def _search_position(pl: Places, z_ap_m: float, rx_height_m: float, site: Site, n: float,
                     floor_dbm: float | None) -> tuple[float, float]:
    """Grid search for the AP position whose distances best explain the place medians, with the
    exponent fixed at `n` and rssi_1m free (L1: the median offset and mean absolute residual)."""
    bx, by, med = pl.x_m, pl.y_m, pl.rssi_dbm
    if floor_dbm is not None:
        keep = med >= floor_dbm + 3.0  # a median at the floor is censored: no distance information
        if keep.sum() >= MIN_PLACES:
            bx, by, med = bx[keep], by[keep], med[keep]
    dz2 = (z_ap_m - rx_height_m) ** 2

    def costs(cx: FloatArray, cy: FloatArray) -> FloatArray:
        d = np.sqrt((cx[:, None] - bx[None, :]) ** 2 + (cy[:, None] - by[None, :]) ** 2 + dz2)
        r = med[None, :] + 10.0 * n * np.log10(np.maximum(d, MIN_DISTANCE_M))  # = a + residual
        out: FloatArray = np.abs(r - np.median(r, axis=1, keepdims=True)).mean(axis=1)
        return out

    b = site.bounds
    gx, gy = np.meshgrid(np.arange(b.xmin, b.xmax + 1e-9, SEARCH_COARSE_M),
                         np.arange(b.ymin, b.ymax + 1e-9, SEARCH_COARSE_M))
    cx, cy = gx.ravel(), gy.ravel()
    i = int(np.argmin(costs(cx, cy)))
    fx, fy = np.meshgrid(
        np.arange(cx[i] - SEARCH_COARSE_M, cx[i] + SEARCH_COARSE_M + 1e-9, SEARCH_FINE_M),
        np.arange(cy[i] - SEARCH_COARSE_M, cy[i] + SEARCH_COARSE_M + 1e-9, SEARCH_FINE_M))
    j = int(np.argmin(costs(fx.ravel(), fy.ravel())))
    return float(fx.ravel()[j]), float(fy.ravel()[j])


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
    # Robust RMS (dB) at the surveyed position and at the best other one, when searched.
    position_rms_db: tuple[float, float] | None = None

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
    pooled_exponent: dict[str, float] = field(default_factory=dict)

    @property
    def moved(self) -> list[TransmitterFit]:
        return [f for f in self.fits if f.moved]


@dataclass
class _Samples:
    t: list[float] = field(default_factory=list)
    rssi: list[float] = field(default_factory=list)


@dataclass
class _Prepared:
    kind: str
    key: str
    nominal: WifiAp | BleBeacon
    n_samples: int
    places: Places


def _fit_places(pl: Places, ax: float, ay: float, z_m: float, rx_height_m: float,
                floor_dbm: float | None, ple_prior: float, ple_prior_sd: float | None
                ) -> tuple[LogDistanceFit | None, FloatArray]:
    d = pl.distances(ax, ay, z_m - rx_height_m)
    fit = fit_log_distance(d, pl.rssi_dbm, floor_dbm=floor_dbm, ple_prior=ple_prior,
                           ple_prior_sd=ple_prior_sd, sample_weights=pl.weights,
                           min_samples=MIN_PLACES, censor_sigma_db=pl.frame_sigma_db)
    return fit, d


def pooled_exponent(parts: Iterable[tuple[FloatArray, FloatArray, FloatArray]], *,
                    prior: float, prior_sd: float = POOLED_PRIOR_SD) -> float | None:
    """The exponent shared by several transmitters: weighted LS slope of RSSI on -10 log10(d)
    after removing each transmitter's own mean (its rssi_1m), combined with a Gaussian prior
    (the survey's exponent) by precision. Parts: (d_m, rssi_dbm, weights)."""
    num = den = 0.0
    resid: list[FloatArray] = []
    for d, r, w in parts:
        if np.sum(w > 0) < 2:
            continue
        x = -10.0 * np.log10(np.maximum(d, MIN_DISTANCE_M))
        sw = float(np.sum(w))
        xc, yc = x - np.sum(w * x) / sw, r - np.sum(w * r) / sw
        num += float(np.sum(w * xc * yc))
        den += float(np.sum(w * xc * xc))
        resid.append((yc - (num / den if den > 0 else prior) * xc)[w > 0])
    if den <= 0:
        return None
    sigma = max(_mad_sigma(np.concatenate(resid)), 0.5)
    lam = (sigma / prior_sd) ** 2
    return float(np.clip((num + lam * prior) / (den + lam), *PLE_RANGE))


@dataclass(frozen=True)
class _MoveCandidate:
    xy: tuple[float, float]
    fit: LogDistanceFit
    rms_db: float  # robust RMS over the candidate's own places
    rms_here_db: float  # at the surveyed position, over the places either fit uses
    rms_there_db: float  # at the candidate, over the same places


def _finish(p: _Prepared, *, site: Site, rx_height_m: float, floor_dbm: float | None,
            ple_prior: float, locate_moved: bool) -> tuple[TransmitterFit, _MoveCandidate | None]:
    """The fit at the surveyed position, and the best other position if one was searched."""
    nominal = p.nominal
    base = TransmitterFit(p.kind, p.key, "too_few_samples", p.n_samples, nominal.rssi_1m_dbm,
                          nominal.path_loss_exponent, nominal.rssi_1m_dbm,
                          nominal.path_loss_exponent, nominal_xy=(nominal.x, nominal.y))
    pl = p.places
    if p.n_samples < MIN_SAMPLES or len(pl.rssi_dbm) < MIN_PLACES:
        return base, None
    fit, d = _fit_places(pl, nominal.x, nominal.y, nominal.z, rx_height_m, floor_dbm,
                         ple_prior, PLE_PRIOR_SD)
    if fit is None:
        return base, None
    w = fit.weights
    nominal_rms = _robust_rms(pl.rssi_dbm, d, nominal.rssi_1m_dbm, nominal.path_loss_exponent, w)
    fitted_rms = _robust_rms(pl.rssi_dbm, d, fit.rssi_1m_dbm, fit.path_loss_exponent, w)
    cand: _MoveCandidate | None = None
    if locate_moved and len(pl.rssi_dbm) >= 2 * MIN_PLACES:
        mx, my = _search_position(pl, nominal.z, rx_height_m, site, fit.path_loss_exponent,
                                  floor_dbm)
        b = site.bounds
        on_edge = (min(mx - b.xmin, b.xmax - mx, my - b.ymin, b.ymax - my)
                   < SEARCH_COARSE_M)  # the search ran into the plan's edge: no real optimum
        if not on_edge and math.dist((mx, my), (nominal.x, nominal.y)) >= MOVED_MIN_DISTANCE_M:
            fit2, d2 = _fit_places(pl, mx, my, nominal.z, rx_height_m, floor_dbm, ple_prior,
                                   PLE_PRIOR_SD)
            if fit2 is not None:
                # Compare both positions on the same places: those either fit used.
                w_both = np.maximum(w, fit2.weights)
                cand = _MoveCandidate(
                    (mx, my), fit2,
                    _robust_rms(pl.rssi_dbm, d2, fit2.rssi_1m_dbm, fit2.path_loss_exponent,
                                fit2.weights),
                    _robust_rms(pl.rssi_dbm, d, fit.rssi_1m_dbm, fit.path_loss_exponent, w_both),
                    _robust_rms(pl.rssi_dbm, d2, fit2.rssi_1m_dbm, fit2.path_loss_exponent,
                                w_both))
    out = TransmitterFit(p.kind, p.key, "offset_only" if fit.exponent_held else "fitted",
                         p.n_samples, nominal.rssi_1m_dbm, nominal.path_loss_exponent,
                         fit.rssi_1m_dbm, fit.path_loss_exponent, fit.rssi_1m_se_db, fit.ple_se,
                         fitted_rms, nominal_rms, (nominal.x, nominal.y), None, False,
                         (cand.rms_here_db, cand.rms_there_db) if cand else None)
    return out, cand


def _decide_moves(fits: list[TransmitterFit],
                  candidates: dict[tuple[str, str], _MoveCandidate]) -> list[TransmitterFit]:
    """Mark as moved the transmitters that fit badly where surveyed, for their kind, and much
    better elsewhere; their fit becomes the one at the found position."""
    out = []
    for f in fits:
        c = candidates.get((f.kind, f.key))
        typical = [g.residual_rms_db for g in fits if g.kind == f.kind
                   and g.status in ("fitted", "offset_only") and not math.isnan(g.residual_rms_db)]
        factor = MOVED_TYPICAL_FACTOR_BLE if f.kind == "ble" else MOVED_TYPICAL_FACTOR
        limit = max(MOVED_MIN_RMS_DB, factor * float(np.median(typical))
                    if typical else MOVED_MIN_RMS_DB)
        if (c is not None and c.rms_here_db >= limit
                and c.rms_there_db < MOVED_RMS_RATIO * c.rms_here_db):
            f = replace(f, rssi_1m_dbm=c.fit.rssi_1m_dbm,
                        path_loss_exponent=c.fit.path_loss_exponent,
                        rssi_1m_se_db=c.fit.rssi_1m_se_db, ple_se=c.fit.ple_se,
                        residual_rms_db=c.rms_db, fitted_xy=c.xy, moved=True,
                        status="offset_only" if c.fit.exponent_held else "fitted")
        out.append(f)
    return out


def model_error_db(rssi_1m_a: float, ple_a: float, rssi_1m_b: float, ple_b: float,
                   d_range_m: tuple[float, float] = MODEL_ERROR_RANGE_M) -> float:
    """RMS difference (dB) of two log-distance curves over log-spaced distances in d_range_m.

    rssi_1m and the exponent trade off against each other (rssi_1m is an extrapolation to 1 m):
    this compares what matters to positioning, the predicted RSSI where trucks are.
    """
    lg = np.log10(np.geomspace(d_range_m[0], d_range_m[1], 24))
    diff = (rssi_1m_a - rssi_1m_b) - 10.0 * (ple_a - ple_b) * lg
    return float(np.sqrt(np.mean(diff ** 2)))


def estimate_floor_dbm(rssi_dbm: FloatArray) -> float:
    """The receiver's effective sensitivity: a low percentile of everything it reported.

    Not the minimum: real thresholds are soft (detection probability falls over a few dB), and
    among thousands of frames a few come from far below the 50 % point.
    """
    return float(np.percentile(rssi_dbm, FLOOR_PERCENTILE))


def calibrate(site: Site, observations: Iterable[Observation], positions: KnownPositions, *,
              rx_height_m: float = DEFAULT_RX_HEIGHT_M,
              sensitivity_dbm: dict[str, float] | None = None, locate_moved: bool = True,
              move_aps: bool = True, exclude_wall_crossing: bool = True) -> CalibrationResult:
    """Fit every surveyed AP and beacon heard while the receiver's position was known.

    `sensitivity_dbm` per kind ("wifi", "ble"): the receiver's floor; by default a low percentile
    of what was heard. `move_aps`: write the found position of moved APs into the site.
    `exclude_wall_crossing`: leave out samples taken on the other side of the exterior wall
    (an indoor/outdoor zone boundary, per the site.json spec) from the transmitter: the wall
    adds an unknown 5-15 dB that is not part of rssi_1m or the exponent.
    Two passes: each transmitter with a weak prior on its exponent, the exponent pooled over
    all of a kind from those, then each again with the prior N(pooled, PLE_PRIOR_SD^2).
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
        heard = [s.rssi for (kd, _), s in samples.items() if kd == kind and s.rssi]
        if kind not in floors and heard:
            floors[kind] = estimate_floor_dbm(np.concatenate(heard))
    with_pos = without_pos = 0
    transmitters: list[tuple[str, str, WifiAp | BleBeacon]] = (
        [("wifi", ap.bssid, ap) for ap in site.wifi_aps]
        + [("ble", b.beacon_id, b) for b in site.ble_beacons])
    prepared: dict[tuple[str, str], _Prepared] = {}
    for kind, key, nominal in transmitters:
        got = samples.get((kind, key))
        if got is None:
            continue
        t = np.asarray(got.t, dtype=np.float64)
        rssi = np.asarray(got.rssi, dtype=np.float64)
        px, py, ok = positions.positions_at(t)
        with_pos += int(ok.sum())
        without_pos += int((~ok).sum())
        if exclude_wall_crossing and site.zones:
            tx_indoor = site.is_indoor(nominal.x, nominal.y)
            ok = ok & (indoor_mask(site, px, py) == tx_indoor)
        prepared[(kind, key)] = _Prepared(kind, key, nominal, int(ok.sum()),
                                          group_places(px[ok], py[ok], rssi[ok]))
    # Pass 1: the exponent the site's transmitters of each kind share.
    pooled: dict[str, float] = {}
    for kind in ("wifi", "ble"):
        parts = []
        for p in prepared.values():
            if p.kind != kind or len(p.places.rssi_dbm) < MIN_PLACES:
                continue
            n0 = p.nominal.path_loss_exponent
            fit, d = _fit_places(p.places, p.nominal.x, p.nominal.y, p.nominal.z, rx_height_m,
                                 floors.get(kind), n0, FIRST_PASS_PRIOR_SD)
            if fit is None or fit.exponent_held:
                continue
            rms = _robust_rms(p.places.rssi_dbm, d, fit.rssi_1m_dbm, fit.path_loss_exponent,
                              fit.weights)
            if rms < MOVED_MIN_RMS_DB:  # one that fits this badly may have moved: not pooled
                parts.append((d, p.places.rssi_dbm, fit.weights))
        survey_n = [t.path_loss_exponent for kd, _, t in transmitters if kd == kind]
        n_pooled = pooled_exponent(parts, prior=float(np.median(survey_n))) if survey_n else None
        if n_pooled is not None:
            pooled[kind] = n_pooled
    # Pass 2: each transmitter with its exponent drawn towards the pooled one.
    fits: list[TransmitterFit] = []
    candidates: dict[tuple[str, str], _MoveCandidate] = {}
    for kind, key, nominal in transmitters:
        prep = prepared.get((kind, key))
        if prep is None:
            fits.append(TransmitterFit(kind, key, "not_heard", 0, nominal.rssi_1m_dbm,
                                       nominal.path_loss_exponent, nominal.rssi_1m_dbm,
                                       nominal.path_loss_exponent,
                                       nominal_xy=(nominal.x, nominal.y)))
            continue
        tfit, cand = _finish(prep, site=site, rx_height_m=rx_height_m,
                             floor_dbm=floors.get(kind),
                             ple_prior=pooled.get(kind, nominal.path_loss_exponent),
                             locate_moved=locate_moved)
        fits.append(tfit)
        if cand is not None:
            candidates[(kind, key)] = cand
    fits = _decide_moves(fits, candidates)
    return CalibrationResult(apply_fits(site, fits, move_aps=move_aps), fits, with_pos,
                             without_pos, floors, pooled)


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
