"""Test helpers shared across areas (a real Mosquitto on loopback and its pytest fixtures).

Import as `from support.mosquitto import start_mosquitto` (pytest puts tests/ on sys.path because
of tests/conftest.py) or `from tests.support.mosquitto import ...` when the repo root is on it.
"""
