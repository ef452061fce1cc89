"""Shared test fixtures: paths to the recorded real captures and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["support.fixtures"]  # the Mosquitto fixtures, for every test module

DATA = Path(__file__).parent / "data"
REAL = DATA / "real-captures"


@pytest.fixture
def real_captures() -> Path:
    """Third-party captures copied byte for byte (see tests/data/real-captures/README.md)."""
    return REAL
