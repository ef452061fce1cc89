"""Pipeline.feed_batch (the replay's hot loop) does exactly what feed() one by one does."""

from __future__ import annotations

import io
from dataclasses import asdict

from hypothesis import given, settings
from hypothesis import strategies as st
from test_pipeline import T0, GnssEchoTracker, RecordingSink

from edge_agent.observations import GnssFix, GnssNoFix, Observation
from edge_agent.pipeline import MAX_TIME_JUMP_S, Pipeline
from edge_agent.site import site_from_dict

SITE = site_from_dict({
    "site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
    "zones": [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]]}]})

# steps between observations: ordinary, offline gaps (> 300 s), far jumps (> 6 h), going back
steps = st.sampled_from([0.0, 0.3, 1.0, 2.5, 400.0, MAX_TIME_JUMP_S + 10.0, -5.0,
                         -MAX_TIME_JUMP_S - 50.0])


def _observations(deltas: list[float], fixes: list[bool]) -> list[Observation]:
    out: list[Observation] = []
    t = T0
    for d, fix in zip(deltas, fixes, strict=False):
        t += d
        out.append(GnssFix(t, 10.0, 20.0, 1.0, 1.0, 1) if fix else GnssNoFix(t))
    return out


def _run(obs: list[Observation], batch_sizes: list[int] | None) -> tuple[object, ...]:
    buf = io.StringIO()
    sink = RecordingSink()
    pipe = Pipeline(SITE, "fl-01", GnssEchoTracker(), positions_out=buf, window_sink=sink)
    if batch_sizes is None:
        pipe.feed_all(obs)
    else:
        i = 0
        for size in batch_sizes:
            pipe.feed_batch(obs[i:i + size])
            i += size
        pipe.feed_batch(obs[i:])
    summary = asdict(pipe.close())
    summary.pop("heatmap")
    return summary, buf.getvalue(), [w.to_heatmap_json() for w in sink.windows]


@settings(max_examples=60, deadline=None)
@given(st.lists(steps, max_size=40), st.lists(st.booleans(), min_size=40, max_size=40),
       st.lists(st.integers(0, 7), max_size=8))
def test_feed_batch_equals_feed_one_by_one(deltas: list[float], fixes: list[bool],
                                           sizes: list[int]) -> None:
    obs = _observations(deltas, fixes)
    assert _run(obs, sizes) == _run(obs, None)
