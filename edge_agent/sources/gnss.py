"""GNSS source: NMEA 0183 from a log file, a serial port (pyserial) or gpsd, as site-frame fixes.

All three feed bytes into the same framer and epoch assembler (sources/nmea.py); this module
only opens the byte stream and converts WGS84 to the site's metre frame.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from edge_agent.clock import Clock, system_clock
from edge_agent.errors import CaptureError, SourceError
from edge_agent.observations import GnssFix, GnssNoFix
from edge_agent.site import Origin, Site, geodetic_to_enu
from edge_agent.sources.base import SourceStats
from edge_agent.sources.nmea import (
    UNKNOWN_HDOP,
    Epoch,
    EpochAssembler,
    NmeaFramer,
    sigma_from_gst,
    sigma_from_hdop,
)

READ_CHUNK_BYTES = 1 << 16
GPSD_DEFAULT_PORT = 2947
_SOCKET_TIMEOUT_S = 1.0  # bounds how long stop()/duration can wait on a silent receiver

ByteStream = Callable[[], Iterator[bytes]]


class GnssSource:
    """Iterate GnssFix / GnssNoFix in time order; counters in `.stats`.

    site None (survey mode): x/y are metres east/north of the first fix.
    """

    kind = "gnss"

    def __init__(self, stream: ByteStream, site: Site | None, *, name: str = "gnss",
                 duration_s: float | None = None, gpsd_json: bool = False,
                 live: bool = False, clock: Clock = system_clock) -> None:
        self.stats = SourceStats()
        self.clock = clock  # live only: the date of GGA-only epochs before any RMC/ZDA
        self.live = live  # live receivers close each epoch as soon as it is complete
        self.gpsd_json = gpsd_json
        self.site = site
        self.name = name
        self.duration_s = duration_s
        self._stream = stream
        self._stop = threading.Event()
        self._origin: Origin | None = None

    def stop(self) -> None:
        """Stop a live source after the chunk being read (no-op for files)."""
        self._stop.set()

    def __iter__(self) -> Iterator[GnssFix | GnssNoFix]:
        framer = NmeaFramer(self.stats, skip_json=self.gpsd_json)
        epochs = EpochAssembler(self.stats, early_close=self.live,
                                date_clock=self.clock if self.live else None)
        started = time.monotonic()
        for chunk in self._stream():
            for sentence in framer.feed(chunk):
                for epoch in epochs.add(sentence, checked=True):
                    yield self._observation(epoch)
            if self._stop.is_set() or (self.duration_s is not None
                                       and time.monotonic() - started >= self.duration_s):
                break
        for sentence in framer.flush():
            for epoch in epochs.add(sentence, checked=True):
                yield self._observation(epoch)
        for epoch in epochs.flush():
            yield self._observation(epoch)

    def _observation(self, e: Epoch) -> GnssFix | GnssNoFix:
        self.stats.observations += 1
        if not e.fix:
            return GnssNoFix(e.t)
        if self.site is not None:
            x_m, y_m = self.site.to_local(e.lat, e.lon)
        else:
            if self._origin is None:
                self._origin = Origin(e.lat, e.lon, e.alt_m or 0.0)
            x_m, y_m, _ = geodetic_to_enu(e.lat, e.lon, self._origin.alt, self._origin)
        has_gst = e.sigma_lat_m is not None and e.sigma_lon_m is not None
        if e.sigma_lat_m is not None and e.sigma_lon_m is not None:
            sigma_m = sigma_from_gst(e.sigma_lat_m, e.sigma_lon_m)
        else:
            sigma_m = sigma_from_hdop(e.hdop or UNKNOWN_HDOP)
        return GnssFix(e.t, x_m, y_m, sigma_m, e.hdop, e.fix_quality, e.lat, e.lon, e.num_sats,
                       has_gst, e.speed_mps)

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def replay(cls, path: str | Path, site: Site | None) -> GnssSource:
        """An NMEA log file (CaptureError if it cannot be opened)."""
        p = Path(path)
        try:
            f = p.open("rb")
        except OSError as e:
            raise CaptureError(p, f"cannot open NMEA log: {e.strerror or e}") from None

        def stream() -> Iterator[bytes]:
            with f:
                while chunk := f.read(READ_CHUNK_BYTES):
                    yield chunk

        return cls(stream, site, name=str(p))

    @classmethod
    def serial(cls, port: str, baud: int, site: Site | None, *,
               duration_s: float | None = None, clock: Clock = system_clock) -> GnssSource:
        """A receiver on a serial port (USB CDC-ACM or UART) or a pyserial URL."""
        try:
            import serial
        except ImportError as e:
            raise SourceError(f"GNSS on a serial port needs pyserial: {e}") from None
        try:
            # serial_for_url: a device path, or a pyserial URL such as socket://phone:11123
            # (an NMEA-over-TCP app) or rfc2217://host:port
            dev = serial.serial_for_url(port, baud, timeout=_SOCKET_TIMEOUT_S)
        except (serial.SerialException, ValueError) as e:
            raise SourceError(f"{port}: cannot open serial port: {e}") from None

        def stream() -> Iterator[bytes]:
            with dev:
                while True:
                    try:
                        chunk = dev.read(max(1, dev.in_waiting or 1))
                    except serial.SerialException as e:
                        # Unplugged receiver or closed socket: end this source (its last epoch
                        # is still reported), say why, and let the other sources run on.
                        src.stats.warn(f"{port}: read failed ({e}); GNSS source ended")
                        return
                    yield bytes(chunk)  # may be b"" on timeout: lets stop()/duration apply

        src = cls(stream, site, name=port, duration_s=duration_s, live=True, clock=clock)
        return src

    @classmethod
    def gpsd(cls, host: str, port: int = GPSD_DEFAULT_PORT, site: Site | None = None, *,
             raw: bool = False, duration_s: float | None = None,
             clock: Clock = system_clock) -> GnssSource:
        """gpsd's TCP service: ?WATCH with "nmea": true (or "raw": 1 for the receiver's bytes)."""
        import socket  # here: replay and serial receivers do not need it (3 ms of start-up)

        try:
            sock = socket.create_connection((host, port), timeout=5.0)
        except OSError as e:
            raise SourceError(f"gpsd {host}:{port}: cannot connect: {e.strerror or e}") from None
        sock.settimeout(_SOCKET_TIMEOUT_S)
        watch = {"enable": True, "raw": 1} if raw else {"enable": True, "nmea": True}
        sock.sendall(b"?WATCH=" + json.dumps(watch).encode() + b";\n")

        def stream() -> Iterator[bytes]:
            with sock:
                while True:
                    try:
                        chunk = sock.recv(READ_CHUNK_BYTES)
                    except TimeoutError:
                        yield b""
                        continue
                    except OSError as e:
                        src.stats.warn(f"gpsd {host}:{port}: read failed ({e}); GNSS source ended")
                        return
                    if not chunk:
                        src.stats.warn(f"gpsd {host}:{port}: gpsd closed the connection")
                        return
                    yield chunk

        src = cls(stream, site, name=f"gpsd {host}:{port}", duration_s=duration_s,
                  gpsd_json=True, live=True, clock=clock)
        return src

