"""Provisioning: one agent's credentials and config, and the broker's pieces (passwd, ACL, TLS).

Writes OUT/agents/<id>/ (agent.toml 0600, site.json, tls/) to copy to the agent, OUT/broker/
(mosquitto.conf, passwd, acl, tls/) to copy to the broker, OUT/ca/ (the CA key: keep it offline).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.config import (
    AgentConfig,
    AgentSection,
    MqttSection,
    Secret,
    dump_toml,
)
from edge_agent.errors import EdgeAgentError, InputError
from edge_agent.names import AGENT_ID_RE
from edge_agent.site import Site

# Mosquitto 2.0's own password hash: "$7$" = PBKDF2-SHA512, 101 iterations, 12-byte salt (what
# mosquitto_passwd writes). Done here so the password never appears on a command line (ps).
MOSQUITTO_PBKDF2_ITERATIONS = 101
MOSQUITTO_SALT_BYTES = 12
# 24 random bytes = 192 bits: far beyond online guessing, short enough to paste.
PASSWORD_BYTES = 24
# CA valid 10 years (plants keep hardware that long); leaf certificates 825 days, the longest that
# Apple/Chrome-era TLS clients still accept, so the same files work with any MQTT client.
CA_DAYS = 3650
LEAF_DAYS = 825
DEFAULT_PORT_TLS = 8883
DEFAULT_PORT_PLAIN = 1883
ROLES = ("agent", "dashboard", "site-admin")
# Where each role's files go under OUT (the agent's are copied to the agent, the others stay with
# the people who use them).
ROLE_DIRS = {"agent": "agents", "dashboard": "dashboards", "site-admin": "admins"}


@dataclass
class ProvisionResult:
    """What was written; `password` is a Secret (it is in agent.toml, mode 0600, nowhere else)."""

    username: str
    role: str
    password: Secret
    agent_dir: Path
    broker_dir: Path
    config_path: Path | None
    rotated: bool
    created_ca: bool
    files: list[Path] = field(default_factory=list)


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = MOSQUITTO_PBKDF2_ITERATIONS) -> str:
    """A Mosquitto 2.0 password-file hash ("$7$..."), as mosquitto_passwd makes it."""
    salt = secrets.token_bytes(MOSQUITTO_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def verify_password(entry_hash: str, password: str) -> bool:
    """Check a password against a "$7$" hash from a Mosquitto password file."""
    parts = entry_hash.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    expected = hash_password(password, salt=base64.b64decode(parts[3]), iterations=int(parts[2]))
    return secrets.compare_digest(expected, entry_hash)


def agent_topic_root(site_id: str, agent_id: str) -> str:
    return f"plants/{site_id}/agents/{agent_id}"


def site_plan_topic(site_id: str) -> str:
    """The retained site.json the dashboard draws (docs/dashboard.md): written by a site-admin."""
    return f"plants/{site_id}/site"


def acl_block(username: str, role: str, site_id: str) -> str:
    """Mosquitto ACL lines for one user, pinned to its site.

    A `pattern write plants/+/agents/%u/#` line would let agent fl-01 of plant-a also write as
    fl-01 of plant-b on a shared broker; an explicit per-user block pins the site as well.
    """
    if role == "agent":
        return (f"user {username}\n"
                f"topic write {agent_topic_root(site_id, username)}/#\n")
    if role == "site-admin":  # publishes the plan (retained) and reads it back, nothing else
        return f"user {username}\ntopic readwrite {site_plan_topic(site_id)}\n"
    return f"user {username}\ntopic read plants/{site_id}/#\n"


_ACL_USER_RE = re.compile(r"^user (\S+)\n(?:topic .*\n)+", re.MULTILINE)


def merge_acl(existing: str, username: str, block: str) -> str:
    """The ACL file with `username`'s block added or replaced; other users' blocks kept."""
    blocks = {m.group(1): m.group(0) for m in _ACL_USER_RE.finditer(existing)}
    blocks[username] = block
    header = ("# Mosquitto ACL for edge-agent (written by `edge-agent provision`).\n"
              "# Each agent may only publish under plants/<its site>/agents/<its id>/;\n"
              "# dashboards may only read their site; site admins may only (re)publish\n"
              "# plants/<site>/site. Anything not listed is denied.\n")
    return header + "".join("\n" + blocks[u] for u in sorted(blocks))


def merge_passwd(existing: str, username: str, entry_hash: str) -> tuple[str, bool]:
    """The password file with `username` set; True when the user already existed (rotation)."""
    lines = [ln for ln in existing.splitlines() if ln.strip()]
    rotated = any(ln.split(":", 1)[0] == username for ln in lines)
    lines = [ln for ln in lines if ln.split(":", 1)[0] != username]
    lines.append(f"{username}:{entry_hash}")
    return "\n".join(sorted(lines)) + "\n", rotated


def mosquitto_conf(broker_dir: Path, *, port: int, tls: bool, client_cert: bool,
                   listen_address: str | None = None) -> str:
    """A Mosquitto 2.0 configuration: one listener, no anonymous access, password file and ACL."""
    bind = f" {listen_address}" if listen_address else ""
    lines = [
        "# Mosquitto configuration for edge-agent (written by `edge-agent provision`).",
        "# Include it from /etc/mosquitto/conf.d/ or run: mosquitto -c <this file>.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {broker_dir / 'passwd'}",
        f"acl_file {broker_dir / 'acl'}",
        "",
        f"listener {port}{bind}",
    ]
    if tls:
        lines += [
            f"cafile {broker_dir / 'tls' / 'ca.crt'}",
            f"certfile {broker_dir / 'tls' / 'server.crt'}",
            f"keyfile {broker_dir / 'tls' / 'server.key'}",
            "tls_version tlsv1.2",
            f"require_certificate {'true' if client_cert else 'false'}",
        ]
    else:
        lines.append("# WARNING: no TLS: passwords and data cross the network in clear text.")
    return "\n".join(lines) + "\n"


def mosquitto_pub_conf(site_id: str, username: str, password: Secret, *, host: str, port: int,
                       ca_file: Path | None, cert_file: Path | None,
                       key_file: Path | None) -> str:
    """mosquitto_pub's options file ($XDG_CONFIG_HOME/mosquitto_pub: Mosquitto 2.0.11 in Debian 12
    has no -o) to publish the site plan retained at QoS 1; the password stays off `ps`."""
    lines = [
        "# Publish the site plan for the dashboard (retained), from this folder:",
        "#   XDG_CONFIG_HOME=. mosquitto_pub -f site.json",
        f"-h {host}", f"-p {port}", f"-u {username}", f"-P {password.reveal()}",
        f"-i {username}-plan", "-q 1", "-r", f"-t {site_plan_topic(site_id)}",
    ]
    if ca_file is not None:
        lines.append(f"--cafile {ca_file}")
    if cert_file is not None and key_file is not None:
        lines += [f"--cert {cert_file}", f"--key {key_file}"]
    return "\n".join(lines) + "\n"


# --- TLS through the openssl command line --------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise EdgeAgentError("openssl not found: install it (apt install openssl) to make "
                             "TLS certificates")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EdgeAgentError(f"openssl {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")


def _write_private(path: Path, data: str | bytes) -> None:
    """Create or replace a file readable by its owner only (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def ensure_ca(ca_dir: Path, site_id: str) -> bool:
    """Make the CA (P-256 key + self-signed certificate) unless it exists; True when made."""
    if (ca_dir / "ca.crt").exists() and (ca_dir / "ca.key").exists():
        return False
    ca_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(ca_dir, 0o700)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", str(CA_DAYS),
             "-subj", f"/O=edge-agent/CN=edge-agent CA {site_id}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=ca_dir)
    os.chmod(ca_dir / "ca.key", 0o600)
    return True


def issue_certificate(ca_dir: Path, out_dir: Path, name: str, common_name: str, *,
                      server_host: str | None = None) -> tuple[Path, Path]:
    """A P-256 key and a certificate signed by the CA: server (with SAN) or client."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyAgreement"]
        if server_host is not None:
            sans = {"DNS:localhost", "IP:127.0.0.1"}
            try:
                sans.add(f"IP:{ipaddress.ip_address(server_host)}")
            except ValueError:
                sans.add(f"DNS:{server_host}")
            ext += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(sorted(sans))]
        else:
            ext.append("extendedKeyUsage=clientAuth")
        (tmp / "ext.cnf").write_text("\n".join(ext) + "\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(tmp / "leaf.key"), "-out", str(tmp / "leaf.csr"),
                 "-subj", f"/O=edge-agent/CN={common_name}", cwd=tmp)
        _openssl("x509", "-req", "-in", str(tmp / "leaf.csr"), "-CA", str(ca_dir / "ca.crt"),
                 "-CAkey", str(ca_dir / "ca.key"), "-set_serial",
                 str(int.from_bytes(secrets.token_bytes(16), "big")),
                 "-days", str(LEAF_DAYS), "-sha256", "-extfile", str(tmp / "ext.cnf"),
                 "-out", str(tmp / "leaf.crt"), cwd=tmp)
        key, crt = out_dir / f"{name}.key", out_dir / f"{name}.crt"
        _write_private(key, (tmp / "leaf.key").read_bytes())
        shutil.copyfile(tmp / "leaf.crt", crt)
    return key, crt


# --- the whole step -------------------------------------------------------------------------------

def provision(site: Site, site_path: Path, agent_id: str, out_dir: Path, *,
              broker_host: str = "localhost", broker_port: int | None = None, tls: bool = False,
              client_cert: bool = False, broker_dir: Path | None = None,
              listen_address: str | None = None, role: str = "agent",
              password: str | None = None) -> ProvisionResult:
    """Provision one agent (or dashboard user) of `site` into `out_dir`; re-running rotates it.

    `broker_dir` is where OUT/broker/ will live on the broker host (the paths written into
    mosquitto.conf); by default OUT/broker itself, so the conf runs in place.
    """
    if not AGENT_ID_RE.match(agent_id):
        raise InputError("--agent", "must be 1-64 of A-Z a-z 0-9 . _ - (MQTT username and "
                                    "topic level)", value=agent_id)
    if role not in ROLES:
        raise InputError("--role", f"must be one of {', '.join(ROLES)}", value=role)
    if client_cert and not tls:
        raise InputError("--client-cert", "needs --tls")
    out_dir = out_dir.resolve()
    bdir = out_dir / "broker"
    adir = out_dir / ROLE_DIRS[role] / agent_id
    bdir.mkdir(parents=True, exist_ok=True)
    adir.mkdir(parents=True, exist_ok=True)
    os.chmod(adir, 0o700)
    files: list[Path] = []
    secret = Secret(password or secrets.token_urlsafe(PASSWORD_BYTES))

    passwd_path = bdir / "passwd"
    existing = passwd_path.read_text() if passwd_path.exists() else ""
    text, rotated = merge_passwd(existing, agent_id, hash_password(secret.reveal()))
    _write_private(passwd_path, text)
    acl_path = bdir / "acl"
    acl_old = acl_path.read_text() if acl_path.exists() else ""
    acl_path.write_text(merge_acl(acl_old, agent_id, acl_block(agent_id, role, site.site)))
    files += [passwd_path, acl_path]

    port = broker_port or (DEFAULT_PORT_TLS if tls else DEFAULT_PORT_PLAIN)
    created_ca = False
    ca_file = cert_file = key_file = None
    if tls:
        ca_dir = out_dir / "ca"
        created_ca = ensure_ca(ca_dir, site.site)
        btls = bdir / "tls"
        btls.mkdir(exist_ok=True)
        shutil.copyfile(ca_dir / "ca.crt", btls / "ca.crt")
        if created_ca or not (btls / "server.crt").exists():
            files += issue_certificate(ca_dir, btls, "server", broker_host,
                                       server_host=broker_host)
        atls = adir / "tls"
        atls.mkdir(exist_ok=True)
        shutil.copyfile(ca_dir / "ca.crt", atls / "ca.crt")
        ca_file = Path("tls/ca.crt")
        files += [btls / "ca.crt", atls / "ca.crt"]
        if client_cert:
            k, c = issue_certificate(ca_dir, atls, "client", agent_id)
            files += [k, c]
            cert_file, key_file = Path("tls/client.crt"), Path("tls/client.key")
    conf_path = bdir / "mosquitto.conf"
    conf_path.write_text(mosquitto_conf(broker_dir or bdir, port=port, tls=tls,
                                        client_cert=client_cert, listen_address=listen_address))
    files.append(conf_path)

    site_copy = adir / "site.json"
    shutil.copyfile(site_path, site_copy)
    files.append(site_copy)
    scheme = "mqtts" if tls else "mqtt"
    config_path: Path | None = None
    if role == "agent":
        cfg = AgentConfig(
            agent=AgentSection(agent_id, Path("site.json")),
            mqtt=MqttSection(url=f"{scheme}://{broker_host}:{port}", site=site.site,
                             username=agent_id, password=secret, ca_file=ca_file,
                             cert_file=cert_file, key_file=key_file))
        config_path = adir / "agent.toml"
        _write_private(config_path, dump_toml(cfg))
    else:
        config_path = adir / "credentials.toml"
        what = ("Dashboard credentials (read-only on the site's topics)" if role == "dashboard"
                else f"Site admin credentials (may only publish {site_plan_topic(site.site)})")
        _write_private(config_path, (
            f"# {what}.\n"
            f'url = "{scheme}://{broker_host}:{port}"\nsite = "{site.site}"\n'
            f'username = "{agent_id}"\npassword = "{secret.reveal()}"\n'
            + (f'ca_file = "{atls_ca}"\n' if (atls_ca := ca_file) else "")))
    files.append(config_path)
    if role == "site-admin":
        pub_conf = adir / "mosquitto_pub"  # the name mosquitto_pub looks for
        _write_private(pub_conf, mosquitto_pub_conf(
            site.site, agent_id, secret, host=broker_host, port=port, ca_file=ca_file,
            cert_file=cert_file, key_file=key_file))
        files.append(pub_conf)
    return ProvisionResult(agent_id, role, secret, adir, bdir, config_path, rotated, created_ca,
                           files)
