"""The broker command-line options shared by `flush`, `run` (and anything else that publishes)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_agent.errors import InputError


def add_broker_options(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """--broker, --tls-ca/--tls-cert/--tls-key, --username/--password-file, --mqtt-version."""
    p.add_argument("--broker", metavar="URL", required=required,
                   help="mqtt://user:pass@host:port or mqtts://... (the password is never "
                        "logged; prefer --password-file)")
    p.add_argument("--tls-ca", type=Path, metavar="PEM",
                   help="CA certificate that signed the broker's (mqtts:// only)")
    p.add_argument("--tls-cert", type=Path, metavar="PEM",
                   help="client certificate, when the broker asks for one")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="the client certificate's key")
    p.add_argument("--username", help="MQTT user name (overrides the URL's)")
    p.add_argument("--password-file", type=Path, metavar="FILE",
                   help="file whose first line is the MQTT password (overrides the URL's)")
    p.add_argument("--mqtt-version", type=int, choices=(5, 3, 311), default=5,
                   help="5 (default), or 3 (= 311) for MQTT 3.1.1; under 3.1.1 an ACL refusal "
                        "is invisible (see docs/mqtt.md)")
    p.add_argument("--max-inflight", type=int, default=20, metavar="N",
                   help="messages handed to the MQTT client at once (default 20)")


def broker_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """OutboxForwarder keyword arguments from the parsed options."""
    password = None
    if args.password_file is not None:
        try:
            lines = Path(args.password_file).read_text().splitlines()
        except OSError as e:
            raise InputError(args.password_file, f"cannot read password file: {e.strerror}",
                             field="--password-file") from None
        password = lines[0].strip() if lines else ""
    return {"tls_ca": args.tls_ca, "tls_cert": args.tls_cert, "tls_key": args.tls_key,
            "username": args.username, "password": password,
            "mqtt_version": args.mqtt_version, "max_inflight": args.max_inflight}
