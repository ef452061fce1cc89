"""Broker URLs: mqtt://user:pass@host:port (plain) and mqtts://... (TLS); passwords never shown.

Default ports are MQTT's registered ones (1883 plain, 8883 TLS). User and password are URL-decoded,
so a password holding '@' or ':' is written %40 / %3A.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from edge_agent.errors import BrokerError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerUrl:
    """A parsed broker URL; str() and repr() show the user but never the password."""

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def redacted(self) -> str:
        """The URL as it may be logged: mqtt://user:***@host:port."""
        cred = ""
        if self.user is not None:
            cred = quote(self.user, safe="") + (":***" if self.password is not None else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{cred}{host}:{self.port}"

    def __str__(self) -> str:
        return self.redacted()


def parse_broker_url(url: str) -> BrokerUrl:
    """Parse mqtt:// or mqtts:// URLs; anything else is a one-line BrokerError (password hidden)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise BrokerError(f"bad broker URL {_hide(url)}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BrokerError(f"bad broker URL {_hide(url)}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerError(f"bad broker URL {_hide(url)}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerError(f"bad broker URL {_hide(url)}: only scheme://[user[:password]@]host[:port]")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return BrokerUrl(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], user or None,
                     password)


def _hide(url: str) -> str:
    """The URL with any password between ':' and '@' of the authority replaced by ***."""
    head, sep, rest = url.partition("://")
    if not sep:
        return "'" + url.split("@")[-1] + "'"
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        cred, _, hostport = authority.rpartition("@")
        if ":" in cred:
            cred = cred.split(":", 1)[0] + ":***"
        authority = cred + "@" + hostport
    return f"'{head}://{authority}{slash}{tail}'"
