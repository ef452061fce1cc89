"""Golden replay cases (tests/cases/<name>/case.json): bundle from firmware_sim in, contract out.

The bundle is generated in the test (too big to commit). Pinned: replaying twice gives identical
files, heatmap.json has exactly the spec's shape and equals the merge of the windows sent, and
the dwell map stays within a bound of the truth.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.heatmap.window import Window, merge_windows
from edge_agent.pipeline import replay_bundle

CASES = sorted(p.parent for p in (Path(__file__).parents[1] / "cases").glob("*/case.json"))


class ListSink:
    def __init__(self) -> None:
        self.windows: list[Window] = []

    def put(self, window: Window) -> None:
        self.windows.append(window)

    def close(self) -> str:
        return f"{len(self.windows)} windows kept"


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Any]:
    import firmware_sim

    spec: dict[str, Any] = json.loads((request.param / "case.json").read_text())
    run = firmware_sim.simulate(spec["scenario"], spec["seed"], spec["duration_s"])
    bundle = run.write_bundle(tmp_path_factory.mktemp("bundle"))
    outs, sinks = [], []
    for _ in range(2):
        out = tmp_path_factory.mktemp("out")
        sink = ListSink()
        replay_bundle(bundle, out, spec["agent"], window_sink=sink, cell_m=spec["cell_m"],
                      window_s=spec["window_s"])
        outs.append(out)
        sinks.append(sink)
    return {"spec": spec, "run": run, "outs": outs, "windows": sinks[0].windows,
            "windows2": sinks[1].windows}


def test_replaying_twice_gives_identical_files(case: dict[str, Any]) -> None:
    a, b = case["outs"]
    for name in ("positions.csv", "heatmap.json", "summary.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert [w.id for w in case["windows"]] == [w.id for w in case["windows2"]]


def test_heatmap_json_is_the_spec_shape_and_the_merge_of_the_windows(case: dict[str, Any]
                                                                      ) -> None:
    exp = case["spec"]["expect"]
    hm = json.loads((case["outs"][0] / "heatmap.json").read_text())
    assert list(hm) == ["site", "agent", "start", "end", "grid", "cells", "totals"]
    assert (hm["site"], hm["agent"], hm["grid"]) == (exp["site"], case["spec"]["agent"],
                                                     exp["grid"])
    ws = case["windows"]
    assert len(ws) == exp["windows"]
    merged = merge_windows(ws)
    whole = merged.to_heatmap_json()
    # start/end are the run's own span (the bundle's first and last record), inside the
    # outer edges of its first and last aligned windows; all else is the merge of the windows
    assert merged.start <= hm["start"] < hm["end"] <= merged.end
    assert hm["end"] - hm["start"] > merged.end - merged.start - 2 * 60.0
    assert {k: v for k, v in hm.items() if k not in ("start", "end")} == \
        {k: v for k, v in whole.items() if k not in ("start", "end")}
    for key in ("dwell_s", "moving_s", "idle_s", "distance_m"):
        assert hm["totals"][key] == pytest.approx(sum(getattr(w, key) for w in ws), abs=1e-6)
    assert sum(round(c[2] * 1000) for c in hm["cells"]) == round(hm["totals"]["dwell_s"] * 1000)
    for ix, iy, dwell, moving in hm["cells"]:
        assert 0 <= ix < hm["grid"]["nx"] and 0 <= iy < hm["grid"]["ny"] and 0 <= moving <= dwell
    covered = merged.dwell_s + merged.no_position_s
    assert covered == pytest.approx(case["spec"]["duration_s"], abs=2.0)


def test_positions_follow_the_contract_and_the_truth(case: dict[str, Any]) -> None:
    rows = list(csv.DictReader((case["outs"][0] / "positions.csv").open()))
    assert len(rows) >= case["spec"]["expect"]["min_positions"]
    t = [float(r["t"]) for r in rows]
    assert all(b > a for a, b in itertools.pairwise(t))
    assert max(np.diff(t)) <= 1.0 + 1e-9 or len(rows) < case["spec"]["duration_s"]
    summary = json.loads((case["outs"][0] / "summary.json").read_text())
    assert summary["positions"] == len(rows)
    assert summary["windows"] == len(case["windows"])
    assert set(summary["sources"]) == {"wifi", "ble", "gnss"}


def test_dwell_map_is_within_the_case_bound_of_the_truth(case: dict[str, Any]) -> None:
    from scipy.ndimage import gaussian_filter

    run, merged = case["run"], merge_windows(case["windows"])
    b = run.site.bounds
    nx, ny = math.ceil(b.xmax - b.xmin), math.ceil(b.ymax - b.ymin)
    truth = np.zeros((nx, ny))
    np.add.at(truth, (np.clip(run.truth.x.astype(int), 0, nx - 1),
                      np.clip(run.truth.y.astype(int), 0, ny - 1)), 0.1)
    agent = np.zeros((nx, ny))
    c = int(merged.cell_m)
    for (ix, iy), (d, _) in merged.cells.items():
        agent[ix * c:(ix + 1) * c, iy * c:(iy + 1) * c] += d / (c * c)
    p = gaussian_filter(truth, 3.0, mode="constant")
    q = gaussian_filter(agent, 3.0, mode="constant")
    tv = 0.5 * np.abs(p / p.sum() - q / q.sum()).sum()
    assert tv <= case["spec"]["expect"]["max_tv_vs_truth"]
