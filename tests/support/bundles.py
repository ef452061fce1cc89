"""Small capture bundles built in the test with the product's capture writers."""

from __future__ import annotations

from pathlib import Path

from edge_agent.capture.writers import write_observations_bundle
from edge_agent.observations import GnssFix, Observation
from edge_agent.site import Site, site_from_dict

T0 = 1_794_999_600.0  # a whole minute, so windows start on it

YARD = site_from_dict({
    "site": "plant-y", "origin": {"lat": 47.47, "lon": 6.81},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 60, "ymax": 40},
    "zones": [{"name": "yard", "polygon": [[0, 0], [60, 0], [60, 40], [0, 40]],
               "indoor": False}]})


def yard_gnss_bundle(out: Path, seconds: int, step_m: float, moving_s: int,
                     site: Site = YARD) -> Path:
    """A GNSS-only bundle in the yard: one fix a second at T0 + k + 0.2 s, driving east step_m
    a second for moving_s seconds from x = 10 m, then standing."""
    obs: list[Observation] = [GnssFix(T0 + k + 0.2, 10 + min(k, moving_s) * step_m, 20.0, 1.5,
                                      0.9, 1) for k in range(seconds)]
    write_observations_bundle(out, site, obs)
    return out
