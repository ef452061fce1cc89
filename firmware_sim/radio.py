"""What a receiver on the truck measures from one emitter: path loss, walls, shadowing, fading.

rssi = rssi_1m - 10 n log10(d / 1 m) - wall + shadow(x, y) + fading(x, y, t), then the receiver's
sensitivity (a soft threshold: detection probability is logistic around it) and random frame
loss decide whether the frame exists at all; what is written is the integer dBm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from firmware_sim.fields import FadingField, ShadowField, rician_log_mean_db
from firmware_sim.plant import Plant

Array = npt.NDArray[np.float64]

RAYLEIGH_K_DB = -100.0  # no line of sight: pure scattering
MIN_DISTANCE_M = 0.5  # the log-distance law is not used closer than this (near field, body)


@dataclass(frozen=True)
class LinkModel:
    """Propagation and receiver parameters shared by the emitters of one kind (Wi-Fi or BLE)."""

    shadow_sigma_db: float
    shadow_corr_m: float
    k_factor_db: float  # Rician K on a line-of-sight path inside the hall
    wall_loss_db: float  # through the exterior wall (cladding, racks along it)
    door_loss_db: float  # through an open dock door
    sensitivity_dbm: float
    sensitivity_soft_db: float  # logistic width of the detection threshold
    frame_loss: float  # frames lost to collisions and interference, independent of level
    env_doppler_hz: float = 0.5  # people and trucks moving around a standing receiver
    body_pattern_db: float = 3.0  # front-to-back: the mast shades emitters ahead (zero-mean)
    rx_gain_sd_db: float = 1.5  # receivers of one model differ from each other by this
    rssi_noise_db: float = 1.0  # the chip's RSSI estimate itself is noisy (per frame, 1 sigma)
    channel_gain_sd_db: float = 0.0  # per emitter and channel (BLE: antenna response over
    # 2402-2480 MHz differs by a dB or two between advertising channels)
    rx_height_m: float = 2.0  # antenna on the overhead guard


@dataclass
class TrueEmitter:
    """An emitter as it really is (position and radio), with its random fields."""

    key: str  # BSSID (Wi-Fi) or beacon id (BLE)
    x: float
    y: float
    z: float
    rssi_1m_dbm: float
    exponent: float
    freqs_mhz: tuple[float, ...]
    shadow: ShadowField
    fading: dict[tuple[float, float], FadingField] = field(default_factory=dict)
    channel_gain_db: dict[float, float] = field(default_factory=dict)  # zero-mean over channels
    # (freq, K) -> field: the hall's Rician K on line of sight, Rayleigh behind the wall

    @classmethod
    def draw(cls, rng: np.random.Generator, key: str, x: float, y: float, z: float,
             rssi_1m_dbm: float, exponent: float, freqs_mhz: tuple[float, ...],
             link: LinkModel) -> TrueEmitter:
        shadow = ShadowField.draw(rng, link.shadow_sigma_db, link.shadow_corr_m)
        em = cls(key, x, y, z, rssi_1m_dbm, exponent, freqs_mhz, shadow)
        for f in freqs_mhz:
            for k in (link.k_factor_db, RAYLEIGH_K_DB):
                em.fading[(f, k)] = FadingField.draw(rng, f, k, link.env_doppler_hz,
                                                     _log_mean(k))
        if link.channel_gain_sd_db > 0 and len(freqs_mhz) > 1:
            g = rng.normal(0.0, link.channel_gain_sd_db, len(freqs_mhz))
            em.channel_gain_db.update(zip(freqs_mhz, (g - g.mean()).tolist(), strict=True))
        return em

    def mean_rssi_dbm(self, x: Array, y: Array, plant: Plant | None, link: LinkModel,
                      shadow_db: Array | None = None) -> tuple[Array, npt.NDArray[np.bool_]]:
        """Local mean (path loss, wall, shadowing) at receiver positions; and 'behind the wall'.

        shadow_db: the shadowing at these positions if already known (see receivers.py)."""
        d = np.sqrt((x - self.x) ** 2 + (y - self.y) ** 2 + (link.rx_height_m - self.z) ** 2)
        d = np.maximum(d, MIN_DISTANCE_M)
        shadow = self.shadow(x, y) if shadow_db is None else shadow_db
        rssi = self.rssi_1m_dbm - 10 * self.exponent * np.log10(d) + shadow
        if plant is None:
            return rssi, np.zeros(np.shape(x), dtype=bool)
        crosses, via_door = plant.wall_crossing(x, y, link.rx_height_m, self.x, self.y, self.z)
        rssi = rssi - np.where(via_door, link.door_loss_db,
                               np.where(crosses, link.wall_loss_db, 0.0))
        return rssi, crosses & ~via_door

    def measure(self, x: Array, y: Array, t_rel_s: Array, freq_mhz: Array,
                plant: Plant | None, link: LinkModel, rng: np.random.Generator,
                heading_rad: Array | None = None, rx_gain_db: float = 0.0,
                shadow_db: Array | None = None) -> tuple[Array, npt.NDArray[np.bool_]]:
        """Measured RSSI (float dBm, before rounding) and whether each frame is received.

        rx_gain_db: this receiver's gain relative to the reference one; heading_rad: the truck's
        heading, for the body pattern (mast and load shade the antenna from the front).
        """
        rssi, blocked = self.mean_rssi_dbm(x, y, plant, link, shadow_db)
        rssi = rssi + rx_gain_db
        if heading_rad is not None and link.body_pattern_db:
            bearing = np.arctan2(self.y - y, self.x - x)
            rssi = rssi - 0.5 * link.body_pattern_db * np.cos(bearing - heading_rad)
        fade = np.zeros(len(x))
        for f in self.freqs_mhz:
            fsel = freq_mhz == f
            if f in self.channel_gain_db:
                fade[fsel] += self.channel_gain_db[f]
            for k, sel in ((link.k_factor_db, fsel & ~blocked), (RAYLEIGH_K_DB, fsel & blocked)):
                if sel.any():
                    fade[sel] += self.fading[(f, k)](x[sel], y[sel], t_rel_s[sel])
        rssi = rssi + fade
        p_detect = 1.0 / (1.0 + np.exp(-(rssi - link.sensitivity_dbm)
                                       / link.sensitivity_soft_db))
        ok = (rng.random(len(x)) < p_detect) & (rng.random(len(x)) >= link.frame_loss)
        # what the chip reports: the received level plus its estimation error
        return rssi + link.rssi_noise_db * rng.standard_normal(len(x)), ok


_LOG_MEAN_CACHE: dict[float, float] = {}


def _log_mean(k_db: float) -> float:
    if k_db not in _LOG_MEAN_CACHE:
        _LOG_MEAN_CACHE[k_db] = rician_log_mean_db(k_db)
    return _LOG_MEAN_CACHE[k_db]


def dbm_round(rssi: Array) -> npt.NDArray[np.int64]:
    """Drivers report whole dBm."""
    out: npt.NDArray[np.int64] = np.rint(rssi).astype(np.int64)
    return out

