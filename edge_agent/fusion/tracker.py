"""The tracker: Wi-Fi, BLE and GNSS observations in, one causal Estimate per whole second out.

Frames are aggregated per emitter per 1 s epoch (mean RSSI and count), then one EKF step runs:
state (x, y, vx, vy, one RSSI offset per surveyed emitter, the exterior wall's loss). A coarse grid
filter over the site keeps every hypothesis and pulls the EKF back when it gets trapped. Estimate
t uses data in (-inf, t] and is returned once an observation later than t arrives (or at finish).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_agent.estimate import Estimate
from edge_agent.fusion.ap_calibration import ApMonitor
from edge_agent.fusion.grid import GridFilter
from edge_agent.fusion.kalman import Ekf
from edge_agent.fusion.models import Array, IntArray, censored_mean, rssi_gradient
from edge_agent.fusion.motion import MotionDetector
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Site


@dataclass(frozen=True)
class TrackerParams:
    """Tuning of the tracker; each default is justified in docs/fusion.md."""

    receiver_height_m: float = 2.0  # antenna on a forklift's overhead guard
    wifi_sigma_db: float = 4.0  # per AP-second: shadowing that frame averaging cannot remove
    ble_sigma_db: float = 5.0  # BLE is closer to the body and the floor: more shadowing
    frame_sigma_db: float = 3.0  # frame-to-frame fading within one second
    offset_prior_db: float = 4.0  # each radio differs from the survey by several dB ...
    offset_common_db: float = 5.0  # ... and all of one kind may sit off together
    rssi_fix_from_grid: bool = True  # RSSI enters the EKF as the grid's per-second likelihood
    fix_window_m: float = 12.0  # ... summarised within this radius of the predicted position
    profile_common_offset: bool = False  # grid: profile out a common offset per radio kind
    learn_offsets_moving_only: bool = True  # standing still, offsets and place are confounded
    shadow_corr_m: float = 5.0  # shadowing decorrelates over about this distance ...
    shadow_max_corr_s: float = 20.0  # ... and standing still, count a second as 1/20 of one
    offset_walk_db_per_sqrt_s: float = 0.02  # offsets drift slowly (temperature, furniture)
    wall_loss_prior_db: float = 10.0  # an exterior wall: 5-15 dB at 2.4 GHz
    wall_loss_sigma_db: float = 6.0
    accel_sigma_mps2: float = 0.6  # a loaded forklift accelerates gently
    idle_accel_sigma_mps2: float = 0.05  # standing: almost no motion allowed
    max_speed_mps: float = 5.0  # 18 km/h, above any plant speed limit
    wifi_floor_dbm: float = -92.0  # receiver sensitivity until frames show a lower one
    ble_floor_dbm: float = -100.0
    innovation_clip_sigma: float = 3.0  # Huber: beyond this an RSSI counts as this many sigma
    gnss_gate_chi2: float = 13.8  # chi-square 2 dof at 99.9 %
    indoor_gnss_sigma_m: float = 15.0  # an indoor fix is never better than this, whatever HDOP says
    grid_cell_m: float = 2.0
    grid_spread_m: float = 2.0  # how far the truck may have gone in one second (1 sigma)
    grid_reset_mass: float = 0.02  # EKF reset when the grid puts less than this near it ...
    grid_reset_patience_s: int = 3  # ... for this many seconds in a row
    confident_sigma_m: float = 4.0  # the NIS monitor only learns when the track is this good
    fading_start_db2: float = 5.0  # frame-pair fading power: standing ~1, driving 10-50 ...
    fading_stop_db2: float = 3.0  # ... declare moving above 5, idle again below 3
    motion_half_s: int = 3  # the drift test compares the last 3 s with the 3 s before
    moving_start_stat: float = 3.0  # drift statistic (1 when standing) to declare moving ...
    moving_stop_stat: float = 1.5  # ... and to declare idle again
    idle_walk_mps: float = 0.01  # an idle truck's estimate may creep by this (1 sigma per s)
    stale_after_s: float = 60.0  # no measurement for this long: estimate no longer valid
    min_emitters_to_start: int = 3
    aisle_capture_m: float = -1.0  # EKF snap to the nearest aisle: off (< 0), see docs
    aisle_off_penalty: float = 2.0  # grid: log-likelihood cost of a cell off every aisle
    aisle_sigma_frac: float = 0.5  # across-aisle sigma as a share of the half width


FADING_PAIR_MAX_S = 0.3
"""Beacons of one AP within one channel dwell (about 0.1 s apart); across dwells, no pair."""
GRID_RECALIBRATE_S = 10.0
"""Offsets move by a fraction of a dB in 10 s: refreshing the grid's tables faster buys nothing."""
GRID_EXTRA_VAR_DB2 = 4.0
"""Model error the coarse grid must tolerate beyond the EKF's (path-loss exponent, cell size)."""
MISS_EXTRA_SIGMA_DB = 3.0
"""Non-detections use a blunter edge than the fading alone: the floor itself is only estimated."""

AISLE_MIN_SIGMA_M = 0.5
"""The snap never claims better than this across an aisle (drivers do not follow the paint)."""

IDLE_VELOCITY_VAR = 0.01
"""(0.1 m/s)^2: when motion resumes the filter starts from rest but can pick up speed at once."""

WALL_LOSS_MIN_DB = 3.0
WALL_LOSS_MAX_DB = 30.0
"""An exterior wall attenuates 3-30 dB (glass to concrete); outside that the estimate is lost."""

GNSS_MIN_SIGMA_M = 0.5
"""No fix is trusted below this, whatever GST says (antenna on a moving vehicle)."""

OWN_OFFSET_MIN_VAR_DB2 = 0.25
"""An emitter's own offset is never taken as known better than 0.5 dB."""

_WIFI = 0
_BLE = 1


@dataclass
class _Step:
    """One second's aggregated input and the EKF state before it, kept for a short re-filter."""

    t: float
    dt: float
    idx: IntArray
    z: Array
    n: Array
    fixes: list[GnssFix]
    x_before: Array
    p_before: Array
    fix: tuple[float, float, Array] | None = None


class Tracker:
    """Causal 1 Hz tracker; see module docstring. `process` and `finish` return final estimates."""

    def __init__(self, site: Site, params: TrackerParams | None = None) -> None:
        self.site = site
        self.p = params or TrackerParams()
        p = self.p
        keys: list[str] = []
        ex: list[float] = []
        ey: list[float] = []
        ez: list[float] = []
        p1: list[float] = []
        nn: list[float] = []
        kind: list[int] = []
        self._wifi_index: dict[str, int] = {}
        self._ble_index: dict[str, int] = {}
        for ap in site.wifi_aps:
            self._wifi_index[ap.bssid] = len(keys)
            keys.append(ap.bssid)
            ex.append(ap.x)
            ey.append(ap.y)
            ez.append(ap.z)
            p1.append(ap.rssi_1m_dbm)
            nn.append(ap.path_loss_exponent)
            kind.append(_WIFI)
        for b in site.ble_beacons:
            self._ble_index[b.beacon_id] = len(keys)
            keys.append(b.beacon_id)
            ex.append(b.x)
            ey.append(b.y)
            ez.append(b.z)
            p1.append(b.rssi_1m_dbm)
            nn.append(b.path_loss_exponent)
            kind.append(_BLE)
        self.keys = keys
        self.k = len(keys)
        self.ex = np.array(ex, dtype=np.float64)
        self.ey = np.array(ey, dtype=np.float64)
        self.dz = np.array(ez, dtype=np.float64) - p.receiver_height_m
        self.p1m = np.array(p1, dtype=np.float64)
        self.n = np.array(nn, dtype=np.float64)
        self.kind = np.array(kind, dtype=np.intp)
        self.sigma_db = np.where(self.kind == _WIFI, p.wifi_sigma_db, p.ble_sigma_db)
        self.indoor_emitter = np.array([site.is_indoor(x, y) for x, y in zip(ex, ey, strict=True)],
                                       dtype=bool)
        self.floor_dbm = [p.wifi_floor_dbm, p.ble_floor_dbm]
        self.dim = 4 + self.k + 1
        self.i_wall = 4 + self.k
        self.grid = GridFilter(site, p.grid_cell_m, self.ex, self.ey, self.dz, self.p1m, self.n,
                               self.indoor_emitter, p.aisle_off_penalty)
        self.monitor = ApMonitor(keys, self.ex, self.ey, np.array(ez), self.p1m, self.n,
                                 self.grid.cx, self.grid.cy, p.receiver_height_m)
        self.motion = MotionDetector(self.k, p.motion_half_s, p.moving_start_stat,
                                     p.moving_stop_stat, p.fading_start_db2, p.fading_stop_db2)
        self._last_frame_t = [-1e18] * self.k
        self._last_frame_rssi = [0.0] * self.k
        self._pair_sum = 0.0
        self._pairs = 0
        self.ekf: Ekf | None = None
        # epoch accumulation
        self._epoch: int | None = None
        self._sum = [0.0] * self.k
        self._cnt = [0] * self.k
        self._fixes: list[GnssFix] = []
        self._last_t: float | None = None
        self._last_meas_t: float | None = None
        self._reset_count = 0
        self._far_from_grid_s = 0
        self._grid_cal_due = 0.0
        self._aisles: tuple[Array, ...] | None = None
        if site.aisles:
            a0 = np.array([a.start for a in site.aisles], dtype=np.float64)
            a1 = np.array([a.end for a in site.aisles], dtype=np.float64)
            seg = a1 - a0
            length = np.maximum(np.hypot(seg[:, 0], seg[:, 1]), 1e-6)
            self._aisles = (a0[:, 0], a0[:, 1], seg[:, 0] / length, seg[:, 1] / length, length,
                            np.array([a.width_m / 2.0 for a in site.aisles]))
        self._recent: deque[_Step] = deque(maxlen=2 * p.motion_half_s + 1)
        self.stats = {"emitters_moved": 0, "motion_refilters": 0, "off_aisle_s": 0, "frames": 0,
                      "unknown_frames": 0, "late": 0, "epochs": 0, "gnss_fixes": 0,
                      "gnss_accepted": 0, "gnss_gated": 0, "gnss_no_fix": 0, "grid_resets": 0,
                      "rssi_clipped": 0}

    # --- streaming ------------------------------------------------------------------------

    def process(self, obs: Observation) -> list[Estimate]:
        """Add one observation; returns the estimates of every whole second now final."""
        k = math.ceil(obs.t)
        out: list[Estimate] = []
        if self._epoch is None:
            self._epoch = k
        elif k > self._epoch:
            while k > self._epoch:
                out.append(self._close_epoch(self._epoch))
                self._epoch += 1
        elif k < self._epoch:
            self.stats["late"] += 1
        cls = type(obs)
        if cls is WifiObs:
            i = self._wifi_index.get(obs.bssid)  # type: ignore[union-attr]
        elif cls is BleObs:
            i = self._ble_index.get(obs.beacon_id)  # type: ignore[union-attr]
        elif cls is GnssFix:
            self._fixes.append(obs)  # type: ignore[arg-type]
            return out
        else:
            if isinstance(obs, GnssNoFix):
                self.stats["gnss_no_fix"] += 1
            return out
        if i is None:
            self.stats["unknown_frames"] += 1
            return out
        rssi: float = obs.rssi_dbm  # type: ignore[union-attr]
        self._sum[i] += rssi
        self._cnt[i] += 1
        if cls is WifiObs:
            # Frame pairs of one AP (one channel) close in time: the fast-fading motion cue.
            if obs.t - self._last_frame_t[i] < FADING_PAIR_MAX_S:
                d = rssi - self._last_frame_rssi[i]
                self._pair_sum += d * d
                self._pairs += 1
            self._last_frame_t[i] = obs.t
            self._last_frame_rssi[i] = rssi
        kd = self.kind[i]
        if rssi < self.floor_dbm[kd]:
            self.floor_dbm[kd] = rssi
        return out

    def finish(self) -> list[Estimate]:
        """Close the last epoch."""
        if self._epoch is None:
            return []
        out = [self._close_epoch(self._epoch)]
        self._epoch += 1
        return out

    # --- one second -----------------------------------------------------------------------

    def _close_epoch(self, t: int) -> Estimate:
        p = self.p
        self.stats["epochs"] += 1
        cnt = np.array(self._cnt, dtype=np.float64)
        heard = np.flatnonzero(cnt > 0)
        z = np.array(self._sum, dtype=np.float64)[heard] / cnt[heard]
        ncount = cnt[heard]
        fixes = self._fixes
        self._sum = [0.0] * self.k
        self._cnt = [0] * self.k
        self._fixes = []
        self.stats["frames"] += int(ncount.sum())
        dt = 1.0 if self._last_t is None else float(t - self._last_t)
        self._last_t = float(t)
        if heard.size or fixes:
            self._last_meas_t = float(t)
        usable = self.monitor.usable[heard]
        h_idx = heard[usable]
        z = z[usable]
        ncount = ncount[usable]

        # grid stage
        ekf = self.ekf
        if ekf is not None:
            self.grid.predict(p.grid_spread_m * dt)
        if self._grid_cal_due <= t:
            self._calibrate_grid()
        if h_idx.size:
            missed = np.flatnonzero((cnt == 0) & self.monitor.usable)
            self.grid.update_rssi(h_idx, z, missed, self.kind[h_idx])
        for f in fixes:
            self.stats["gnss_fixes"] += 1
            self.grid.update_gnss(f.x_m, f.y_m, max(f.sigma_m, 1.0))

        gxy = np.array([fixes[-1].x_m, fixes[-1].y_m]) if fixes else None
        was_moving = self.motion.moving
        self.motion.update(h_idx, z, gxy, fixes[-1].sigma_m if fixes else 0.0, self._pair_sum,
                           self._pairs)
        self._pair_sum = 0.0
        self._pairs = 0
        if ekf is None:
            if h_idx.size >= p.min_emitters_to_start or fixes:
                ekf = self._start()
            else:
                return Estimate(float(t), 0.0, 0.0, (0.0, 0.0, 0.0), 0.0, False, valid=False)
            self._recent.clear()
        else:
            step = _Step(float(t), dt, h_idx, z, ncount, fixes, ekf.x.copy(), ekf.P.copy(),
                         self._grid_fix(ekf, dt) if h_idx.size else None)
            self._recent.append(step)
            if self.motion.moving and not was_moving and len(self._recent) > 1:
                self._refilter_as_moving(ekf)
            else:
                self._ekf_step(ekf, step, learn=True)
            self._check_grid(ekf)
            self._watch_emitters(ekf, step)
        self._constrain(ekf)
        return self._estimate(ekf, float(t))

    def _ekf_step(self, ekf: Ekf, st: _Step, learn: bool) -> None:
        p = self.p
        self._predict(ekf, st.dt)
        if st.idx.size and self.p.rssi_fix_from_grid:
            if st.fix is not None:
                self._update_pseudo_fix(ekf, st.fix)
            if learn and (self.motion.moving or not p.learn_offsets_moving_only):
                self._update_rssi(ekf, st.t, st.idx, st.z, st.n, learn, offsets_only=True)
        elif st.idx.size:
            self._update_rssi(ekf, st.t, st.idx, st.z, st.n, learn)
        for f in st.fixes:
            self._update_gnss(ekf, f, learn)
        if not learn:
            self._constrain(ekf)

    def _grid_fix(self, ekf: Ekf, dt: float) -> tuple[float, float, Array] | None:
        """This second's RSSI likelihood near where the track is predicted to be."""
        x = ekf.x
        px = float(x[0] + x[2] * dt) if self.motion.moving else float(x[0])
        py = float(x[1] + x[3] * dt) if self.motion.moving else float(x[1])
        sig = math.sqrt(max(ekf.P[0, 0] + ekf.P[1, 1], 0.0) / 2.0)
        return self.grid.likelihood_fix(px, py, max(3.0 * sig + 3.0, self.p.fix_window_m))

    def _update_pseudo_fix(self, ekf: Ekf, fix: tuple[float, float, Array]) -> None:
        p = self.p
        x = ekf.x
        speed = float(np.hypot(x[2], x[3])) if self.motion.moving else 0.0
        tau_s = min(max(p.shadow_corr_m / max(speed, 1e-3), 1.0), p.shadow_max_corr_s)
        r = fix[2] * tau_s
        hj = np.zeros((2, self.dim))
        hj[0, 0] = hj[1, 1] = 1.0
        h = x[:2].copy()
        ekf.update(np.array([fix[0], fix[1]]), lambda _x: h, lambda _x: hj, r)

    def _watch_emitters(self, ekf: Ekf, st: _Step) -> None:
        """Feed the moved-emitter search with confident, moving seconds (standing still, one
        place says nothing about where an AP hangs)."""
        if not self.motion.moving or st.idx.size == 0:
            return
        x = ekf.x
        if (ekf.P[0, 0] + ekf.P[1, 1]) / 2.0 > self.p.confident_sigma_m ** 2:
            return
        px, py = self.site.bounds.clamp(float(x[0]), float(x[1]))
        indoor_rx = self.site.is_indoor(px, py)
        wall = np.where(self.indoor_emitter[st.idx] != indoor_rx, float(x[self.i_wall]), 0.0)
        z = st.z - x[4 + st.idx]
        for i in self.monitor.observe(st.t, st.idx, z, wall, px, py, self.sigma_db[st.idx]):
            self.stats["emitters_moved"] += 1
            self._grid_cal_due = 0.0  # rebuild the grid's tables without it
            del i

    def _refilter_as_moving(self, ekf: Ekf) -> None:
        """The drift test needs a few seconds to see motion start, during which the idle model
        held the position still: rerun those seconds (data <= t only) with the moving model."""
        self.stats["motion_refilters"] += 1
        steps = list(self._recent)
        ekf.set_state(steps[0].x_before, steps[0].p_before)
        for i, st in enumerate(steps):
            self._ekf_step(ekf, st, learn=i == len(steps) - 1)

    def _calibrate_grid(self) -> None:
        """Refresh the grid's tables with the EKF's current offsets and wall loss."""
        p = self.p
        ekf = self.ekf
        offsets = ekf.x[4:4 + self.k] if ekf is not None else np.zeros(self.k)
        wall = float(ekf.x[self.i_wall]) if ekf is not None else p.wall_loss_prior_db
        # The grid is coarser than the EKF: its RSSI noise also covers offsets not yet learnt,
        # split into a part common to each radio kind (profiled out per cell) and the rest.
        if ekf is not None:
            pb = ekf.P[4:4 + self.k, 4:4 + self.k]
            common = np.array([float(pb[np.ix_(self.kind == kd, self.kind == kd)].mean())
                               if (self.kind == kd).any() else 1.0 for kd in (_WIFI, _BLE)])
            own = np.maximum(np.diag(pb) - common[self.kind], OWN_OFFSET_MIN_VAR_DB2)
        else:
            common = np.full(2, p.offset_common_db ** 2)
            own = np.full(self.k, p.offset_prior_db ** 2)
        sigma = np.sqrt(self.sigma_db ** 2 + own + GRID_EXTRA_VAR_DB2)
        self.grid.set_calibration(offsets, wall, sigma, min(self.floor_dbm),
                                  p.frame_sigma_db + MISS_EXTRA_SIGMA_DB,
                                  common if p.profile_common_offset else None)
        if not p.profile_common_offset:
            sigma = np.sqrt(sigma ** 2 + common[self.kind])
            self.grid.set_calibration(offsets, wall, sigma, min(self.floor_dbm),
                                      p.frame_sigma_db + MISS_EXTRA_SIGMA_DB)
        self._grid_cal_due = self._last_t + GRID_RECALIBRATE_S if self._last_t else 0.0

    def _start(self) -> Ekf:
        p = self.p
        mx, my, c = self.grid.mean_cov()
        x0 = np.zeros(self.dim)
        x0[0], x0[1] = mx, my
        x0[self.i_wall] = p.wall_loss_prior_db
        p0 = np.zeros((self.dim, self.dim))
        p0[:2, :2] = c
        p0[2, 2] = p0[3, 3] = 1.0
        # Offsets = one common part per radio kind (all APs of a plant tend to sit below the
        # survey together) + an individual part; independent priors would pin the common part.
        same_kind = (self.kind[:, None] == self.kind[None, :]).astype(np.float64)
        p0[4:4 + self.k, 4:4 + self.k] = (p.offset_common_db ** 2 * same_kind
                                          + p.offset_prior_db ** 2 * np.eye(self.k))
        p0[self.i_wall, self.i_wall] = p.wall_loss_sigma_db ** 2
        self.ekf = Ekf(x0, p0)
        return self.ekf

    def _predict(self, ekf: Ekf, dt: float) -> None:
        """Constant velocity while moving; idle: velocity forced to zero, position nearly fixed."""
        p = self.p
        f = np.eye(self.dim)
        q = np.zeros((self.dim, self.dim))
        if self.motion.moving:
            f[0, 2] = f[1, 3] = dt
            qa = p.accel_sigma_mps2 ** 2
            q[0, 0] = q[1, 1] = qa * dt ** 4 / 4.0
            q[0, 2] = q[2, 0] = q[1, 3] = q[3, 1] = qa * dt ** 3 / 2.0
            q[2, 2] = q[3, 3] = qa * dt * dt
        else:
            f[2, 2] = f[3, 3] = 0.0
            q[0, 0] = q[1, 1] = p.idle_walk_mps ** 2 * dt
            q[2, 2] = q[3, 3] = IDLE_VELOCITY_VAR
        w = p.offset_walk_db_per_sqrt_s ** 2 * dt
        idx = np.arange(4, self.dim)
        q[idx, idx] = w
        ekf.predict(f, q)

    def _update_rssi(self, ekf: Ekf, t: float, idx: IntArray, z: Array, ncount: Array,
                     learn: bool, offsets_only: bool = False) -> None:
        p = self.p
        x = ekf.x
        px, py = float(x[0]), float(x[1])
        indoor_rx = self.site.is_indoor(*self.site.bounds.clamp(px, py))
        wall = (self.indoor_emitter[idx] != indoor_rx).astype(np.float64)
        d = np.sqrt((px - self.ex[idx]) ** 2 + (py - self.ey[idx]) ** 2 + self.dz[idx] ** 2)
        d = np.maximum(d, 1.0)
        mu = self.p1m[idx] + x[4 + idx] - 10.0 * self.n[idx] * np.log10(d) - x[self.i_wall] * wall
        floors = np.where(self.kind[idx] == _WIFI, self.floor_dbm[_WIFI], self.floor_dbm[_BLE])
        h, deriv = censored_mean(mu, p.frame_sigma_db, floors)
        gx, gy = rssi_gradient(px, py, self.ex[idx], self.ey[idx], self.dz[idx], self.n[idx])
        m = idx.size
        hj = np.zeros((m, self.dim))
        rows = np.arange(m)
        if not offsets_only:
            hj[:, 0] = deriv * gx
            hj[:, 1] = deriv * gy
        hj[rows, 4 + idx] = deriv
        hj[:, self.i_wall] = -deriv * wall
        # Shadowing is a property of the place: standing still, second after second repeats the
        # same error. Count it once per correlation length travelled, not once per second.
        speed = float(np.hypot(x[2], x[3])) if self.motion.moving else 0.0
        tau_s = min(max(p.shadow_corr_m / max(speed, 1e-3), 1.0), p.shadow_max_corr_s)
        r = self.sigma_db[idx] ** 2 * tau_s + p.frame_sigma_db ** 2 / ncount
        if offsets_only:
            # The position is taken as given but is not known exactly: its uncertainty is
            # RSSI noise for the offsets ("consider" covariance), so a poor fix teaches little.
            gpx = deriv * gx
            gpy = deriv * gy
            pp = ekf.P
            r = r + gpx * gpx * pp[0, 0] + 2.0 * gpx * gpy * pp[0, 1] + gpy * gpy * pp[1, 1]
        y = z - h
        s_diag = np.einsum("ij,jk,ik->i", hj, ekf.P, hj) + r
        nis = y * y / s_diag
        clip = p.innovation_clip_sigma ** 2
        big = nis > clip
        if big.any():
            if learn:
                self.stats["rssi_clipped"] += int(big.sum())
            r = np.where(big, r * nis / clip, r)
        ekf.update(z, lambda _x: h, lambda _x: hj, np.diag(r))

    def _update_gnss(self, ekf: Ekf, f: GnssFix, learn: bool) -> None:
        """Gate by the fix's own claim (its sigma) against the track; indoors, a fix that passes
        still counts only as a coarse one (multipath makes its claimed sigma meaningless)."""
        p = self.p
        x = ekf.x
        sigma = max(f.sigma_m, GNSS_MIN_SIGMA_M)
        zf = np.array([f.x_m, f.y_m])
        y = zf - x[:2]
        s = ekf.P[:2, :2] + np.eye(2) * sigma * sigma
        d2 = float(y @ np.linalg.solve(s, y))
        if d2 > p.gnss_gate_chi2:
            self.stats["gnss_gated"] += int(learn)
            return
        if self.site.is_indoor(float(x[0]), float(x[1])):
            sigma = max(sigma, p.indoor_gnss_sigma_m)
        self.stats["gnss_accepted"] += int(learn)
        hj = np.zeros((2, self.dim))
        hj[0, 0] = hj[1, 1] = 1.0
        h = x[:2].copy()
        ekf.update(zf, lambda _x: h, lambda _x: hj, np.eye(2) * sigma * sigma)

    def _check_grid(self, ekf: Ekf) -> None:
        p = self.p
        x = ekf.x
        sig = math.sqrt(max(ekf.P[0, 0] + ekf.P[1, 1], 0.0) / 2.0)
        radius = max(3.0 * sig, 1.5 * p.grid_cell_m)
        if self.grid.mass_within(float(x[0]), float(x[1]), radius) >= p.grid_reset_mass:
            self._far_from_grid_s = 0
            return
        self._far_from_grid_s += 1
        if self._far_from_grid_s < p.grid_reset_patience_s:
            return
        self._far_from_grid_s = 0
        self._grid_cal_due = 0.0
        self.stats["grid_resets"] += 1
        mx, my, c = self.grid.mean_cov(around=self.grid.mode(), radius_m=3.0 * p.grid_cell_m)
        xn = x.copy()
        xn[0], xn[1], xn[2], xn[3] = mx, my, 0.0, 0.0
        pn = ekf.P.copy()
        pn[:4, :] = 0.0
        pn[:, :4] = 0.0
        pn[:2, :2] = c
        pn[2, 2] = pn[3, 3] = 1.0
        ekf.set_state(xn, pn)

    def _snap_to_aisle(self, ekf: Ekf) -> None:
        """Soft constraint to the nearest aisle's centre line (position and heading) when on it."""
        if self._aisles is None or self.p.aisle_capture_m < 0:
            return
        a0x, a0y, ux, uy, length, half_w = self._aisles
        x = ekf.x
        px, py = float(x[0]), float(x[1])
        s = np.clip((px - a0x) * ux + (py - a0y) * uy, 0.0, length)
        cx = a0x + s * ux
        cy = a0y + s * uy
        d = np.hypot(px - cx, py - cy)
        j = int(np.argmin(d - half_w))
        if d[j] > half_w[j] + self.p.aisle_capture_m:
            self.stats["off_aisle_s"] += 1
            return
        nx, ny = -uy[j], ux[j]
        hj = np.zeros((1, self.dim))
        hj[0, 0], hj[0, 1] = nx, ny
        z = np.array([nx * cx[j] + ny * cy[j]])
        h = np.array([nx * px + ny * py])
        sig = max(half_w[j] * self.p.aisle_sigma_frac, AISLE_MIN_SIGMA_M)
        ekf.update(z, lambda _x: h, lambda _x: hj, np.array([[sig * sig]]))

    def _constrain(self, ekf: Ekf) -> None:
        self._snap_to_aisle(ekf)
        x = ekf.x
        wl = float(np.clip(x[self.i_wall], WALL_LOSS_MIN_DB, WALL_LOSS_MAX_DB))
        if wl != x[self.i_wall]:
            xn = x.copy()
            xn[self.i_wall] = wl
            ekf.set_state(xn)
            x = ekf.x
        b = self.site.bounds
        cx, cy = b.clamp(float(x[0]), float(x[1]))
        if cx != x[0] or cy != x[1]:
            xn = x.copy()
            if cx != x[0]:
                xn[2] = 0.0
            if cy != x[1]:
                xn[3] = 0.0
            xn[0], xn[1] = cx, cy
            ekf.set_state(xn)
        v = ekf.x[2:4]
        sp = float(np.hypot(v[0], v[1]))
        if sp > self.p.max_speed_mps:
            xn = ekf.x.copy()
            xn[2:4] *= self.p.max_speed_mps / sp
            ekf.set_state(xn)

    def _estimate(self, ekf: Ekf, t: float) -> Estimate:
        x = ekf.x
        speed = float(np.hypot(x[2], x[3]))
        moving = self.motion.moving
        pp = ekf.P
        valid = self._last_meas_t is not None and t - self._last_meas_t <= self.p.stale_after_s
        return Estimate(t, float(x[0]), float(x[1]),
                        (float(pp[0, 0]), float(pp[0, 1]), float(pp[1, 1])),
                        speed if moving else 0.0, moving, valid=valid)

    # --- reporting ------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        """JSON-able state for the agent's health topic."""
        emitters: dict[str, object] = {}
        x = self.ekf.x if self.ekf is not None else None
        for i, e in enumerate(self.monitor.emitters):
            emitters[e.key] = {
                "kind": "wifi" if self.kind[i] == _WIFI else "ble",
                "offset_db": round(float(x[4 + i]), 2) if x is not None else 0.0,
                "samples": round(e.samples, 1), "moved_llr": round(e.llr, 1),
                "best_xy": [round(v, 1) for v in e.best_xy] if e.best_xy else None,
                "moved": e.moved,
            }
        return {
            **self.stats,
            "wall_loss_db": round(float(x[self.i_wall]), 2) if x is not None else None,
            "floor_dbm": {"wifi": self.floor_dbm[_WIFI], "ble": self.floor_dbm[_BLE]},
            "moved": self.monitor.moved_keys(),
            "emitters": emitters,
        }
