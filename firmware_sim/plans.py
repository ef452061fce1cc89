"""Partial plans: the site.json a plant engineer might have drawn for a simulated plant.

The simulated truck always drives the plant's full road network; these give the agent less of
it, to measure how the tracker copes with a plan that leaves areas uncovered.
"""

from __future__ import annotations

from dataclasses import replace

from edge_agent.site import Site

PLANS = ("full", "hall", "one")
"""full: every aisle; hall: the aisles whose middle lies indoors (the yard is open ground); one:
the first aisle only (the site is left to 2-D tracking)."""


def plan_site(site: Site, plan: str) -> Site:
    """The site with the aisles of the named plan (PLANS)."""
    if plan == "hall":
        return replace(site, aisles=tuple(
            a for a in site.aisles
            if site.is_indoor((a.start[0] + a.end[0]) / 2, (a.start[1] + a.end[1]) / 2)))
    if plan == "one":
        return replace(site, aisles=site.aisles[:1])
    if plan != "full":
        raise ValueError(f"unknown plan {plan!r}: one of {', '.join(PLANS)}")
    return site
