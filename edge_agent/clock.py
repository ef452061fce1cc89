"""The one wall-clock seam: only live sources read it; everything else uses observation time."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    """UTC seconds since the epoch from the system clock."""
    return time.time()
