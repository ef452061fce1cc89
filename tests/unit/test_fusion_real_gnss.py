"""Real receivers' NMEA logs (tests/data/real-captures/gnss) through the tracker, GNSS only.

The logs come from gpsd's regression suite: cold starts, 3-satellite fixes, HDOP 99 epochs. On
an all-outdoor site the tracker must follow the fixes and never hang or emit garbage.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge_agent.estimate import Estimate
from edge_agent.fusion.tracker import Tracker
from edge_agent.observations import GnssFix
from edge_agent.site import site_from_dict

LOGS = sorted((Path(__file__).parents[1] / "data" / "real-captures" / "gnss").glob("*.log"))
# A site drawn around a whole town: also checks that the grids stay small.
SITE = site_from_dict({
    "site": "open", "origin": {"lat": 0.0, "lon": 0.0},
    "bounds": {"xmin": -20000, "ymin": -20000, "xmax": 20000, "ymax": 20000},
    "zones": [{"name": "out", "indoor": False,
               "polygon": [[-20000, -20000], [20000, -20000], [20000, 20000], [-20000, 20000]]}],
})


@pytest.mark.parametrize("path", LOGS, ids=[p.stem for p in LOGS])
def test_tracker_follows_a_real_receiver(path: Path) -> None:
    from edge_agent.sources.gnss import GnssSource

    obs = list(GnssSource.replay(path, None))
    fixes = [o for o in obs if isinstance(o, GnssFix)]
    assert fixes, "every real log in tests/data has at least one fix (see its README)"
    tr = Tracker(SITE)
    est: list[Estimate] = []
    for o in obs:
        est.extend(tr.process(o))
    est.extend(tr.finish())
    span_s = obs[-1].t - obs[0].t
    assert len(est) <= span_s + 2
    ft = np.array([f.t for f in fixes])
    devs = []
    for e in est:
        k = int(np.searchsorted(ft, e.t + 1e-9)) - 1
        if e.valid and k >= 0:
            devs.append(math.hypot(e.x_m - fixes[k].x_m, e.y_m - fixes[k].y_m))
    assert devs
    # sl869 cold-starts 84 m away from where it settles: the track follows within 5 fixes
    assert float(np.median(devs)) < (50.0 if path.stem == "gpsd_sl869" else 5.0)
