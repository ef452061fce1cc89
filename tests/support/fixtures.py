"""pytest fixtures around tests/support/mosquitto.py, registered for every test by
`pytest_plugins = ["support.fixtures"]` in tests/conftest.py (no imports needed in test modules).

`mosquitto`: plain listener, anonymous clients. `mosquitto_secure`: passwords for SECURE_USERS, an
ACL giving each agent only plants/+/agents/<its name>/# (the dashboard user reads everything),
and a TLS listener with a CA made in the test (broker.ca_path). `broker`: the module's choice,
declared with `pytestmark = pytest.mark.broker(secure=True, persistence=True)` (default: plain).
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "broker(secure=False, persistence=False): the `broker` fixture's Mosquitto "
                   "(secure: SECURE_USERS, AGENT_ACL and TLS; persistence: sessions survive "
                   "a restart)")


def _running(tmp_path: Path, *, secure: bool = False, persistence: bool = False
             ) -> Iterator[Broker]:
    if secure:
        broker = start_mosquitto(tmp_path, users=SECURE_USERS, acl=AGENT_ACL, tls=True,
                                 persistence=persistence)
    else:
        broker = start_mosquitto(tmp_path, persistence=persistence)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A plain, anonymous Mosquitto on a free loopback port, stopped after the test."""
    yield from _running(tmp_path)


@pytest.fixture
def mosquitto_secure(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto with SECURE_USERS, AGENT_ACL and a TLS listener (CA at broker.ca_path)."""
    yield from _running(tmp_path, secure=True)


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto as the closest `broker` marker asks (plain without one), stopped after the test."""
    marker = request.node.get_closest_marker("broker")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    yield from _running(tmp_path, **kwargs)
