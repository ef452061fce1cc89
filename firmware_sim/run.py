"""simulate(): one truck's run in one scenario, as observations, ground truth and a bundle.

The bundle's files are written from the very arrays the observations come from, so replaying
the bundle through the agent's sources gives back `SimRun.observations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge_agent.capture.writers import (
    LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR,
    LINKTYPE_IEEE802_11_RADIOTAP,
    BeaconTemplate,
    BleAdvTemplate,
    PcapWriter,
    eddystone_uid_data,
    ibeacon_data,
    pcap_time_s,
)
from edge_agent.errors import InputError
from edge_agent.observations import BleObs, GnssFix, GnssNoFix, Observation, WifiObs
from edge_agent.site import Site
from firmware_sim.gnss import Epoch, simulate_gnss
from firmware_sim.motion import Truth, plan_track, truth_at_10hz
from firmware_sim.plant import Plant
from firmware_sim.receivers import Captured, capture_ble, capture_wifi
from firmware_sim.scenarios import SCENARIOS, Scenario
from firmware_sim.seeds import stream
from firmware_sim.world import World, build_world

T0_S = 1795000000.0  # every run starts here (2026-11-18 ~11:06 UTC): fixed, so runs compare
MAX_DURATION_S = 86400.0  # a day: dense_ble then holds a few GB of frames and observations
RECEIVER_UERE_M = 4.0  # as the agent's NMEA reader: sigma = HDOP x UERE / sqrt(2) without GST


@dataclass
class SimRun:
    """One simulated run: the survey site, what the agent will observe, and the truth."""

    name: str
    seed: int
    truck: int
    scenario: Scenario
    plant: Plant
    world: World
    truth: Truth
    wifi: list[Captured]
    ble: list[Captured]
    gnss: list[Epoch]
    wifi_rx_gain_db: float = 0.0
    ble_rx_gain_db: float = 0.0
    observations: list[Observation] = field(default_factory=list)

    @property
    def site(self) -> Site:
        """The survey, as written to site.json."""
        return self.world.survey

    @property
    def true_site(self) -> Site:
        """The APs and beacons as this truck's receivers really hear them: true positions and
        exponents, rssi_1m including the receiver's own gain offset."""
        ts = self.world.true_site
        return replace(ts, _ap_by_bssid={},
                       wifi_aps=tuple(replace(a, rssi_1m_dbm=a.rssi_1m_dbm + self.wifi_rx_gain_db)
                                      for a in ts.wifi_aps),
                       ble_beacons=tuple(replace(b, rssi_1m_dbm=b.rssi_1m_dbm
                                                 + self.ble_rx_gain_db)
                                         for b in ts.ble_beacons))

    @property
    def t0(self) -> float:
        return float(self.truth.t[0])

    def write_bundle(self, out_dir: str | Path) -> Path:
        """Write site.json, wifi.pcap, ble.pcap (if any beacons), gps.nmea and truth.csv."""
        out = Path(out_dir)
        try:
            self._write(out)
        except OSError as e:
            raise InputError(out, f"cannot write the bundle: {e.strerror or e}") from None
        return out

    def _write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.site.save(out / "site.json")
        groups = []
        for c in self.wifi:
            em = self.world.wifi[c.index]
            groups.append((c.t_us, BeaconTemplate(em.bssid, em.ssid, em.channel).frames(
                c.rssi_dbm, c.seq, c.tsf_us)))
        with PcapWriter(out / "wifi.pcap", LINKTYPE_IEEE802_11_RADIOTAP) as w:
            w.write_groups(groups)
        if self.world.ble:
            bgroups = []
            for c in self.ble:
                b = self.world.ble[c.index]
                data = (ibeacon_data(*b.ibeacon) if b.ibeacon is not None else
                        eddystone_uid_data(*b.eddystone) if b.eddystone is not None else
                        bytes([2, 1, 6]))
                bgroups.append((c.t_us, BleAdvTemplate(b.address, data).frames(c.rssi_dbm,
                                                                               c.channel)))
            with PcapWriter(out / "ble.pcap", LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR) as w:
                w.write_groups(bgroups)
        lines = [line for e in self.gnss for line in e.lines]
        (out / "gps.nmea").write_text("\r\n".join(lines) + "\r\n")
        tr = self.truth
        rows = [f"{t:.1f},{x:.3f},{y:.3f},{v:.3f},{int(m)}" for t, x, y, v, m in zip(
            tr.t.tolist(), tr.x.tolist(), tr.y.tolist(), tr.speed.tolist(), tr.moving.tolist(),
            strict=True)]
        (out / "truth.csv").write_text("t,x,y,speed,moving\n" + "\n".join(rows) + "\n")


def scenario(name: str) -> Scenario:
    sc = SCENARIOS.get(name)
    if sc is None:
        raise InputError("scenario", "unknown scenario (see --list)", value=name)
    return sc


def simulate(name: str | Scenario, seed: int = 0, duration_s: float | None = None, *,
             truck: int = 0) -> SimRun:
    """Simulate truck `truck` (0 for a single run) of a scenario (its name or itself).

    Deterministic in (scenario seed key, seed, truck). Passing a modified Scenario (e.g. with
    dataclasses.replace) is how tests switch one model component off.
    """
    sc = scenario(name) if isinstance(name, str) else name
    dur = float(sc.duration_s if duration_s is None else duration_s)
    if not 0 < dur <= MAX_DURATION_S:
        raise InputError("--duration", f"must be between 0 and {MAX_DURATION_S:.0f} seconds",
                         value=duration_s)
    plant = sc.plant()
    world = build_world(sc, plant, seed)
    key = sc.seed_key
    r_motion = stream(seed, key + "/motion", truck)
    driver = float(r_motion.uniform(0.92, 1.05))
    start = int(r_motion.choice([*plant.racks, plant.park]))
    track = plan_track(plant, sc.motion, r_motion, T0_S, dur + 1.0, driver, start)
    truth = truth_at_10hz(track, T0_S, dur)
    r_rx = stream(seed, key + "/receiver", truck)
    hop_t0 = T0_S - float(r_rx.uniform(0, 3 * sc.wifi.dwell_s))
    r_gain = stream(seed, key + "/rx-gain", truck)
    wifi_gain = float(r_gain.normal(0.0, sc.wifi.link.rx_gain_sd_db))
    ble_gain = float(r_gain.normal(0.0, sc.ble.link.rx_gain_sd_db)) if sc.ble else 0.0
    wifi = capture_wifi(world.wifi, sc.wifi, plant, track, T0_S, dur, hop_t0,
                        stream(seed, key + "/wifi-rx", truck), wifi_gain)
    ble: list[Captured] = []
    if sc.ble is not None:
        scan_t0 = T0_S - float(r_rx.uniform(0, 3 * sc.ble.scan_interval_s))
        ble = capture_ble(world.ble, sc.ble, world.ble_collision_loss, plant, track, T0_S, dur,
                          scan_t0, stream(seed, key + "/ble-rx", truck), ble_gain)
    gnss = simulate_gnss(sc.gnss, plant, world.survey, track, T0_S, dur,
                         stream(seed, key + "/gnss", truck))
    run = SimRun(sc.name, seed, truck, sc, plant, world, truth, wifi, ble, gnss, wifi_gain,
                 ble_gain)
    run.observations = _observations(run)
    return run


def _merged(caps: list[Captured]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(emitter index, position within its group) of every record in file order, and times."""
    if not caps:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    t = np.concatenate([c.t_us for c in caps])
    g = np.concatenate([np.full(len(c.t_us), i) for i, c in enumerate(caps)])
    pos = np.concatenate([np.arange(len(c.t_us)) for c in caps])
    order = np.argsort(t, kind="stable")
    return g[order], pos[order], t[order]


def _merged_values(caps: list[Captured], g: np.ndarray, pos: np.ndarray) -> list[float]:
    """RSSI (float dBm) of every record in file order."""
    if not caps:
        return []
    starts = np.concatenate(([0], np.cumsum([len(c.rssi_dbm) for c in caps])[:-1]))
    flat = np.concatenate([c.rssi_dbm for c in caps]).astype(np.float64)
    out: list[float] = flat[starts[g] + pos].tolist()
    return out


def _rmc_speed_mps(lines: tuple[str, ...]) -> float | None:
    """The speed over ground the agent's NMEA reader takes from the epoch's RMC (same sums)."""
    from edge_agent.sources.nmea import MAX_KNOTS, MPS_PER_KNOT

    for line in lines:
        fields = line.split(",")
        if fields[0].endswith("RMC") and len(fields) > 7 and fields[7]:
            knots = float(fields[7])
            return knots * MPS_PER_KNOT if 0 <= knots <= MAX_KNOTS else None
    return None


def _observations(run: SimRun) -> list[Observation]:
    """Exactly what the agent's sources yield from the bundle (surveyed emitters only)."""
    from edge_agent.sources.dot11 import channel_to_freq

    wifi: list[Observation] = []
    g, pos, t_us = _merged(run.wifi)
    rssi = _merged_values(run.wifi, g, pos)
    for gi, r, t in zip(g.tolist(), rssi, pcap_time_s(t_us).tolist(), strict=True):
        em = run.world.wifi[run.wifi[gi].index]
        if em.surveyed:
            wifi.append(WifiObs(t, em.bssid, r, em.channel, channel_to_freq(em.channel),
                                em.ssid))
    ble: list[Observation] = []
    g, pos, t_us = _merged(run.ble)
    rssi = _merged_values(run.ble, g, pos)
    for gi, r, t in zip(g.tolist(), rssi, pcap_time_s(t_us).tolist(), strict=True):
        b = run.world.ble[run.ble[gi].index]
        if b.surveyed:
            ble.append(BleObs(t, b.beacon_id, r, b.address))
    gnss: list[Observation] = []
    site = run.site
    for e in run.gnss:
        if not e.fix:
            gnss.append(GnssNoFix(e.t))
            continue
        x, y = site.to_local(e.lat, e.lon)
        has_gst = run.scenario.gnss.gst
        sigma = (float(np.sqrt((e.sigma_lat_m ** 2 + e.sigma_lon_m ** 2) / 2)) if has_gst
                 else e.hdop * RECEIVER_UERE_M / float(np.sqrt(2.0)))
        gnss.append(GnssFix(e.t, x, y, sigma, e.hdop, 1, e.lat, e.lon, e.num_sats, has_gst,
                            _rmc_speed_mps(e.lines)))
    out = wifi + ble + gnss
    out.sort(key=lambda o: o.t)
    return out
