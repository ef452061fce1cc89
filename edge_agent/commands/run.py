"""`edge-agent run`: the live agent: live sources -> pipeline -> SQLite outbox -> MQTT.

Each live source runs in its own thread (they block on radios and serial ports); the main thread
merges their observations by time through a short reorder buffer, feeds the pipeline, and stores a
health record every --health-interval seconds. SIGTERM/SIGINT stop it: the open window is closed
and everything waits in the outbox or goes to the broker.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import logging
import math
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.buffer.outbox import DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES
from edge_agent.cli_options import add_live_source_options, parse_host_port
from edge_agent.clock import Clock, system_clock
from edge_agent.errors import InputError, SourceError
from edge_agent.observations import Observation
from edge_agent.publish.forward import OutboxForwarder
from edge_agent.publish.options import add_broker_options, broker_kwargs, check_topic_level
from edge_agent.sources.base import Source, SourceStats

log = logging.getLogger(__name__)

# Live sources hand over observations up to ~1 s late relative to each other (Wi-Fi channel
# hops, BLE scan callbacks, NMEA once a second); holding 2 s of data time restores time order.
# A simulation played X times faster holds X times more data time (its threads race ahead of
# each other by as much wall time as live ones).
REORDER_S = 2.0
DEFAULT_HEALTH_INTERVAL_S = 60.0
# The main loop wakes at least this often (wall time) to pump, write health and check stop.
IDLE_WAKE_S = 0.5
DEFAULT_DRAIN_TIMEOUT_S = 10.0
DEFAULT_GNSS_BAUD = 9600  # most USB GNSS receivers' NMEA default
SIM_AGENT = "sim-01"  # --simulate without --agent
# An emitter whose "moved" evidence is half what the tracker needs to call it moved is worth a
# look in the health record (suspect) before it is dropped.
SUSPECT_SHARE_OF_MOVED_LLR = 0.5
_DONE = object()


@dataclass
class LiveSummary:
    observations: int = 0
    health_records: int = 0
    sources_ended: int = 0


def run_live(sources: Iterable[Source], feed: Callable[[Observation], None],
             forwarder: OutboxForwarder, *, clock: Clock = system_clock,
             health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S,
             stop: threading.Event | None = None, reorder_s: float = REORDER_S,
             health_extra: Callable[[], dict[str, Any]] | None = None) -> LiveSummary:
    """Pump every source through `feed` in time order until all end or `stop` is set.

    Raw observations also go to forwarder.add_observations (kept only when record_raw). The
    caller closes the pipeline and the forwarder afterwards.
    """
    stop = stop or threading.Event()
    srcs = list(sources)
    q: queue.SimpleQueue[object] = queue.SimpleQueue()
    errors: list[BaseException] = []

    def pump_source(src: Source) -> None:
        try:
            for obs in src:
                q.put(obs)
                if stop.is_set():
                    break
        except BaseException as e:  # surfaced in the main thread
            errors.append(e)
        finally:
            q.put(_DONE)

    threads = [threading.Thread(target=pump_source, args=(s,), daemon=True,
                                name=f"source-{s.kind}") for s in srcs]
    for t in threads:
        t.start()
    summary = LiveSummary()
    heap: list[tuple[float, int, Observation]] = []
    newest = float("-inf")
    seq = 0
    next_health = clock() + health_interval_s
    broker_error_logged = False

    def release(upto: float) -> None:
        while heap and heap[0][0] <= upto:
            _, _, obs = heapq.heappop(heap)
            feed(obs)
            forwarder.add_observations((obs,))
            summary.observations += 1

    while summary.sources_ended < len(srcs) and not stop.is_set():
        try:
            item = q.get(timeout=IDLE_WAKE_S)
        except queue.Empty:
            item = None
        if item is _DONE:
            summary.sources_ended += 1
        elif item is not None:
            obs: Observation = item  # type: ignore[assignment]
            heapq.heappush(heap, (obs.t, seq, obs))
            seq += 1
            newest = max(newest, obs.t)
            release(newest - reorder_s)
        if errors:
            stop.set()
            break
        if forwarder.error is not None and not broker_error_logged:
            # Keep measuring and storing: the windows wait for fixed credentials.
            log.error("%s; windows keep waiting in the outbox", forwarder.error)
            broker_error_logged = True
        now = clock()
        if now >= next_health:
            forwarder.put_health(health_extra() if health_extra else None)
            summary.health_records += 1
            next_health = now + health_interval_s
    stop.set()
    for src in srcs:  # radios (and simulations) that can be told to end stop reading now
        end = getattr(src, "stop", None)
        if callable(end):
            end()
    release(float("inf"))
    if errors:
        e = errors[0]
        if isinstance(e, SourceError):
            raise e
        raise SourceError(f"a live source failed: {type(e).__name__}: {e}") from e
    return summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run", help="run the live agent: radios and GNSS -> heatmap windows -> MQTT",
        description="Run the agent live. Options override --config. Windows are stored in the "
                    "outbox database first and published at QoS 1 when the broker is reachable; "
                    "SIGTERM or Ctrl-C closes the open window and drains for --drain-timeout. "
                    "--simulate feeds it a firmware_sim scenario instead of the radios.")
    p.add_argument("--config", type=Path, metavar="TOML", help="agent config (agent.toml)")
    p.add_argument("--site", type=Path, metavar="SITE_JSON",
                   help="the site survey (site.json); with --simulate, default the scenario's")
    p.add_argument("--agent", help="agent id, e.g. fl-01 (A-Z a-z 0-9 . _ -)")
    p.add_argument("--db", type=Path, metavar="PATH", help="outbox database (default from config)")
    add_live_source_options(p, from_config=True, allow_off=True)
    sim = p.add_argument_group("simulation (instead of the radios)")
    sim.add_argument("--simulate", metavar="SCENARIO",
                     help="feed the agent a simulated forklift (python -m firmware_sim --list), "
                          "paced like live radios; its times start now")
    sim.add_argument("--seed", type=int, default=None, help="simulation seed (default 0)")
    sim.add_argument("--speed", type=float, default=None, metavar="X",
                     help="play the simulation X times faster than real time (default 1)")
    add_broker_options(p)
    p.add_argument("--health-interval", type=float, default=DEFAULT_HEALTH_INTERVAL_S,
                   metavar="S", help="store and publish a health record every S seconds")
    p.add_argument("--drain-timeout", type=float, default=DEFAULT_DRAIN_TIMEOUT_S, metavar="S",
                   help="at exit, wait up to S seconds for the broker to take what waits")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (with --simulate: simulate S seconds, and stop "
                        "when they have been played)")
    p.add_argument("--record-raw", action="store_true", default=None,
                   help="keep raw observations in the database (on the device only)")
    p.add_argument("--publish-positions", action="store_true", default=None,
                   help="publish the position track (off by default: privacy)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge_agent.pipeline import Pipeline
    from edge_agent.site import load_site

    cfg = None
    if args.config is not None:
        from edge_agent.config import check_permissions, load_config

        cfg = load_config(args.config)
        # Refuses a world-readable secret (ConfigError, exit 2), as `validate` does.
        for warning in check_permissions(cfg):
            print(f"run: warning: {warning}", file=sys.stderr)
    sim_run = None
    speed: float = 1.0 if args.speed is None else float(args.speed)
    if args.simulate:
        args.seed = 0 if args.seed is None else args.seed
        args.speed = speed
        sim_run = simulate_run(args)
    elif args.seed is not None or args.speed is not None:
        raise InputError("command line", "--seed and --speed go with --simulate SCENARIO",
                         field="--simulate")
    # A simulation's observations fit its own survey, not the config's plant.
    site_path = args.site or (cfg.agent.site_file if cfg and sim_run is None else None)
    if site_path is not None:
        site = load_site(site_path)
    elif sim_run is not None:
        site = sim_run.site
    else:
        raise InputError("--site", "give --site SITE_JSON or --config")
    agent = args.agent or (cfg.agent.id if cfg else None) or (
        SIM_AGENT if sim_run is not None else None)
    if not agent:
        raise InputError("--agent", "give --agent ID or --config")
    check_topic_level(agent, "--agent")
    topic_site = (cfg.mqtt.site if cfg and cfg.mqtt.site else site.site)
    check_topic_level(topic_site, "site", "site.json or mqtt.site")
    db = args.db or (cfg.db_path if cfg else None)
    if db is None:
        raise InputError("--db", "give --db PATH or --config")
    sources = simulated_sources(sim_run, speed) if sim_run is not None \
        else build_sources(args, cfg, site)
    if not sources:
        raise InputError("--wifi-mode/--ble/--gnss-*", "no source enabled")
    fwd_kwargs = forwarder_kwargs(args, cfg)
    broker = args.broker or (cfg.mqtt.url if cfg else None) or None
    fwd = OutboxForwarder(db, broker, topic_site, agent, close_timeout_s=args.drain_timeout,
                          **fwd_kwargs)
    cell_m = cfg.heatmap.cell_m if cfg else 2.0
    window_s = cfg.heatmap.window_s if cfg else 60.0
    pipeline = Pipeline(site, agent, cell_m=cell_m, window_s=window_s, window_sink=fwd)

    def extra() -> dict[str, Any]:
        return live_health(sources, pipeline.tracker.health)

    fwd.health_extra = extra  # also the final record close() stores
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}
    # Simulated: --duration is simulated time, and the sources end when it is played.
    wall_s = args.duration if sim_run is None else None
    timer = threading.Timer(wall_s, stop.set) if wall_s is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    what = (f"simulated {args.simulate} (seed {args.seed}, x{args.speed:g})" if sim_run
            else f"{len(sources)} source(s)")
    print(f"run: agent {agent} on site {site.site}, {what}, outbox {db}, "
          f"broker {fwd.url or 'none (windows wait in the outbox)'}", file=sys.stderr)
    try:
        live = run_live(sources, pipeline.feed, fwd, stop=stop,
                        health_interval_s=args.health_interval, health_extra=extra,
                        reorder_s=REORDER_S * max(1.0, speed))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if timer is not None:
            timer.cancel()
        line = pipeline.close().sink  # closes the forwarder: drains for --drain-timeout
        if not fwd.closed:
            line = fwd.close()
    print(f"run: {live.observations} observations, {live.health_records} health records; "
          f"outbox: {line}", file=sys.stderr)
    return 0


def forwarder_kwargs(args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """OutboxForwarder keyword arguments: the command line over the config over defaults."""
    kw = broker_kwargs(args)
    record_raw = args.record_raw if args.record_raw is not None else (
        cfg.buffer.record_raw if cfg else False)
    publish_positions = args.publish_positions if args.publish_positions is not None else (
        cfg.mqtt.publish_positions if cfg else False)
    kw.update({"record_raw": record_raw, "publish_positions": publish_positions,
               "max_bytes": DEFAULT_MAX_BYTES, "max_age_s": DEFAULT_MAX_AGE_S})
    if cfg is not None:
        m = cfg.mqtt
        pw = m.resolved_password()
        # The config's TLS files belong to a TLS broker: a plain --broker does not inherit them.
        cfg_tls = args.broker is None or args.broker.strip().lower().startswith("mqtts://")
        kw.update({
            "tls_ca": args.tls_ca or (m.ca_file if cfg_tls else None),
            "tls_cert": args.tls_cert or (m.cert_file if cfg_tls else None),
            "tls_key": args.tls_key or (m.key_file if cfg_tls else None),
            "username": args.username or cfg.mqtt_username,
            "password": kw["password"] or (pw.reveal() if pw else None),
            "mqtt_version": (args.mqtt_version if args.mqtt_version is not None
                             else m.mqtt_version),
            "keepalive_s": m.keepalive_s,
            "max_bytes": int(cfg.buffer.max_mb * 1024 * 1024),
            "max_age_s": cfg.buffer.max_age_h * 3600.0,
            "record_positions": cfg.buffer.record_positions,
        })
    return kw


def live_health(sources: Iterable[Source],
                tracker_health: Callable[[], Mapping[str, object]]) -> dict[str, Any]:
    """The `extra` of a live health record: source counters and the tracker's compact health."""
    return {"sources": {s.kind: {"observations": s.stats.observations,
                                 "skipped": dict(s.stats.skipped)} for s in sources},
            "tracker": compact_tracker_health(tracker_health())}


def compact_tracker_health(h: Mapping[str, object]) -> dict[str, Any]:
    """The tracker's health without its per-emitter detail: counters (gated, late, ...), moved
    emitters with where they seem to be now, suspect ones, and each emitter's offset in dB."""
    from edge_agent.fusion.ap_calibration import MOVED_LLR

    suspect_llr = MOVED_LLR * SUSPECT_SHARE_OF_MOVED_LLR
    out: dict[str, Any] = {k: v for k, v in h.items() if k != "emitters"}
    emitters = h.get("emitters")
    if isinstance(emitters, Mapping):
        offsets: dict[str, Any] = {}
        moved: dict[str, Any] = {}
        suspect: list[str] = []
        for key, e in emitters.items():
            if not isinstance(e, Mapping):
                continue
            offsets[str(key)] = e.get("offset_db")
            if e.get("moved"):
                moved[str(key)] = e.get("best_xy")
            elif _number(e.get("moved_llr")) >= suspect_llr:
                suspect.append(str(key))
        out.update({"moved": moved, "suspect": sorted(suspect), "offsets_db": offsets})
    return out


def _number(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def simulate_run(args: argparse.Namespace) -> Any:
    """The firmware_sim run --simulate asks for (imported only here: radios need no simulator)."""
    if not (math.isfinite(args.speed) and args.speed > 0):
        raise InputError("--speed", "must be a positive number", value=args.speed)
    radios = [o for o in ("iface", "wifi_mode", "ble", "gnss_serial", "gnss_gpsd",
                          "gnss_termux")
              if getattr(args, o) not in (None, False)]
    if radios:
        raise InputError("command line", "--simulate replaces the radios: drop "
                         + ", ".join("--" + o.replace("_", "-") for o in radios),
                         field="--simulate")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise InputError("--duration", "must be a positive number of seconds",
                         value=args.duration)
    from firmware_sim.run import simulate
    from firmware_sim.scenarios import SCENARIOS

    if args.simulate not in SCENARIOS:
        raise InputError("--simulate", f"unknown scenario; one of {', '.join(sorted(SCENARIOS))}",
                         value=args.simulate)
    return simulate(args.simulate, args.seed, args.duration)


def simulated_sources(sim_run: Any, speed: float, clock: Clock = system_clock) -> list[Source]:
    """firmware_sim's live sources for `sim_run`, paced at `speed`, with times moved to start
    now. Times stay one simulated second per second (the pacer's own rebase would divide them
    by the speed), so windows and the tracker see the simulated motion, only sooner."""
    from firmware_sim.live import live_sources

    offset_s = float(math.floor(clock() - sim_run.t0))  # whole seconds: same 1 Hz grid
    return [_Shifted(src, offset_s) for src in live_sources(sim_run, speed, rebase=False)]


class _Shifted:
    """A source whose observation times are moved by offset_s; stop() passes through."""

    def __init__(self, src: Any, offset_s: float) -> None:
        self.kind: str = src.kind
        self.stats: SourceStats = src.stats
        self._src = src
        self._offset_s = offset_s

    def __iter__(self) -> Iterator[Observation]:
        for o in self._src:
            yield dataclasses.replace(o, t=o.t + self._offset_s)

    def stop(self) -> None:
        self._src.stop()


def build_sources(args: argparse.Namespace, cfg: Any, site: Any) -> list[Source]:
    """The live sources the options (or the config) ask for; platform imports stay inside."""
    from edge_agent.sources.ble import BleSource
    from edge_agent.sources.gnss import GPSD_DEFAULT_PORT, GnssSource
    from edge_agent.sources.gnss_termux import TermuxLocationSource
    from edge_agent.sources.wifi import WifiSource

    out: list[Source] = []
    mode = args.wifi_mode or (cfg.wifi.mode if cfg and cfg.wifi.enabled else None)
    if args.iface and mode is None:
        mode = "monitor"
    iface = args.iface or (cfg.wifi.iface if cfg else None)
    if mode == "monitor":
        if not iface:
            raise InputError("--iface", "monitor mode needs --iface")
        channels = cfg.wifi.channels if cfg else None
        dwell_s = cfg.wifi.dwell_s if cfg else 0.25
        out.append(WifiSource.live_monitor(iface, site, channels, dwell_s))
    elif mode == "iw":
        if not iface:
            raise InputError("--iface", "iw mode needs --iface")
        out.append(WifiSource.live_iw(iface, site))
    elif mode == "termux":
        out.append(WifiSource.live_termux(site))
    ble = args.ble if args.ble is not None else bool(cfg and cfg.ble.enabled)
    if ble:
        adapter = args.ble_adapter or (cfg.ble.adapter if cfg else None)
        out.append(BleSource.live(site, adapter=adapter))
    if args.gnss_serial:
        baud = args.gnss_baud or (cfg.gnss.baud if cfg else None) or DEFAULT_GNSS_BAUD
        out.append(GnssSource.serial(args.gnss_serial, baud, site))
    elif args.gnss_gpsd:
        host, port = parse_host_port(args.gnss_gpsd, "--gnss-gpsd", GPSD_DEFAULT_PORT)
        out.append(GnssSource.gpsd(host, port, site))
    elif args.gnss_termux:
        out.append(TermuxLocationSource(site))
    elif cfg is not None and cfg.gnss.enabled:
        g = cfg.gnss
        if g.mode == "serial":
            out.append(GnssSource.serial(g.device, g.baud, site))
        elif g.mode == "gpsd":
            out.append(GnssSource.gpsd(g.gpsd_host, g.gpsd_port, site))
        else:
            out.append(TermuxLocationSource(site))
    return out
