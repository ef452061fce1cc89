"""Named random streams: every random quantity comes from a stream keyed by (seed, name, index).

Keying by name rather than drawing order means that adding a feature does not reshuffle every
other stream, and that twin scenarios (stale_survey and its control) share all their randomness.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str, *index: int) -> np.random.Generator:
    """An independent generator for one named purpose (e.g. "shadow", ap index 3)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(name.encode()), *index])
