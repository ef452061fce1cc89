"""The dashboard's ASGI app (Starlette): the page from static/ and the JSON API under /api.

The API is documented in docs/dashboard.md. A bad request (unknown site, malformed or inverted
time range) is a 400 with {"error": message}, never a 500.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge_agent.dashboard.store import DashboardStore

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Shift starts in the browser's local time: the common three-shift pattern of a plant.
DEFAULT_SHIFTS = ("06:00", "14:00", "22:00")
# How often the page asks /api/version whether anything changed (a cheap query).
DEFAULT_POLL_S = 2.0
_SHIFT_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class BadRequest(Exception):
    """A request the API refuses with 400 and this message."""


def parse_time(value: str | None, name: str, default: float) -> float:
    """A query time: epoch seconds ("1795000000.5") or ISO 8601 (UTC unless an offset is given)."""
    if value is None or value == "":
        return default
    try:
        t = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"{name}: not epoch seconds or an ISO 8601 time "
                             f"(got {value!r})") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    if not math.isfinite(t):
        raise BadRequest(f"{name}: must be a finite time (got {value!r})")
    return t


def parse_shifts(values: Sequence[str]) -> list[str]:
    """Validate "HH:MM" shift starts; returns them sorted."""
    for v in values:
        if not _SHIFT_RE.match(v):
            raise ValueError(f"shift start must be HH:MM (got {v!r})")
    return sorted(set(values))


def create_app(store: DashboardStore, *, shifts: Sequence[str] = DEFAULT_SHIFTS,
               poll_s: float = DEFAULT_POLL_S) -> Starlette:
    """The app serving `store`; several apps may share one store file."""
    shift_list = parse_shifts(shifts)

    def query(request: Request) -> tuple[str, float, float]:
        site = request.query_params.get("site")
        if not site:
            raise BadRequest("site: required (see /api/sites)")
        if not store.has_site(site):
            known = ", ".join(s["site"] for s in store.sites()) or "none yet"
            raise BadRequest(f"site: unknown site {site!r} (known: {known})")
        t0 = parse_time(request.query_params.get("from"), "from", -math.inf)
        t1 = parse_time(request.query_params.get("to"), "to", math.inf)
        if t1 <= t0:
            raise BadRequest(f"to must be after from (got from={t0}, to={t1})")
        return site, t0, t1

    def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    def sites(request: Request) -> Response:
        return JSONResponse({"sites": store.sites(), "shifts": shift_list, "poll_s": poll_s})

    def version(request: Request) -> Response:
        return JSONResponse({"version": store.version()})

    def utilisation(request: Request) -> Response:
        return JSONResponse(store.utilisation(*query(request)))

    def heatmap(request: Request) -> Response:
        return JSONResponse(store.heatmap(*query(request)))

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    routes = [
        Route("/", index),
        Route("/api/sites", sites),
        Route("/api/version", version),
        Route("/api/utilisation", utilisation),
        Route("/api/heatmap", heatmap),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={BadRequest: bad_request,
                                                        HTTPException: http_error})
