"""A real Mosquitto on a free loopback port, started by a test: passwords, ACL and TLS made here.

    broker = start_mosquitto(tmp_path, users={"fl-01": "pw"}, acl=ACL, tls=True)
    url = broker.url("fl-01", "pw", tls=True)   # mqtts://fl-01:pw@127.0.0.1:PORT
    broker.stop(); broker.start()               # same ports, same files: an outage and a return

Skips the calling test when /usr/sbin/mosquitto (or, for TLS, the openssl CLI) is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from edge_agent.dashboard.private_broker import free_port, port_listening

MOSQUITTO = os.environ.get("EDGE_AGENT_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
HOST = "127.0.0.1"
# Bounds on waits only (2 shared CI cores): a healthy broker listens within ~50 ms.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# Test certificates: P-256 keys are made in milliseconds; 2 days outlives any test run.
CERT_DAYS = 2


# The product's helpers (the dashboard's private broker): one definition of each.

_port_open = port_listening


def mosquitto_available() -> bool:
    return os.access(MOSQUITTO, os.X_OK)


def require_mosquitto() -> None:
    """Skip the calling test with a clear reason if the broker binary is absent."""
    if not mosquitto_available():
        pytest.skip(f"needs the Mosquitto broker at {MOSQUITTO} (apt install mosquitto)")


def _openssl(cwd: Path, *args: str) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _ec_key_and_csr(tls_dir: Path, name: str, subject: str) -> None:
    _openssl(tls_dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)


def _sign(tls_dir: Path, name: str, ext: str) -> None:
    (tls_dir / f"{name}.ext").write_text(ext)
    _openssl(tls_dir, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", str(CERT_DAYS), "-sha256",
             "-extfile", f"{name}.ext")


def make_ca_and_server_cert(tls_dir: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost; returns the CA path."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI to make the test CA (apt install openssl)")
    tls_dir.mkdir(parents=True, exist_ok=True)
    _openssl(tls_dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", str(CERT_DAYS),
             "-subj", "/CN=edge-agent test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _ec_key_and_csr(tls_dir, "server", "/CN=localhost")
    _sign(tls_dir, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                             "extendedKeyUsage=serverAuth\n")
    return tls_dir / "ca.crt"


@dataclass
class Broker:
    """A running (or stopped) Mosquitto: its ports, files and process."""

    dir: Path
    conf_path: Path
    log_path: Path
    port: int
    tls_port: int | None = None
    ca_path: Path | None = None
    host: str = HOST
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, user: str | None = None, password: str | None = None, tls: bool = False) -> str:
        """mqtt://user:pass@127.0.0.1:port, or mqtts:// on the TLS listener."""
        if tls and self.tls_port is None:
            raise ValueError("this broker was started without tls=True")
        scheme, port = ("mqtts", self.tls_port) if tls else ("mqtt", self.port)
        cred = ""
        if user is not None:
            cred = quote(user, safe="")
            if password is not None:
                cred += ":" + quote(password, safe="")
            cred += "@"
        return f"{scheme}://{cred}{self.host}:{port}"

    def client_cert(self, name: str) -> tuple[Path, Path]:
        """A client certificate and key signed by this broker's CA (for tls_cert/tls_key)."""
        if self.ca_path is None:
            raise ValueError("this broker was started without tls=True")
        tls_dir = self.ca_path.parent
        _ec_key_and_csr(tls_dir, name, f"/CN={name}")
        _sign(tls_dir, name, "extendedKeyUsage=clientAuth\n")
        return tls_dir / f"{name}.crt", tls_dir / f"{name}.key"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start (or restart after stop()) on the same ports; return once every port accepts."""
        if self.running:
            return
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                         stdout=log, stderr=log)
        finally:
            log.close()
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()}")
            if all(_port_open(p) for p in ports):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {ports} in {START_TIMEOUT_S} s:\n"
                           f"{self.log()}")

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL after a bound) and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        self.proc = None

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_password_file(path: Path, users: dict[str, str]) -> None:
    """user:password lines hashed in place by `mosquitto_passwd -U` (no password on argv)."""
    path.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
    proc = subprocess.run([MOSQUITTO_PASSWD, "-U", str(path)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mosquitto_passwd -U failed: {proc.stderr.strip()}")


def start_mosquitto(tmp_path: Path, *, users: dict[str, str] | None = None,
                    acl: str | None = None, tls: bool = False, extra_conf: str = "",
                    require_client_cert: bool = False, persistence: bool = False) -> Broker:
    """Write a config into tmp_path/mosquitto/ and start the broker on free loopback ports.

    users=None: anonymous clients allowed. users given: only those, by password. acl: the text of
    a Mosquitto ACL file (e.g. "pattern readwrite plants/+/agents/%u/#"). tls: a second listener
    with a CA and server certificate made here; a client certificate is optional unless
    require_client_cert. persistence: sessions and queued QoS 1 messages survive stop()/start()
    (saved in tmp_path/mosquitto/data/ on SIGTERM). The caller stops it (or uses the `mosquitto*`
    fixtures, which do).
    """
    require_mosquitto()
    base = tmp_path / "mosquitto"
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        # Global auth settings apply to both listeners (simplest, as on a real plant broker).
        "per_listener_settings false",
        f"allow_anonymous {'true' if users is None else 'false'}",
        f"persistence {'true' if persistence else 'false'}",
        "log_dest stdout",
        "log_type error", "log_type warning", "log_type notice", "log_type information",
        "connection_messages true",
        "log_timestamp true",
    ]
    if persistence:
        (base / "data").mkdir(exist_ok=True)
        lines.append(f"persistence_location {base / 'data'}/")
    if os.geteuid() == 0:
        # Started as root, Mosquitto drops to user "mosquitto", which cannot read pytest's private
        # tmp dir; a test broker keeps root instead (a real broker chowns its files).
        lines.append("user root")
    if users is not None:
        passwd = base / "passwd"
        write_password_file(passwd, users)
        lines.append(f"password_file {passwd}")
    if acl is not None:
        acl_path = base / "acl"
        acl_path.write_text(acl if acl.endswith("\n") else acl + "\n")
        lines.append(f"acl_file {acl_path}")
    lines.append(f"listener {port} {HOST}")
    tls_port: int | None = None
    ca_path: Path | None = None
    if tls:
        ca_path = make_ca_and_server_cert(base / "tls")
        tls_port = free_port()
        while tls_port == port:
            tls_port = free_port()
        lines += [
            f"listener {tls_port} {HOST}",
            f"cafile {ca_path}",
            f"certfile {base / 'tls' / 'server.crt'}",
            f"keyfile {base / 'tls' / 'server.key'}",
            f"require_certificate {'true' if require_client_cert else 'false'}",
        ]
        if require_client_cert:
            lines.append("use_identity_as_username false")
    conf = base / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n" + extra_conf + ("\n" if extra_conf else ""))
    broker = Broker(dir=base, conf_path=conf, log_path=base / "mosquitto.log", port=port,
                    tls_port=tls_port, ca_path=ca_path)
    broker.start()
    return broker
