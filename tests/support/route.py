"""Route filters on hand-made aisle networks, for unit tests: one emitter, flat tables."""

from __future__ import annotations

import numpy as np

from edge_agent.fusion.doors import WallModel
from edge_agent.fusion.models import Array
from edge_agent.fusion.route_filter import RouteFilter
from edge_agent.fusion.route_graph import RouteGraph
from edge_agent.fusion.rssi_table import CellRssiModel
from edge_agent.site import Aisle

CROSS = (Aisle((0.0, 20.0), (40.0, 20.0), 3.0), Aisle((20.0, 0.0), (20.0, 40.0), 3.0))
"""Two 40 m aisles crossing at (20, 20)."""


def route_filter(aisles: tuple[Aisle, ...], open_x_m: Array | None = None,
                 open_y_m: Array | None = None) -> RouteFilter:
    """A RouteFilter on these aisles (1 m cells) and open ground (2 m cells at open_x, open_y)
    with one AP at (5, 5): callers feed it their own log-likelihoods, so the RSSI tables only
    have to exist."""
    g = RouteGraph(aisles, 1.0, open_x_m, open_y_m, 2.0)
    one = np.ones(1)
    model = CellRssiModel(g.cx, g.cy, ~g.is_open, g.cell_size_m, 3600.0,  # open ground: outdoors
                          np.array([5.0]), np.array([5.0]), np.array([2.0]), -40.0 * one,
                          2.5 * one, WallModel(5.0 * one, 5.0 * one, 2.0 * one,
                                               one.astype(bool), 2.0))
    return RouteFilter(g, model)


def peak_loglik(f: RouteFilter, x_m: float, y_m: float, sigma_m: float = 1.0) -> Array:
    """A Gaussian log-likelihood per directed state, peaked at (x, y)."""
    d = f.g.cell_distance_m(x_m, y_m)[f.g.state_cell]
    out: Array = -0.5 * (d / sigma_m) ** 2
    return out
