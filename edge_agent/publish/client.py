"""One paho client set-up for every MQTT user (agent forwarder, dashboard ingest): credentials,
TLS and reconnect delays are configured, and bad TLS options refused, the same way everywhere.

Plain mqtt:// with TLS files is refused (one line, exit 2), as the agent config refuses it: a
URL that says "plain" while certificates are given is a mistake we do not guess the fix for.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as paho

from edge_agent.errors import BrokerError
from edge_agent.publish.broker_url import BrokerUrl, parse_broker_url

# paho doubles its reconnect delay from min to max; 30 s caps the gap after a long outage.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30

PathLike = str | Path


def resolve_url(broker_url: str, username: str | None = None,
                password: str | None = None) -> BrokerUrl:
    """Parse the URL; --username / --password-file override the URL's user and password."""
    url = parse_broker_url(broker_url)
    if username is not None:
        return BrokerUrl(url.scheme, url.host, url.port, username,
                         password if password is not None else url.password)
    if password is not None:
        return BrokerUrl(url.scheme, url.host, url.port, url.user, password)
    return url


def check_tls_options(url: BrokerUrl, tls_ca: PathLike | None, tls_cert: PathLike | None,
                      tls_key: PathLike | None) -> None:
    """BrokerError for TLS files with a plain URL, or a client certificate without its key."""
    if not url.tls and (tls_ca or tls_cert or tls_key):
        raise BrokerError(f"--tls-ca/--tls-cert/--tls-key given for plain {url}: use mqtts://")
    if (tls_cert is None) != (tls_key is None):
        raise BrokerError("a client certificate needs both --tls-cert and --tls-key")


def configure_client(client: paho.Client, url: BrokerUrl, *, tls_ca: PathLike | None = None,
                     tls_cert: PathLike | None = None, tls_key: PathLike | None = None,
                     reconnect_max_s: int = RECONNECT_MAX_S) -> None:
    """Credentials, TLS (server certificate always checked) and reconnect delays on `client`.

    A missing or unreadable CA, certificate or key is a one-line BrokerError.
    """
    check_tls_options(url, tls_ca, tls_cert, tls_key)
    for option, path in (("--tls-ca", tls_ca), ("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path and not Path(path).is_file():
            raise BrokerError(f"TLS set-up for {url}: {option} {path}: no such file")
    if url.user is not None:
        client.username_pw_set(url.user, url.password)
    if url.tls:
        try:
            client.tls_set(ca_certs=str(tls_ca) if tls_ca else None,
                           certfile=str(tls_cert) if tls_cert else None,
                           keyfile=str(tls_key) if tls_key else None,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        except (OSError, ssl.SSLError) as e:
            raise BrokerError(f"TLS set-up for {url}: {e}") from None
    client.reconnect_delay_set(RECONNECT_MIN_S, max(RECONNECT_MIN_S, reconnect_max_s))
