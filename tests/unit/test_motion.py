"""MotionDetector: the fading cue first, then a confident fix's speed over ground, then drift."""

from __future__ import annotations

import numpy as np

from edge_agent.fusion.motion import GNSS_SPEED_START_MPS, GNSS_SPEED_STOP_MPS, MotionDetector

NO_RSSI = (np.zeros(0, dtype=np.intp), np.zeros(0))


def _detector() -> MotionDetector:
    return MotionDetector(4, 3, 3.0, 1.5, 10.0, 7.0)


def test_speed_over_ground_decides_when_there_are_no_frame_pairs() -> None:
    m = _detector()
    xy = np.array([0.0, 0.0])
    assert not m.update(*NO_RSSI, xy, 1.5, gnss_speed_mps=0.1)
    assert not m.update(*NO_RSSI, xy, 1.5, gnss_speed_mps=0.5)  # a standing receiver's noise
    # the mean of the last two fixes: (0.5 + 1.4) / 2 > start
    assert m.update(*NO_RSSI, xy, 1.5, gnss_speed_mps=1.4)
    assert m.update(*NO_RSSI, xy, 1.5, gnss_speed_mps=0.5)  # hysteresis: still above stop
    assert not m.update(*NO_RSSI, xy, 1.5, gnss_speed_mps=0.1)  # (0.5 + 0.1) / 2 < stop
    assert GNSS_SPEED_STOP_MPS < 0.6 < GNSS_SPEED_START_MPS


def test_the_fading_cue_outranks_the_speed_over_ground() -> None:
    m = _detector()
    xy = np.array([0.0, 0.0])
    # frame pairs of a standing truck (2 dB^2) while a GNSS speed says 2 m/s (multipath)
    for _ in range(3):
        assert not m.update(*NO_RSSI, xy, 1.5, 2.0 * 6, 6, gnss_speed_mps=2.0)


def test_without_pairs_or_speed_the_drift_test_still_decides() -> None:
    m = _detector()
    for k in range(6):  # fixes 3 m apart each second, no speed given
        moving = m.update(*NO_RSSI, np.array([3.0 * k, 0.0]), 1.0)
    assert moving
