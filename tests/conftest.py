"""Shared test fixtures: paths to the recorded real captures and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["support.fixtures"]  # the Mosquitto fixtures, for every test module

# Hypothesis budgets: "ci" (default) keeps the suite fast on 2 shared cores; "thorough"
# (HYPOTHESIS_PROFILE=thorough) runs 10x the examples, for a nightly or a suspicion.
# Tests scale their own counts with support.examples.scaled(n).
settings.register_profile("ci", max_examples=100)
settings.register_profile("thorough", max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DATA = Path(__file__).parent / "data"
REAL = DATA / "real-captures"


@pytest.fixture
def real_captures() -> Path:
    """Third-party captures copied byte for byte (see tests/data/real-captures/README.md)."""
    return REAL
