"""Android GNSS through `termux-location`: JSON to site-frame fixes, stale and missing fixes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from edge_agent.observations import GnssFix, GnssNoFix
from edge_agent.site import Bounds, Origin, Site
from edge_agent.sources.base import SourceStats
from edge_agent.sources.gnss_termux import (
    ACCURACY_68_TO_SIGMA,
    COMMAND,
    TermuxLocationSource,
    parse_termux_location,
)

DATA = Path(__file__).parent.parent / "data" / "termux-location"
SITE = Site("plant-a", Origin(47.4735, 6.8112, 340.0), Bounds(0, 0, 100, 90))
NOW = 1795000000.0


class FakeTermux:
    """Answers each `termux-location` call with the next recorded output."""

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = list(outputs)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        return self.outputs.pop(0)


def test_sigma_from_the_68_percent_radius() -> None:
    assert pytest.approx(1.5096, abs=1e-4) == ACCURACY_68_TO_SIGMA


def test_fresh_fix_is_placed_in_the_site_frame_at_its_own_time() -> None:
    stats = SourceStats()
    fix = parse_termux_location((DATA / "fix.json").read_text(), NOW, stats)
    assert fix is not None
    t_s, lat, lon, _, sigma_m, speed_mps = fix
    assert t_s == pytest.approx(NOW - 0.412)
    assert speed_mps == pytest.approx(2.35)  # the provider's speed, for the motion cue
    assert sigma_m == pytest.approx(4.551 / 1.5096, rel=1e-3)
    x_m, y_m = SITE.to_local(lat, lon)
    assert 71 < x_m < 72 and 89 < y_m < 90  # 0.0009455 deg east, 0.0008012 deg north


@pytest.mark.parametrize(("text", "reason"), [
    ("", "no_fix"),
    ('{"API_ERROR": "Location service is disabled"}', "api_error"),
    ("not json", "malformed"),
    ('{"latitude": 95.0, "longitude": 6.8, "accuracy": 5}', "malformed"),
    ('{"latitude": 47.4, "longitude": 6.8}', "malformed"),  # no accuracy: no uncertainty
])
def test_unusable_answers_are_counted_not_raised(text: str, reason: str) -> None:
    stats = SourceStats()
    assert parse_termux_location(text, NOW, stats) is None
    assert stats.skipped == {reason: 1}


def test_source_emits_fixes_and_no_fix_epochs_in_time_order() -> None:
    fresh = (DATA / "fix.json").read_text()
    stale = (DATA / "stale.json").read_text()
    runner = FakeTermux([fresh, fresh, stale, ""])
    clock_s = iter([NOW, NOW + 0.1, NOW + 2.0, NOW + 3.0])
    src = TermuxLocationSource(SITE, runner=runner, clock=lambda: next(clock_s),
                               sleep=lambda s: None, polls=4)
    got = list(src)
    assert [type(o) for o in got] == [GnssFix, GnssNoFix, GnssNoFix]
    assert [o.t for o in got] == pytest.approx([NOW - 0.412, NOW + 2.0, NOW + 3.0])
    fix = got[0]
    assert isinstance(fix, GnssFix) and fix.fix_quality == 1
    assert src.stats.skipped == {"repeated_fix": 1, "stale_fix": 1, "no_fix": 1}
    assert src.stats.observations == 3
    assert runner.calls == [list(COMMAND)] * 4


def test_survey_mode_measures_from_the_first_fix() -> None:
    src = TermuxLocationSource(None, runner=FakeTermux([(DATA / "fix.json").read_text()]),
                               clock=lambda: NOW, sleep=lambda s: None, polls=1)
    (fix,) = list(src)
    assert isinstance(fix, GnssFix)
    assert (fix.x_m, fix.y_m) == (0.0, 0.0)
    assert fix.speed_mps == pytest.approx(2.35)


def test_run_and_record_build_the_termux_source_from_the_option(tmp_path: Path) -> None:
    import argparse

    from edge_agent.cli_options import add_live_source_options
    from edge_agent.commands import record, run

    p = argparse.ArgumentParser()
    add_live_source_options(p, from_config=True)
    args = p.parse_args(["--gnss-termux"])
    (built,) = run.build_sources(args, None, SITE)
    assert isinstance(built, TermuxLocationSource) and built.site is SITE
    p = argparse.ArgumentParser()
    add_live_source_options(p, from_config=False)
    (recorded,) = record.build_sources(p.parse_args(["--gnss-termux"]), SITE)
    assert isinstance(recorded, TermuxLocationSource)


def test_config_gnss_mode_termux_builds_the_termux_source(tmp_path: Path) -> None:
    import argparse

    from edge_agent.cli_options import add_live_source_options
    from edge_agent.commands import run
    from edge_agent.config import load_config

    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text('[agent]\nid = "fl-01"\nsite_file = "site.json"\n'
                        '[wifi]\nenabled = false\n[ble]\nenabled = false\n'
                        '[gnss]\nenabled = true\nmode = "termux"\n')
    cfg = load_config(cfg_path)
    p = argparse.ArgumentParser()
    add_live_source_options(p, from_config=True)
    built = run.build_sources(p.parse_args([]), cfg, SITE)
    assert [type(s) for s in built] == [TermuxLocationSource]
