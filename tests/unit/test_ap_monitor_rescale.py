"""ApMonitor: folding the forgetting scale back into the sums changes nothing but the rounding."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.fusion import ap_calibration
from edge_agent.fusion.ap_calibration import ApMonitor

EMITTERS = np.array([[5.0, 5.0], [55.0, 5.0], [5.0, 35.0], [55.0, 35.0], [30.0, 20.0],
                     [30.0, 5.0]])
MOVED = 2
MOVED_TO = (42.0, 28.0)
N_SECONDS = 400


def _monitor() -> ApMonitor:
    k = len(EMITTERS)
    gx, gy = np.meshgrid(np.arange(0.0, 61.0, 6.0), np.arange(0.0, 41.0, 5.0))
    edge = ((gx == 0.0) | (gx == 60.0) | (gy == 0.0) | (gy == 40.0)).ravel()
    return ApMonitor([f"ap{i}" for i in range(k)], EMITTERS[:, 0].copy(), EMITTERS[:, 1].copy(),
                     np.full(k, 4.0), np.full(k, -40.0), np.full(k, 2.5), gx.ravel(), gy.ravel(),
                     1.5, edge=edge)


def _run(m: ApMonitor) -> list[tuple[float, list[int], list[float], list[object]]]:
    """A seeded drive; emitter MOVED hangs at MOVED_TO. Per second: what observe reports."""
    rng = np.random.default_rng(11)
    true_xy = EMITTERS.copy()
    true_xy[MOVED] = MOVED_TO
    sigma = np.full(len(EMITTERS), 4.0)  # per emitter; observe takes the heard ones'
    out: list[tuple[float, list[int], list[float], list[object]]] = []
    for s in range(N_SECONDS):
        x, y = rng.uniform(0.0, 60.0), rng.uniform(0.0, 40.0)
        idx = np.sort(rng.choice(len(EMITTERS), int(rng.integers(3, 7)), replace=False)
                      ).astype(np.intp)
        d = np.sqrt((true_xy[idx, 0] - x) ** 2 + (true_xy[idx, 1] - y) ** 2 + 2.5 ** 2)
        z = -40.0 - 25.0 * np.log10(d) + rng.normal(0.0, 4.0, idx.size)
        wall = np.where(rng.random(idx.size) < 0.1, 6.0, 0.0)
        newly = m.observe(float(s), idx, z, wall, x, y, sigma[idx])
        out.append((m._scale, newly, [e.llr for e in m.emitters],
                    [e.best_xy for e in m.emitters]))
    return out


def test_rescaling_every_few_seconds_gives_the_same_llrs_and_best_spots(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plain_m = _monitor()
    plain = _run(plain_m)
    monkeypatch.setattr(ap_calibration, "RESCALE_BELOW", 0.99)  # folds every 5 calls
    folded_m = _monitor()
    folded = _run(folded_m)
    # the rescale path ran: the scale kept returning to 1 instead of decaying
    assert min(r[0] for r in folded) > 0.98
    assert plain[-1][0] == pytest.approx(ap_calibration.FORGET_PER_SAMPLE ** N_SECONDS)
    for (_, newly_a, llr_a, best_a), (_, newly_b, llr_b, best_b) in zip(plain, folded,
                                                                        strict=True):
        assert newly_a == newly_b
        np.testing.assert_allclose(llr_b, llr_a, rtol=1e-9, atol=1e-9)
        assert best_b == best_a
    # and the run is not vacuous: the moved emitter was found, near where it hangs
    assert plain_m.moved_keys() == folded_m.moved_keys() == [f"ap{MOVED}"]
    a, b = plain_m.emitters[MOVED], folded_m.emitters[MOVED]
    assert a.moved_at_s == b.moved_at_s
    assert a.best_xy is not None
    assert np.hypot(a.best_xy[0] - MOVED_TO[0], a.best_xy[1] - MOVED_TO[1]) < 8.0
    np.testing.assert_allclose([e.samples for e in folded_m.emitters],
                               [e.samples for e in plain_m.emitters], rtol=1e-9)
