"""pytest fixtures around tests/support/mosquitto.py; import the ones a test module uses:

    from support.fixtures import mosquitto, mosquitto_secure  # noqa: F401

`mosquitto`: plain listener, anonymous clients. `mosquitto_secure`: passwords for SECURE_USERS, an
ACL giving each agent only plants/+/agents/<its name>/# (the dashboard user reads everything),
and a TLS listener with a CA made in the test (broker.ca_path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .mosquitto import Broker, start_mosquitto

SECURE_USERS = {"fl-01": "pw-fl-01-secret", "fl-02": "pw-fl-02-secret",
                "dashboard": "pw-dashboard-secret"}
# %u = the connecting username: each agent may publish and read only under its own topic root.
AGENT_ACL = """\
pattern readwrite plants/+/agents/%u/#

user dashboard
topic read plants/#
"""


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A plain, anonymous Mosquitto on a free loopback port, stopped after the test."""
    broker = start_mosquitto(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto_secure(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto with SECURE_USERS, AGENT_ACL and a TLS listener (CA at broker.ca_path)."""
    broker = start_mosquitto(tmp_path, users=SECURE_USERS, acl=AGENT_ACL, tls=True)
    try:
        yield broker
    finally:
        broker.stop()
