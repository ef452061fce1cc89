"""The shared paho set-up (publish/client.py): TLS mistakes are one-line BrokerErrors (exit 2),
the same for the agent's forwarder and the dashboard's ingest."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.cli import main
from edge_agent.dashboard.ingest import DashboardIngest
from edge_agent.dashboard.store import DashboardStore
from edge_agent.errors import BrokerError
from edge_agent.publish.client import configure_client, resolve_url
from edge_agent.publish.forward import OutboxForwarder


def _ingest(tmp_path: Path, url: str, **kw: object) -> DashboardIngest:
    return DashboardIngest(DashboardStore(tmp_path / "d.db"), url, **kw)  # type: ignore[arg-type]


def _forwarder(tmp_path: Path, url: str, **kw: object) -> OutboxForwarder:
    return OutboxForwarder(tmp_path / "o.db", url, "plant-a", "fl-01", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [_ingest, _forwarder])
def test_a_missing_ca_file_is_a_one_line_broker_error(tmp_path: Path, make: object) -> None:
    missing = tmp_path / "nope" / "ca.crt"
    with pytest.raises(BrokerError) as e:
        make(tmp_path, "mqtts://u:topsecret@127.0.0.1:8883", tls_ca=missing)  # type: ignore[operator]
    text = str(e.value)
    assert "\n" not in text and str(missing) in text and "--tls-ca" in text
    assert "topsecret" not in text


@pytest.mark.parametrize("make", [_ingest, _forwarder])
def test_tls_files_with_a_plain_url_are_refused_everywhere(tmp_path: Path, make: object) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not used\n")
    with pytest.raises(BrokerError, match="use mqtts://"):
        make(tmp_path, "mqtt://127.0.0.1:1883", tls_ca=ca)  # type: ignore[operator]


def test_a_client_certificate_needs_its_key() -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    with pytest.raises(BrokerError, match="--tls-key"):
        configure_client(c, resolve_url("mqtts://h"), tls_cert="c.pem")


def test_username_and_password_options_override_the_url() -> None:
    u = resolve_url("mqtt://url-user:url-pw@h", "fl-02", "file-pw")
    assert (u.user, u.password) == ("fl-02", "file-pw")
    u = resolve_url("mqtt://url-user:url-pw@h", None, "file-pw")
    assert (u.user, u.password) == ("url-user", "file-pw")
    u = resolve_url("mqtt://h", "fl-03")
    assert (u.user, u.password) == ("fl-03", None)


def test_flush_with_a_missing_ca_exits_2_with_one_line(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    OutboxForwarder(tmp_path / "o.db", None, "plant-a", "fl-01").close(health=False)
    rc = main(["flush", "--db", str(tmp_path / "o.db"), "--broker", "mqtts://127.0.0.1:1",
               "--tls-ca", str(tmp_path / "missing.crt")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "missing.crt" in err
