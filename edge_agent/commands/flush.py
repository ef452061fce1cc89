"""`edge-agent flush`: send whatever waits in an outbox database to the broker, then stop."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.buffer.outbox import Outbox
from edge_agent.errors import InputError
from edge_agent.publish.forward import OutboxForwarder
from edge_agent.publish.options import add_broker_options, broker_kwargs


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "flush", help="send the windows waiting in an outbox database",
        description="Publish every message waiting in the outbox (oldest first, at QoS 1) and "
                    "mark each one sent only when the broker acknowledges it. What the broker "
                    "does not take within --timeout keeps waiting in the database.")
    p.add_argument("--db", type=Path, required=True, metavar="PATH",
                   help="the agent's outbox database")
    add_broker_options(p, required=True)
    p.add_argument("--site", help="topic site (default: the one the database was written for)")
    p.add_argument("--agent", help="agent id (default: the one the database was written for)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="give up after S seconds; the rest waits (default 30)")
    p.add_argument("--retry-rejected", action="store_true",
                   help="put messages the broker refused (e.g. ACL, reason 135) back in line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.db.exists():
        raise InputError(args.db, "no such outbox database", field="--db")
    with Outbox(args.db) as box:
        site = args.site or box.meta("site")
        agent = args.agent or box.meta("agent")
        requeued = box.requeue_rejected() if args.retry_rejected else 0
    if not site or not agent:
        raise InputError(args.db, "the database does not name its site and agent: give --site "
                                  "and --agent", field="--site/--agent")
    fwd = OutboxForwarder(args.db, args.broker, site, agent, **broker_kwargs(args))
    fwd.pump()
    summary = fwd.close(timeout_s=args.timeout)
    extra = f" ({requeued} refused messages re-queued)" if requeued else ""
    print(f"flush: {summary}{extra}", file=sys.stderr)
    return 0
