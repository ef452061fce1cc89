"""WindowAccumulator: window boundaries, holds and gaps, late data, zones, exact dwell sums."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.examples import scaled

from edge_agent.estimate import Estimate
from edge_agent.heatmap import accumulator
from edge_agent.heatmap.accumulator import MAX_CHORD_SPEED_MPS, WindowAccumulator
from edge_agent.heatmap.codec import encode_window
from edge_agent.heatmap.window import Window, merge_windows
from edge_agent.site import Site, site_from_dict

T0 = 1_794_999_600.0  # a multiple of 60 and 3600


@pytest.fixture
def site() -> Site:
    return site_from_dict({
        "site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
        "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
        "zones": [{"name": "hall", "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]]},
                  {"name": "dock", "polygon": [[0, 0], [20, 0], [20, 10], [0, 10]]},
                  {"name": "yard", "polygon": [[0, 60], [100, 60], [100, 90], [0, 90]],
                   "indoor": False}]})


def est(t: float, x: float = 5.0, y: float = 5.0, *, moving: bool = False, sigma: float = 0.0,
        valid: bool = True, speed: float = 0.0) -> Estimate:
    return Estimate(t, x, y, (sigma**2, 0.0, sigma**2), speed, moving, valid)


def run(acc: WindowAccumulator, estimates: list[Estimate]) -> list[Window]:
    out: list[Window] = []
    for e in estimates:
        out += acc.add(e)
    return out + acc.flush()


def test_windows_align_on_observation_time_and_split_at_the_boundary(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", spread=False, midpoint=False)
    ws = run(acc, [est(T0 + 30 + k) for k in range(60)])  # 30 s in one window, 30 in the next
    assert [w.start for w in ws] == [T0, T0 + 60]
    assert [w.end for w in ws] == [T0 + 60, T0 + 120]
    assert [w.dwell_s for w in ws] == [30.0, 30.0]
    assert ws[0].id == "plant-a/fl-01/1794999600/60@30000"  # data began mid-window
    assert ws[1].id == "plant-a/fl-01/1794999660/60"
    assert ws[0].cells == {(2, 2): (30.0, 0.0)}


def test_interval_straddling_a_boundary_is_split(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", spread=False, midpoint=False)
    ws = run(acc, [est(T0 + 59.5, moving=True), est(T0 + 60.5, moving=True)])
    assert [(w.start, w.moving_s) for w in ws] == [(T0, 0.5), (T0 + 60, 1.5)]  # last: one step


def test_window_closes_only_after_end_plus_grace(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", grace_s=5.0)
    closed: list[Window] = []
    for k in range(65):
        closed += acc.add(est(T0 + k))
    assert closed == []  # newest is T0+64 < end + grace
    closed += acc.add(est(T0 + 65))
    assert [w.start for w in closed] == [T0]
    assert closed[0].dwell_s == 60.0


def test_late_estimate_within_grace_is_used_in_order(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", spread=False, midpoint=False)
    seq = [est(T0), est(T0 + 1), est(T0 + 3, x=50), est(T0 + 2, x=30), est(T0 + 4)]
    ws = run(acc, seq)
    assert acc.stats.late == 0
    assert ws[0].cells[(15, 2)] == (1.0, 0.0)  # x=30 held from T0+2 to T0+3
    assert ws[0].dwell_s == 5.0


def test_estimate_after_its_time_was_committed_is_dropped_and_counted(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", grace_s=2.0)
    ws: list[Window] = []
    for k in range(70):
        ws += acc.add(est(T0 + k))
    ws += acc.add(est(T0 + 30.5, x=80))  # its window is closed: dropped
    ws += acc.add(est(T0 + 69))  # a repeat
    ws += acc.flush()
    assert acc.stats.late == 1 and acc.stats.duplicates == 1
    assert ws[0].dwell_s == 60.0
    assert all(ix < 10 for w in ws for ix, _ in w.cells)


def test_gaps_become_no_position_and_long_silence_is_offline(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01")
    ws = run(acc, [est(T0), est(T0 + 10), est(T0 + 11, valid=False), est(T0 + 12),
                   est(T0 + 1000)])
    merged = merge_windows(ws)
    # T0: 2 s held + 8 s none; T0+10: 1 s; T0+11 invalid: 1 s none; T0+12: 2 s held, rest offline;
    # T0+1000: last, one step of 1 s
    assert merged.dwell_s == 2 + 1 + 2 + 1
    assert merged.no_position_s == 8 + 1
    assert [w.start for w in ws] == [T0, T0 + 960]


def test_non_finite_values_are_no_position_not_a_crash(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01")
    seq = [est(T0), est(T0 + 1, x=math.nan), est(T0 + 2, sigma=math.inf), est(T0 + 3),
           est(math.inf), est(math.nan)]
    w = merge_windows(run(acc, seq))
    assert acc.stats.late == 2
    assert (w.dwell_s, w.no_position_s) == (3.0, 1.0)


def test_moving_idle_and_distance_only_while_moving(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", midpoint=False, distance_chord_s=1.0)
    seq = [est(T0 + k, x=5 + 2 * k, moving=True, speed=2.0) for k in range(10)]
    seq += [est(T0 + 10 + k, x=25 + 0.3 * (-1) ** k) for k in range(10)]  # idle jitter
    w = merge_windows(run(acc, seq))
    assert (w.moving_s, w.idle_s, w.dwell_s) == (10.0, 10.0, 20.0)
    assert w.distance_m == pytest.approx(20.3, abs=1e-9)  # 9 steps of 2 m + 2.3 m, no jitter
    spd = merge_windows(run(WindowAccumulator(site, "fl-01", distance_from_speed=True), seq))
    assert spd.distance_m == pytest.approx(20.0)  # 10 moving seconds at 2 m/s


def test_distance_along_a_chord_ignores_jitter(site: Site) -> None:
    # 1 m/s along x for 120 s with +-0.8 m of alternating jitter across and along the track
    seq = [est(T0 + k, x=10 + k * 0.5 + 0.8 * (-1) ** k, y=30 + 0.8 * (-1) ** (k // 2),
               moving=True, speed=0.5) for k in range(121)]
    step = merge_windows(run(WindowAccumulator(site, "fl-01", distance_chord_s=1.0), seq))
    chord = merge_windows(run(WindowAccumulator(site, "fl-01"), seq))
    assert step.distance_m > 1.5 * 60.0  # jitter counted as travel
    assert chord.distance_m == pytest.approx(60.5, rel=0.10)  # 121 s at 0.5 m/s (64.6 now)


def test_distance_counts_no_chord_faster_than_a_forklift(site: Site,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 m/s along x, but for 5 s the estimate sits on an aisle 30 m away (a wrong-aisle jump):
    # its chords would be 6 m/s and more; each second counts at most MAX_CHORD_SPEED_MPS
    seq = [est(T0 + k, x=10 + 2.0 * k, y=30.0 + (30.0 if 20 <= k < 25 else 0.0), moving=True,
               speed=2.0) for k in range(41)]
    w = merge_windows(run(WindowAccumulator(site, "fl-01", midpoint=False), seq))
    assert w.distance_m <= 40 * 2.0 + 10 * (MAX_CHORD_SPEED_MPS - 2.0) + 1e-9
    monkeypatch.setattr(accumulator, "MAX_CHORD_SPEED_MPS", 99.0)
    uncapped = merge_windows(run(WindowAccumulator(site, "fl-01", midpoint=False), seq))
    assert uncapped.distance_m > w.distance_m + 20.0  # the jump counted as travel
    monkeypatch.undo()
    smooth = [est(T0 + k, x=10 + 2.0 * k, y=30.0, moving=True, speed=2.0) for k in range(41)]
    w0 = merge_windows(run(WindowAccumulator(site, "fl-01", midpoint=False), smooth))
    assert w0.distance_m == pytest.approx(80.0)  # below the cap: untouched


def test_zones_count_every_zone_holding_the_point(site: Site) -> None:
    acc = WindowAccumulator(site, "fl-01", midpoint=False)
    seq = [est(T0 + k, x=5, y=5, moving=k < 4) for k in range(10)]
    seq += [est(T0 + 10 + k, x=50, y=70) for k in range(5)]
    w = merge_windows(run(acc, seq))
    assert w.zones == {"hall": (10.0, 4.0, 6.0), "dock": (10.0, 4.0, 6.0), "yard": (5.0, 0.0, 5.0)}


def test_spread_keeps_dwell_exact_and_follows_uncertainty(site: Site) -> None:
    seq = [est(T0 + k, x=41.0, y=31.0, sigma=6.0) for k in range(60)]  # >= 6 m: spread
    w = merge_windows(run(WindowAccumulator(site, "fl-01"), seq))
    assert len(w.cells) > 9
    assert sum(round(d * 1000) for d, _ in w.cells.values()) == 60_000
    assert max(w.cells.values()) == w.cells[(20, 15)]
    for sigma in (0.1, 5.9):  # a confident estimate stays in its cell
        sharp = merge_windows(run(WindowAccumulator(site, "fl-01"),
                                  [est(T0 + k, x=41.0, y=31.0, sigma=sigma) for k in range(60)]))
        assert sharp.cells == {(20, 15): (60.0, 0.0)}


def test_positions_off_the_grid_are_clamped_to_its_edge(site: Site) -> None:
    w = merge_windows(run(WindowAccumulator(site, "fl-01"),
                          [est(T0 + k, x=-5.0, y=200.0) for k in range(3)]))
    assert w.cells == {(0, 44): (3.0, 0.0)}


def test_hour_of_minute_windows_equals_one_hour_window(site: Site) -> None:
    seq = [est(T0 + k, x=50 + 40 * math.sin(k / 40), y=40 + 30 * math.cos(k / 55),
               moving=(k // 50) % 2 == 0, sigma=2.5, speed=1.0) for k in range(3600)]
    minutes = run(WindowAccumulator(site, "fl-01"), seq)
    hour = run(WindowAccumulator(site, "fl-01", window_s=3600), seq)
    assert len(minutes) == 60 and len(hour) == 1
    m = merge_windows(minutes)
    h = hour[0]
    assert m.totals() == pytest.approx(h.totals(), abs=0.060)  # distance: 1 mm per window
    assert (m.dwell_s, m.moving_s, m.idle_s) == (h.dwell_s, h.moving_s, h.idle_s)
    assert m.zones == h.zones
    # cells are apportioned in 0.1 s steps per window: the maps differ by rounding only
    keys = m.cells.keys() | h.cells.keys()
    l1 = sum(abs(m.cells.get(k, (0.0, 0.0))[0] - h.cells.get(k, (0.0, 0.0))[0]) for k in keys)
    assert l1 / (2 * h.dwell_s) < 0.03  # measured 0.018


def test_same_estimates_give_identical_windows_and_bytes(site: Site) -> None:
    seq = [est(T0 + k, x=10 + k % 30, y=20, moving=k % 7 < 4, sigma=2.0) for k in range(300)]
    a = run(WindowAccumulator(site, "fl-01"), seq)
    b = run(WindowAccumulator(site, "fl-01"), seq)
    assert [w.id for w in a] == [w.id for w in b]
    assert [encode_window(w) for w in a] == [encode_window(w) for w in b]


@st.composite
def estimate_streams(draw: st.DrawFn) -> list[Estimate]:
    """Mostly 1 Hz estimates with gaps, invalid stretches, jitter and a few swapped neighbours."""
    t = T0 + draw(st.integers(0, 119)) + draw(st.sampled_from([0.0, 0.25, 0.5]))
    out: list[Estimate] = []
    for _ in range(draw(st.integers(1, 150))):
        t += draw(st.sampled_from([1.0, 1.0, 1.0, 0.5, 1.5, 3.0, 400.0]))
        out.append(est(t, x=draw(st.floats(-10, 110)), y=draw(st.floats(-10, 100)),
                       moving=draw(st.booleans()), sigma=draw(st.sampled_from([0.5, 4.0, 8.0])),
                       valid=draw(st.booleans()) or draw(st.booleans())))
    for i in draw(st.lists(st.integers(0, len(out) - 2), max_size=3)) if len(out) > 1 else []:
        if abs(out[i + 1].t - out[i].t) <= 3.0:  # within the grace period
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


@settings(max_examples=scaled(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(estimate_streams())
def test_windows_are_consistent_for_any_stream(seq: list[Estimate]) -> None:
    site = site_from_dict({"site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
                           "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
                           "zones": [{"name": "hall",
                                      "polygon": [[0, 0], [100, 0], [100, 90], [0, 90]]}]})
    acc = WindowAccumulator(site, "fl-01")
    ws = run(acc, seq)
    assert acc.stats.late == 0  # swaps of neighbours stay within the 5 s grace
    assert [w.start for w in ws] == sorted({w.start for w in ws})
    assert len({w.id for w in ws}) == len(ws)
    for w in ws:
        assert w.end - w.start == 60.0 and w.start % 60 == 0
        ms = round(w.dwell_s * 1000)
        assert ms == round(w.moving_s * 1000) + round(w.idle_s * 1000)
        assert ms == sum(round(d * 1000) for d, _ in w.cells.values())
        assert all(0 <= m <= d for d, m in w.cells.values())
        assert 0 <= ms + round(w.no_position_s * 1000) <= 60_000
        assert Window.from_payload(w.to_payload()) == w
    if ws:
        merged = merge_windows(ws)
        valid_s = sum(1 for e in seq if e.valid)
        assert merged.dwell_s <= 2.0 * valid_s  # each estimate holds at most MAX_HOLD_S
