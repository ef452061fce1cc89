"""The `edge-agent` command: one sub-command per module in edge_agent.commands.

Each command module defines `register(subparsers)` which adds its parser and sets `func` to a
callable taking the parsed namespace and returning an exit code. Every EdgeAgentError becomes one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from edge_agent import __version__
from edge_agent.errors import EdgeAgentError

# Order is the order of `edge-agent --help`.
COMMANDS = (
    "demo", "simulate", "replay", "inspect", "record", "run", "flush", "status",
    "survey", "calibrate", "provision", "validate", "dashboard",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or with `only` that one (a command's imports cost up to a
    second on a Pi: numpy, filterpy, paho; a run imports just what it uses)."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Track forklift utilisation from Wi-Fi, BLE and GNSS, and publish heatmaps "
                    "over MQTT.")
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"edge_agent.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Global options take no values, so the first bare word is the command.
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc: int = args.func(args)
    except EdgeAgentError as e:
        print(f"edge-agent {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"edge-agent {args.command}: interrupted", file=sys.stderr)
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
