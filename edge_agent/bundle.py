"""A capture bundle on disk (spec/capture-bundle.md): site.json plus whichever captures exist.

Each present capture becomes its replay source; `observations()` merges them by time, so a
bundle replays as one stream exactly as the live sources would have delivered it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path

from edge_agent.errors import SiteError
from edge_agent.observations import Observation
from edge_agent.site import Site, load_site
from edge_agent.sources.base import Source, SourceStats

SITE_FILE = "site.json"
WIFI_FILES = ("wifi.pcap", "wifi.pcapng")
BLE_FILES = ("ble.pcap", "ble.pcapng")
GNSS_FILES = ("gps.nmea",)


class Bundle:
    """An opened bundle: `.site`, `.path`, replay sources and their merged observations."""

    def __init__(self, path: Path, site: Site) -> None:
        self.path = path
        self.site = site
        self._sources: list[Source] = []

    @classmethod
    def open(cls, path: str | Path) -> Bundle:
        """Read site.json (SiteError when missing or invalid); captures are opened lazily."""
        p = Path(path)
        if not p.is_dir():
            raise SiteError(p, "not a capture bundle directory")
        return cls(p, load_site(p / SITE_FILE))

    def files(self) -> dict[str, Path]:
        """The capture file used per kind ("wifi", "ble", "gnss"); absent kinds left out."""
        out: dict[str, Path] = {}
        for kind, names in (("wifi", WIFI_FILES), ("ble", BLE_FILES), ("gnss", GNSS_FILES)):
            for name in names:
                if (self.path / name).is_file():
                    out[kind] = self.path / name
                    break
        return out

    def sources(self, survey: bool = False) -> list[Source]:
        """Fresh replay sources for the present captures; survey=True keeps unsurveyed emitters."""
        from edge_agent.sources.ble import BleSource
        from edge_agent.sources.gnss import GnssSource

        site = None if survey else self.site
        out: list[Source] = []
        for kind, path in self.files().items():
            if kind == "wifi":
                from edge_agent.sources.wifi import WifiSource

                out.append(WifiSource.replay(path, site))
            elif kind == "ble":
                out.append(BleSource.replay(path, site))
            else:
                # GNSS is always converted with the site's frame: survey mode is about emitters.
                out.append(GnssSource.replay(path, self.site))
        self._sources = out
        return out

    def observations(self, survey: bool = False) -> Iterator[Observation]:
        """Every source's observations merged in time order (ties: Wi-Fi, BLE, GNSS)."""
        return heapq.merge(*self.sources(survey), key=_time)

    def stats(self) -> dict[str, SourceStats]:
        """Counters per kind of the sources built by the last `sources()`/`observations()`."""
        return {s.kind: s.stats for s in self._sources}


def _time(o: Observation) -> float:
    return o.t
