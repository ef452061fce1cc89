"""Hypothesis example counts that follow the profile chosen in tests/conftest.py.

    @settings(max_examples=scaled(25), deadline=None)   # 25 with "ci", 250 with "thorough"
"""

from __future__ import annotations

from hypothesis import settings

CI_MAX_EXAMPLES = 100
"""The "ci" profile's max_examples: scaled(n) is n under it."""


def scaled(n_ci: int) -> int:
    """n_ci examples under the "ci" profile, proportionally more (or fewer) under another."""
    return max(1, n_ci * settings().max_examples // CI_MAX_EXAMPLES)
