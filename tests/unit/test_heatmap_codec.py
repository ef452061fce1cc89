"""Wire format: round trip, a typical 60 s window under 2 KB, garbage rejected as InputError."""

from __future__ import annotations

import contextlib
import json
import math
import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.examples import scaled

from edge_agent.errors import InputError
from edge_agent.estimate import Estimate
from edge_agent.heatmap.accumulator import WindowAccumulator
from edge_agent.heatmap.codec import decode_window, encode_window, payload_json
from edge_agent.heatmap.window import Window
from edge_agent.site import site_from_dict

T0 = 1_794_999_600.0
WIRE_BUDGET_BYTES = 2048  # issue 5: a typical 60 s window <= 2 KB on the wire


def busy_minute(sigma_m: float) -> Window:
    """A truck driving a loop and stopping, 1 Hz estimates with a few metres of noise."""
    site = site_from_dict({"site": "plant-a", "origin": {"lat": 47.47, "lon": 6.81},
                           "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
                           "zones": [{"name": "hall",
                                      "polygon": [[0, 0], [100, 0], [100, 60], [0, 60]]}]})
    rng = random.Random(7)
    acc = WindowAccumulator(site, "fl-07")
    out: list[Window] = []
    for k in range(300):
        moving = (k // 40) % 3 != 0
        x, y = 50 + 35 * math.sin(k / 30), 30 + 25 * math.cos(k / 30)
        out += acc.add(Estimate(T0 + k, x + rng.gauss(0, 1), y + rng.gauss(0, 1),
                                (sigma_m**2, 0.0, sigma_m**2), 2.0 if moving else 0.0, moving))
    return out[2]


@pytest.mark.parametrize("sigma_m", [1.0, 3.0, 6.0])
def test_typical_window_fits_the_wire_budget(sigma_m: float) -> None:
    w = busy_minute(sigma_m)
    assert w.dwell_s == 60.0 and w.moving_s > 0
    assert len(encode_window(w)) <= WIRE_BUDGET_BYTES
    assert len(encode_window(w)) < len(payload_json(w))


def test_round_trip_is_exact() -> None:
    w = busy_minute(3.0)
    assert decode_window(encode_window(w)) == w
    assert decode_window(payload_json(w)) == w  # plain JSON accepted too


@pytest.mark.parametrize(("data", "match"), [
    (b"", "not valid JSON"),
    (b"\x78\x9c\x01\x02", "truncated|neither"),
    (b"\x78\x9c", "truncated"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be an object"),
    (zlib.compress(b"\xff\xfe"), "not valid JSON"),
    (zlib.compress(b"{" + b" " * (2 << 20) + b"}"), "inflates beyond"),
    (zlib.compress(json.dumps({"v": 1}).encode()), "start"),
])
def test_garbage_is_an_input_error(data: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        decode_window(data)


@settings(max_examples=scaled(300), deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_input_error(data: bytes) -> None:
    with contextlib.suppress(InputError):
        decode_window(data)


@settings(max_examples=scaled(200), deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_flipped_byte_in_a_real_payload_is_rejected_or_valid(pos: int, xor: int) -> None:
    raw = bytearray(payload_json(busy_minute(2.0)))
    raw[pos % len(raw)] ^= xor
    try:
        w = decode_window(bytes(raw))
    except InputError:
        return
    assert round(w.dwell_s * 1000) == sum(round(d * 1000) for d, _ in w.cells.values())
