"""A private Mosquitto on a free loopback port, for `edge-agent demo` and the dashboard benchmark.

Anonymous on 127.0.0.1 only, no persistence, log to a file we read. Mosquitto started as root
drops to the `mosquitto` user; it reads its config before that, and needs no other file after.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import BrokerError

HOST = "127.0.0.1"
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL_HINT = "sudo apt-get install mosquitto (Debian / Raspberry Pi OS)"
START_TIMEOUT_S = 20.0  # a healthy broker listens in ~50 ms; bounds a wait on a loaded machine
STOP_TIMEOUT_S = 10.0


def find_mosquitto() -> str:
    """The mosquitto binary, or a BrokerError naming the apt command that installs it."""
    for p in (shutil.which("mosquitto"), *MOSQUITTO_PATHS):
        if p and os.access(p, os.X_OK):
            return p
    raise BrokerError("the demo needs the Mosquitto broker, which is not installed: "
                      + INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


@dataclass
class PrivateBroker:
    """A running Mosquitto child process on HOST:port."""

    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)


def start_private_broker(work_dir: Path, *, extra_conf: str = "") -> PrivateBroker:
    """Write work_dir/mosquitto.conf and start Mosquitto on a free loopback port."""
    exe = find_mosquitto()
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = work_dir / "mosquitto.conf"
    conf.write_text("\n".join([
        f"listener {port} {HOST}", "allow_anonymous true", "persistence false",
        "log_dest stdout", "log_type error", "log_type warning", "log_type notice",
        extra_conf, ""]))
    conf.chmod(0o644)
    log_path = work_dir / "mosquitto.log"
    with log_path.open("wb") as log:
        # Own session: a terminal's Ctrl-C reaches us, not the broker, so we stop it last.
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    broker = PrivateBroker(port, proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"mosquitto exited with code {proc.returncode}: "
                              f"{log_path.read_text(errors='replace').strip()[-300:]}")
        if port_listening(port):
            return broker
        time.sleep(0.02)
    broker.stop()
    raise BrokerError(f"mosquitto did not listen on {HOST}:{port} within {START_TIMEOUT_S} s")
