"""The weighted-centroid baseline: per second, the 4 strongest surveyed APs, weighted by 1/distance.

Weighted centroid localisation (Blumenthal et al. 2007) with distances from the survey's
log-distance model; the target of the tracker is at most half of its RMSE.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from edge_agent.estimate import Estimate
from edge_agent.observations import Observation, WifiObs
from edge_agent.site import Site

STRONGEST_N = 4
"""How many APs the baseline averages, as the targets define it."""


def weighted_centroid(site: Site, observations: Iterable[Observation]) -> list[Estimate]:
    """One estimate per whole second t from the Wi-Fi frames in (t - 1, t]; holds the last one
    through seconds with no surveyed AP heard."""
    out: list[Estimate] = []
    sums: dict[str, list[float]] = {}
    epoch: int | None = None
    last: tuple[float, float] | None = None

    def close(t_s: int) -> None:
        nonlocal last
        means = sorted(((s[0] / s[1], b) for b, s in sums.items()), reverse=True)[:STRONGEST_N]
        if means:
            wx = wy = wsum = 0.0
            for rssi, bssid in means:
                ap = site.ap(bssid)
                assert ap is not None
                d_m = 10.0 ** ((ap.rssi_1m_dbm - rssi) / (10.0 * ap.path_loss_exponent))
                w = 1.0 / max(d_m, 1.0)
                wx += w * ap.x
                wy += w * ap.y
                wsum += w
            last = (wx / wsum, wy / wsum)
        if last is not None:
            out.append(Estimate(float(t_s), last[0], last[1], (0.0, 0.0, 0.0), 0.0, False))
        sums.clear()

    for obs in observations:
        if not isinstance(obs, WifiObs) or site.ap(obs.bssid) is None:
            continue
        k = math.ceil(obs.t)
        if epoch is None:
            epoch = k
        while k > epoch:
            close(epoch)
            epoch += 1
        s = sums.setdefault(obs.bssid, [0.0, 0.0])
        s[0] += obs.rssi_dbm
        s[1] += 1.0
    if epoch is not None:
        close(epoch)
    return out
