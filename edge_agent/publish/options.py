"""The broker command-line options shared by `flush`, `run`, `replay` and `dashboard`, and the
one check for names that become MQTT topic levels (agent ids, site names, share groups)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_agent.errors import InputError
from edge_agent.names import AGENT_ID_RE

DEFAULT_MQTT_VERSION = 5
# Agent ids, site names and share groups are topic levels (and agent ids MQTT user names): the
# agent config's rule, so a name the config accepts is accepted on the command line and back.
TOPIC_LEVEL_RE = AGENT_ID_RE


def check_topic_level(value: str, option: str, where: object = "command line") -> str:
    """`value` if it may be one MQTT topic level; else a one-line InputError naming `option`."""
    if not TOPIC_LEVEL_RE.match(value):
        raise InputError(where, "must be 1-64 of A-Z a-z 0-9 . _ - starting with a "
                         "letter or digit (it becomes an MQTT topic level)", field=option,
                         value=value)
    return value


def add_broker_options(p: argparse.ArgumentParser, *, required: bool = False,
                       inflight: bool = True) -> None:
    """--broker, --tls-ca/--tls-cert/--tls-key, --username/--password-file, --mqtt-version
    (and --max-inflight for publishers)."""
    p.add_argument("--broker", metavar="URL", required=required,
                   help="mqtt://user@host:port or mqtts://... (give the password with "
                        "--password-file; a password in the URL is accepted, never logged)")
    p.add_argument("--tls-ca", type=Path, metavar="PEM",
                   help="CA certificate that signed the broker's (mqtts:// only; with "
                        "mqtt:// it is an error)")
    p.add_argument("--tls-cert", type=Path, metavar="PEM",
                   help="client certificate, when the broker asks for one (mqtts:// only)")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="the client certificate's key")
    p.add_argument("--username", help="MQTT user name (overrides the URL's)")
    p.add_argument("--password-file", type=Path, metavar="FILE",
                   help="file whose first line is the MQTT password (overrides the URL's)")
    p.add_argument("--mqtt-version", type=int, choices=(5, 3, 311), default=None,
                   help="5 (default, or the config's mqtt.mqtt_version), or 3 (= 311) for "
                        "MQTT 3.1.1; under 3.1.1 an ACL refusal is invisible (see docs/mqtt.md)")
    if inflight:
        p.add_argument("--max-inflight", type=int, default=20, metavar="N",
                       help="messages handed to the MQTT client at once (default 20)")


def read_password_file(path: Path) -> str:
    """The first line of a password file, stripped; unreadable = InputError naming the file."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise InputError(path, f"cannot read password file: {e.strerror}",
                         field="--password-file") from None
    return lines[0].strip() if lines else ""


def broker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """OutboxForwarder (or, without max_inflight, DashboardIngest) keyword arguments."""
    password = read_password_file(args.password_file) if args.password_file is not None else None
    kw: dict[str, Any] = {
        "tls_ca": args.tls_ca, "tls_cert": args.tls_cert, "tls_key": args.tls_key,
        "username": args.username, "password": password,
        "mqtt_version": args.mqtt_version if args.mqtt_version is not None
        else DEFAULT_MQTT_VERSION}
    if hasattr(args, "max_inflight"):
        kw["max_inflight"] = args.max_inflight
    return kw
