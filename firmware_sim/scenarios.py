"""Ready-made scenarios: a plant, its radios and GNSS conditions, and how the trucks work.

Every number is a model parameter documented (with its real-world source) in docs/simulator.md.
Twin scenarios share `seed_key`, hence every random stream: stale_survey and stale_survey_control
differ only in where one AP really hangs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from firmware_sim.motion import MotionParams
from firmware_sim.plant import Plant, hall_with_yard
from firmware_sim.radio import LinkModel

WIFI_HALL = LinkModel(
    shadow_sigma_db=4.0, shadow_corr_m=4.0, k_factor_db=4.0, wall_loss_db=12.0,
    door_loss_db=2.0, sensitivity_dbm=-92.0, sensitivity_soft_db=1.0, frame_loss=0.03)
BLE_HALL = LinkModel(
    shadow_sigma_db=5.0, shadow_corr_m=3.0, k_factor_db=0.0, wall_loss_db=12.0,
    door_loss_db=2.0, sensitivity_dbm=-96.0, sensitivity_soft_db=1.5, frame_loss=0.05,
    channel_gain_sd_db=1.5, rssi_noise_db=1.5)


@dataclass(frozen=True)
class WifiConfig:
    link: LinkModel = WIFI_HALL
    ap_xy: tuple[tuple[float, float], ...] = ()  # surveyed hall APs
    yard_ap_xy: tuple[tuple[float, float], ...] = ()  # on the outside of the wall
    ap_height_m: float = 6.0  # ceiling-hung under the roof trusses
    yard_ap_height_m: float = 5.0
    channels: tuple[int, ...] = (1, 6, 11)
    survey_rssi_1m_dbm: float = -38.0
    survey_rssi_sd_db: float = 1.0  # survey values differ a little between APs
    survey_exponent: float = 2.5
    true_offset_mean_db: float = -3.0  # the truck's radio hears less than the survey phone
    true_offset_sd_db: float = 2.5
    true_exponent_bias: float = -0.1
    true_exponent_sd: float = 0.2
    survey_position_sd_m: float = 0.5  # surveyors place APs on the plan to about this
    beacon_interval_s: float = 0.1024  # 100 TU
    beacon_defer_mean_s: float = 0.0005  # CSMA deferral of a beacon when the medium is busy
    clock_ppm: float = 25.0  # AP TSF crystal tolerance
    dwell_s: float = 0.25  # monitor-mode hopping dwell per channel
    switch_s: float = 0.02  # deaf while retuning
    foreign_aps: int = 3  # neighbours' networks: heard, never surveyed
    burst_share: float = 0.03  # share of time with interference bursts ...
    burst_mean_s: float = 0.4  # ... lasting this long on average ...
    burst_loss: float = 0.6  # ... that lose this share of frames (inside link.frame_loss)
    outage: tuple[int, float, float] | None = None  # (AP index, start s, duration s): AP off
    moved_ap: tuple[int, float, float] | None = None  # (index, dx, dy) after the survey


@dataclass(frozen=True)
class BleConfig:
    link: LinkModel = BLE_HALL
    beacon_xyz: tuple[tuple[float, float, float], ...] = ()
    intervals_s: tuple[float, ...] = (0.1, 0.2, 0.35, 0.5, 1.0)
    survey_rssi_1m_dbm: float = -59.0  # iBeacon "measured power" default
    survey_exponent: float = 2.0
    true_offset_mean_db: float = -2.0
    true_offset_sd_db: float = 3.0  # cheap beacons: wide spread of TX power and antenna
    true_exponent_bias: float = 0.2
    true_exponent_sd: float = 0.3
    adv_delay_max_s: float = 0.010  # spec: 0-10 ms random delay per advertising event
    channel_spacing_s: float = 0.0006  # 37 -> 38 -> 39 within one event
    airtime_s: float = 0.000376  # 47-byte packet at 1 Mb/s
    scan_interval_s: float = 0.03  # scanner rotates 37/38/39 each interval, 100 % window
    address_only_every: int = 4  # every 4th beacon is matched by address, not iBeacon id
    foreign_advertisers: int = 4  # phones, tags


@dataclass(frozen=True)
class GnssConfig:
    talker: str = "GN"
    gst: bool = False
    gsa: bool = True
    gsv: bool = False
    outdoor_sigma_m: float = 1.3  # per axis, open sky, standalone receiver
    tau_s: float = 60.0  # Gauss-Markov correlation time of the error
    wall_multipath_gain: float = 1.5  # sigma x (1 + gain * exp(-d / 6 m)) next to the wall
    door_decay_m: float = 4.0  # availability inside falls as exp(-depth / this)
    deep_indoor_m: float = 12.0  # further than this from a door: no fix at all
    indoor_sigma_per_m: float = 1.2  # degraded fixes inside: sigma = 3 m + this x depth
    reacquire_s: tuple[float, float] = (2.0, 6.0)  # hot start after an outage
    wild_per_hour: float = 6.0  # fixes 20-40 m off with a good-looking HDOP
    wild_range_m: tuple[float, float] = (20.0, 40.0)
    wild_epochs: tuple[int, int] = (1, 3)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed_key: str
    plant: Callable[[], Plant]
    wifi: WifiConfig
    ble: BleConfig | None = None
    gnss: GnssConfig = field(default_factory=GnssConfig)
    motion: MotionParams = field(default_factory=MotionParams)
    duration_s: float = 1800.0


def _grid_aps(xs: tuple[float, ...], ys: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    return tuple((x, y) for y in ys for x in xs)


HALL = lambda: hall_with_yard("plant-a")  # noqa: E731 - a layout factory
HALL_12 = _grid_aps((12.5, 37.5, 62.5, 87.5), (10.0, 30.0, 50.0))
HALL_BEACONS = (*((x, y, 2.5) for x in (5.0, 35.0, 65.0, 95.0) for y in (5.0, 55.0)),
                (25.0, 58.0, 3.0), (55.0, 58.0, 3.0))
DENSE_BEACONS = tuple((x + 5.0, y, 2.5) for x in range(0, 100, 10) for y in (15.0, 30.0, 45.0)
                      ) + tuple((x, y, 2.5) for x in (2.0, 98.0) for y in range(10, 60, 10))

_INDOOR = Scenario(
    "indoor_shift", "a hall shift: 12 APs on 1/6/11, 10 BLE beacons, no yard trips", "hall12",
    HALL, WifiConfig(ap_xy=HALL_12), BleConfig(beacon_xyz=HALL_BEACONS),
    GnssConfig(talker="GN", gsa=True))


def _high_bay() -> Plant:
    return hall_with_yard("high-bay", width_m=160.0, hall_depth_m=40.0, yard_depth_m=25.0,
                          aisle_pitch_m=8.0, door_xs=(20.0, 80.0, 140.0))


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    _INDOOR,
    replace(_INDOOR, name="yard_trips", seed_key="yard14",
            description="yard trips through the dock doors: 12 hall APs + 2 on the outside wall, "
                        "GNSS outdoors with GST and GSV",
            wifi=WifiConfig(ap_xy=HALL_12, yard_ap_xy=((30.0, 60.5), (70.0, 60.5))),
            gnss=GnssConfig(talker="GN", gst=True, gsa=True, gsv=True),
            motion=MotionParams(yard_trip_prob=0.4)),
    replace(_INDOOR, name="sparse_aps", seed_key="sparse5",
            description="only 5 APs, no beacons: poor geometry, long censored ranges",
            wifi=WifiConfig(ap_xy=((15.0, 10.0), (85.0, 12.0), (50.0, 30.0), (20.0, 50.0),
                                   (80.0, 50.0))),
            ble=None, gnss=GnssConfig(talker="GP", gsa=False)),
    replace(_INDOOR, name="stale_survey", seed_key="stale12",
            description="indoor shift where AP 5 hangs 25 m from where the survey says "
                        "(twin: stale_survey_control)",
            wifi=WifiConfig(ap_xy=HALL_12, moved_ap=(5, 15.0, 20.0))),
    replace(_INDOOR, name="stale_survey_control", seed_key="stale12",
            description="stale_survey with the AP where the survey says: same seeds, same trip",
            wifi=WifiConfig(ap_xy=HALL_12)),
    replace(_INDOOR, name="dense_ble", seed_key="dense40",
            description="40 BLE beacons on the rack ends and walls (100-350 ms) plus 12 APs",
            ble=BleConfig(beacon_xyz=DENSE_BEACONS, intervals_s=(0.1, 0.2, 0.25, 0.35)),
            gnss=GnssConfig(talker="GN", gst=True)),
    Scenario("high_bay", "a 160 m x 40 m high-bay warehouse: tall steel racks (exponent 3.0, "
             "6 dB shadowing), 8 APs in two rows (one reboots: off 600-780 s), yard trips, "
             "GPS-only receiver with GST",
             "highbay8", _high_bay,
             WifiConfig(ap_xy=_grid_aps((20.0, 60.0, 100.0, 140.0), (10.0, 30.0)),
                        ap_height_m=10.0, survey_exponent=3.0, outage=(3, 600.0, 180.0),
                        link=replace(WIFI_HALL, shadow_sigma_db=6.0, shadow_corr_m=3.0,
                                     k_factor_db=1.0)),
             None, GnssConfig(talker="GP", gst=True, gsa=True, gsv=True, wild_per_hour=10.0),
             MotionParams(yard_trip_prob=0.2)),
)}
