"""Broker URL parsing: schemes, default ports, decoded credentials, and no password in errors."""

from __future__ import annotations

import pytest

from edge_agent.errors import BrokerError
from edge_agent.publish.broker_url import parse_broker_url


def test_plain_url_with_credentials_and_port() -> None:
    u = parse_broker_url("mqtt://fl-01:s3cret@broker.plant:1884")
    assert (u.scheme, u.host, u.port, u.user, u.password, u.tls) == (
        "mqtt", "broker.plant", 1884, "fl-01", "s3cret", False)


def test_default_ports_follow_the_scheme() -> None:
    assert parse_broker_url("mqtt://h").port == 1883
    assert parse_broker_url("mqtts://h").port == 8883
    assert parse_broker_url("mqtts://h").tls


def test_percent_encoded_password_is_decoded() -> None:
    assert parse_broker_url("mqtt://u:p%40ss%3Aw@h").password == "p@ss:w"


def test_ipv6_host() -> None:
    u = parse_broker_url("mqtt://[::1]:1883")
    assert u.host == "::1" and u.redacted() == "mqtt://[::1]:1883"


def test_password_never_in_str_repr_or_redacted() -> None:
    u = parse_broker_url("mqtts://fl-01:topsecret@h:8883")
    for text in (str(u), repr(u), u.redacted()):
        assert "topsecret" not in text
    assert u.redacted() == "mqtts://fl-01:***@h:8883"


@pytest.mark.parametrize("url", [
    "http://u:topsecret@h:1883", "mqtt://u:topsecret@:1883", "mqtt://u:topsecret@h:99999",
    "mqtt://u:topsecret@h:1883/path", "u:topsecret@h",
])
def test_bad_url_is_one_line_without_the_password(url: str) -> None:
    with pytest.raises(BrokerError) as e:
        parse_broker_url(url)
    assert "topsecret" not in str(e.value)
    assert "\n" not in str(e.value)
