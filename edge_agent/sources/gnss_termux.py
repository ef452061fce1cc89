"""GNSS on Android phones: the location service through Termux:API (`termux-location`).

Phones give no NMEA to unprivileged apps, so this source polls `termux-location -p gps -r last`
(the GPS provider's latest fix, without waiting) and turns its JSON into the same GnssFix records
as the NMEA sources. Android's `accuracy` is the radius of 68 % confidence; for a circular normal
error that radius is 1.51 sigma per axis. A fix older than MAX_FIX_AGE_S, or no fix, is reported
as GnssNoFix at the poll time.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator

from edge_agent.clock import Clock, system_clock
from edge_agent.observations import GnssFix, GnssNoFix
from edge_agent.site import Origin, Site, geodetic_to_enu
from edge_agent.sources.base import SourceStats
from edge_agent.sources.nmea import RECEIVER_UERE_M
from edge_agent.sources.wifi_live import Runner, run_command

COMMAND = ("termux-location", "-p", "gps", "-r", "last")
# Radius of 68 % confidence of a circular 2-D normal, in units of its per-axis sigma:
# sqrt(-2 ln(1 - 0.68)).
ACCURACY_68_TO_SIGMA = math.sqrt(-2.0 * math.log(1.0 - 0.68))
# Android keeps handing out the last GPS fix after the receiver lost the sky; older than this it is
# no longer where the truck is (a forklift covers 10 m in 3-5 s).
MAX_FIX_AGE_S = 3.0
MAX_SPEED_MPS = 50.0  # a speed above this (180 km/h) is not a forklift's: taken as absent
DEFAULT_INTERVAL_S = 1.0  # the GPS provider's own rate
# The same fix polled twice comes back with its age measured at each poll; the two computed
# times differ by the command's own timing, well under this.
REPEAT_TOLERANCE_S = 0.5


def parse_termux_location(text: str, now_s: float, stats: SourceStats
                          ) -> tuple[float, float, float, float, float, float | None] | None:
    """termux-location JSON -> (t_s, lat, lon, alt_m, sigma_m, speed_mps or None), or None
    (counted) without a usable fix."""
    text = text.strip()
    if not text:
        stats.skip("no_fix")
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        stats.skip("malformed")
        return None
    if not isinstance(doc, dict) or "API_ERROR" in doc:
        stats.skip("api_error")
        return None
    try:
        lat, lon = float(doc["latitude"]), float(doc["longitude"])
        accuracy_m = float(doc.get("accuracy", math.nan))
        age_s = float(doc.get("elapsedMs", 0.0)) / 1000.0
        alt_m = float(doc.get("altitude", 0.0))
    except (KeyError, TypeError, ValueError):
        stats.skip("malformed")
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not accuracy_m > 0.0:
        stats.skip("malformed")
        return None
    if not 0.0 <= age_s <= MAX_FIX_AGE_S:
        stats.skip("stale_fix")
        return None
    try:  # Android's Location.getSpeed(), m/s; absent when the provider has none
        speed: float | None = float(doc["speed"]) if "speed" in doc else None
    except (TypeError, ValueError):
        speed = None
    if speed is not None and not 0.0 <= speed <= MAX_SPEED_MPS:
        speed = None
    return now_s - age_s, lat, lon, alt_m, accuracy_m / ACCURACY_68_TO_SIGMA, speed


class TermuxLocationSource:
    """Iterate GnssFix / GnssNoFix from the phone's GPS provider; counters in `.stats`.

    site None (survey mode): x/y are metres east/north of the first fix.
    """

    kind = "gnss"

    def __init__(self, site: Site | None, interval_s: float = DEFAULT_INTERVAL_S, *,
                 runner: Runner | None = None, clock: Clock = system_clock,
                 sleep: Callable[[float], None] | None = None, polls: int | None = None) -> None:
        self.stats = SourceStats()
        self.site = site
        self.interval_s = interval_s
        self._run = runner or run_command
        self._clock = clock
        self._sleep = sleep or time.sleep
        self._polls = polls
        self._stop = threading.Event()
        self._origin: Origin | None = None

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[GnssFix | GnssNoFix]:
        last_t = -math.inf
        last_latlon: tuple[float, float] | None = None
        n = 0
        while (self._polls is None or n < self._polls) and not self._stop.is_set():
            if n:
                self._sleep(self.interval_s)
            n += 1
            now_s = self._clock()
            fix = parse_termux_location(self._run(COMMAND), now_s, self.stats)
            if fix is None:
                if now_s > last_t:
                    last_t = now_s
                    self.stats.observations += 1
                    yield GnssNoFix(now_s)
                continue
            t_s, lat, lon, alt_m, sigma_m, speed_mps = fix
            if t_s <= last_t or ((lat, lon) == last_latlon
                                 and t_s - last_t < REPEAT_TOLERANCE_S):
                self.stats.skip("repeated_fix")  # the same fix polled again
                continue
            last_t, last_latlon = t_s, (lat, lon)
            self.stats.observations += 1
            yield self._fix(t_s, lat, lon, alt_m, sigma_m, speed_mps)

    def _fix(self, t_s: float, lat: float, lon: float, alt_m: float, sigma_m: float,
             speed_mps: float | None = None) -> GnssFix:
        if self.site is not None:
            x_m, y_m = self.site.to_local(lat, lon)
        else:
            if self._origin is None:
                self._origin = Origin(lat, lon, alt_m)
            x_m, y_m, _ = geodetic_to_enu(lat, lon, self._origin.alt, self._origin)
        hdop = sigma_m * math.sqrt(2.0) / RECEIVER_UERE_M  # the HDOP that NMEA would imply
        return GnssFix(t_s, x_m, y_m, sigma_m, hdop, 1, lat, lon, speed_mps=speed_mps)
