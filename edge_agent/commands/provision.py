"""`edge-agent provision`: an agent's credentials and config, and the broker's passwd/ACL/TLS."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_agent.provisioning import ROLES, provision
from edge_agent.site import load_site


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "provision", help="make an agent's credentials and config and the broker's pieces",
        description="Generate a random MQTT password and the agent's TOML config (mode 0600), "
                    "add the agent to the broker's password file and ACL (it may publish only "
                    "under plants/<site>/agents/<agent>/), and with --tls a CA, a server "
                    "certificate and optionally a client certificate. Re-running for the same "
                    "agent rotates its password.")
    p.add_argument("--site", required=True, type=Path, help="the site.json of the plant")
    p.add_argument("--agent", required=True, help="agent id (MQTT username), e.g. fl-07")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder: agents/<id>/ for the agent, broker/ for the broker, "
                        "ca/ for the CA key (keep ca/ offline)")
    p.add_argument("--broker-host", default="localhost",
                   help="host name or IP the agents use to reach the broker (also the server "
                        "certificate's name); default localhost")
    p.add_argument("--broker-port", type=int, default=None,
                   help="listener port (default 8883 with --tls, else 1883)")
    p.add_argument("--tls", action="store_true",
                   help="TLS listener: make (or reuse) a CA in OUT/ca and a server certificate")
    p.add_argument("--client-cert", action="store_true",
                   help="also issue a client certificate and make the broker require one")
    p.add_argument("--broker-dir", type=Path, default=None,
                   help="where OUT/broker/ will be copied on the broker host, e.g. "
                        "/etc/mosquitto/edge-agent (paths in mosquitto.conf); default OUT/broker")
    p.add_argument("--listen-address", default=None,
                   help="address the broker listener binds to (default: all interfaces)")
    p.add_argument("--role", choices=ROLES, default="agent",
                   help="agent (write own topics), dashboard (read the whole site) or "
                        "site-admin (publish the site plan, retained, on plants/<site>/site, "
                        "for the dashboard: options for mosquitto_pub in OUT/admins/<id>/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    site = load_site(args.site)
    res = provision(site, args.site, args.agent, args.out, broker_host=args.broker_host,
                    broker_port=args.broker_port, tls=args.tls, client_cert=args.client_cert,
                    broker_dir=args.broker_dir, listen_address=args.listen_address,
                    role=args.role)
    for f in res.files:
        print(f"wrote {f}")
    if res.role == "agent":
        print(f"next: copy {res.agent_dir}/ to /etc/edge-agent/ on the agent (owner "
              f"root:edge-agent, agent.toml mode 0640: docs/install.md step 3), and "
              f"{res.broker_dir}/ to the broker; keep {res.broker_dir.parent / 'ca'} offline")
    elif res.role == "site-admin":
        print(f"next: copy {res.broker_dir}/ to the broker, then publish the plan: cd "
              f"{res.agent_dir} && XDG_CONFIG_HOME=. mosquitto_pub -f site.json")
    else:
        print(f"next: copy {res.broker_dir}/ to the broker; the dashboard's credentials are in "
              f"{res.config_path}")
    action = "rotated password of" if res.rotated else "provisioned"
    print(f"{action} {res.role} {res.username} for site {site.site} "
          f"({'TLS' if args.tls else 'no TLS'}); the password is only in {res.config_path}")
    return 0
