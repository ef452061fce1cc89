"""The project's exceptions, one small tree.

    EdgeAgentError                  anything the CLI turns into one line and exit code 2
    ├── InputError                  bad input: a file, a field and a value
    │   ├── CaptureError            a capture file that cannot be read at all
    │   ├── SiteError               site.json that does not validate
    │   └── ConfigError             the agent's TOML config that does not validate
    ├── SourceError                 a live source that cannot start (no interface, no permission)
    └── BrokerError                 the MQTT broker refused us (bad credentials, TLS failure)

Malformed *records* inside a readable file are not errors: sources skip and count them.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base of every error the CLI reports as one line with exit code 2."""

    exit_code = 2


class InputError(EdgeAgentError):
    """Bad input, named by file, field and value."""

    def __init__(self, path: object, message: str, *, field: str | None = None,
                 value: object = None) -> None:
        self.path = str(path)
        self.field = field
        self.value = value
        where = f"{self.path}: "
        if field is not None:
            where += f"{field}: "
        text = message if value is None else f"{message} (got {value!r})"
        super().__init__(where + text)


class CaptureError(InputError):
    """A capture file that cannot be read at all (no pcap header, unknown format)."""


class SiteError(InputError):
    """A site.json that does not validate."""


class ConfigError(InputError):
    """An agent config (TOML) that does not validate."""


class SourceError(EdgeAgentError):
    """A live source that cannot start: missing interface, permission, or platform package."""


class BrokerError(EdgeAgentError):
    """The MQTT broker cannot be used: refused credentials, TLS failure, bad URL."""
