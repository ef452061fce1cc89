"""`edge-agent status`: buffer depth, last publish, refusals and drop counters from the outbox."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge_agent.buffer.outbox import Outbox
from edge_agent.errors import InputError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status", help="show what waits in the outbox, what was refused and what was dropped",
        description="Read the agent's outbox database (safe while the agent runs) and show the "
                    "messages waiting per kind, those the broker refused, the last "
                    "acknowledged publish, and every drop counter.")
    p.add_argument("--db", type=Path, required=True, metavar="PATH",
                   help="the agent's outbox database")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def status(db: Path) -> dict[str, Any]:
    """The outbox summary plus the refused messages' reasons (JSON-able)."""
    if not db.exists():
        raise InputError(db, "no such outbox database", field="--db")
    with Outbox(db, checkpoint_on_close=False) as box:
        s = box.summary()
        s["site"], s["agent"] = box.meta("site"), box.meta("agent")
        configured = box.meta("max_bytes")  # the agent's bound, not this reader's default
        if configured is not None:
            s["max_bytes"] = int(configured)
        reasons: dict[str, int] = {}
        for _, _, rc in box.rejected():
            reasons[str(rc)] = reasons.get(str(rc), 0) + 1
        s["rejected_reasons"] = reasons
        s["last_reject_reason"] = box.meta("last_reject_reason")
    return s


def run(args: argparse.Namespace) -> int:
    s = status(args.db)
    if args.json:
        print(json.dumps(s, sort_keys=True))
        return 0
    c = s["counters"]
    last = s["last_publish_t"]
    last_text = "never" if last is None else time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                           time.gmtime(last))
    lines = [
        f"outbox {s['db']} (site {s['site']}, agent {s['agent']}): "
        f"{s['used_bytes'] / 2**20:.1f} of {s['max_bytes'] / 2**20:.0f} MiB used",
        "waiting:  " + ", ".join(f"{k} {v}" for k, v in s["pending"].items()),
        "refused:  " + ", ".join(f"{k} {v}" for k, v in s["rejected"].items())
        + (f" (reasons {s['rejected_reasons']})" if s["rejected_reasons"] else ""),
        f"last acknowledged publish: {last_text} ({s['last_ack_id'] or 'none'})",
        "dropped:  " + (", ".join(f"{k[8:]} {v}" for k, v in sorted(c.items())
                                  if k.startswith("dropped_")) or "nothing"),
        "raw kept: " + ", ".join(f"{k} {v}" for k, v in s["raw"].items()),
    ]
    print("\n".join(lines), file=sys.stdout)
    return 0
