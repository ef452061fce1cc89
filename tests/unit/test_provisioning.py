"""Provisioning: Mosquitto-compatible password hashes, per-agent ACL blocks, private files."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import check_permissions, load_config
from edge_agent.errors import InputError
from edge_agent.provisioning import (
    acl_block,
    hash_password,
    merge_acl,
    merge_passwd,
    provision,
    verify_password,
)
from edge_agent.site import load_site

SITE = {
    "site": "plant-a", "origin": {"lat": 47.4735, "lon": 6.8112, "alt": 340.0},
    "bounds": {"xmin": 0, "ymin": 0, "xmax": 100, "ymax": 90},
    "wifi_aps": [{"bssid": "02:9e:34:71:25:60", "ssid": "plant-ops", "channel": 1, "x": 12.5,
                  "y": 11.6, "z": 6.0, "rssi_1m_dbm": -40.0, "path_loss_exponent": 2.5}],
}


@pytest.fixture
def site_path(tmp_path: Path) -> Path:
    p = tmp_path / "site.json"
    p.write_text(json.dumps(SITE))
    return p


def test_hash_verifies_and_differs_per_salt() -> None:
    h1, h2 = hash_password("pw"), hash_password("pw")
    assert h1.startswith("$7$101$") and h1 != h2
    assert verify_password(h1, "pw") and not verify_password(h1, "pW")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
def test_hash_matches_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(f), "alice", "secret"], check=True)
    user, entry = f.read_text().strip().split(":", 1)
    assert user == "alice" and verify_password(entry, "secret")
    assert not verify_password(entry, "secreT")


def test_acl_pins_site_and_agent_and_merge_replaces_only_that_user() -> None:
    acl = merge_acl("", "fl-01", acl_block("fl-01", "agent", "plant-a"))
    acl = merge_acl(acl, "fl-02", acl_block("fl-02", "agent", "plant-a"))
    acl = merge_acl(acl, "fl-01", acl_block("fl-01", "agent", "plant-b"))
    assert "topic write plants/plant-b/agents/fl-01/#" in acl
    assert "plants/plant-a/agents/fl-01" not in acl
    assert "topic write plants/plant-a/agents/fl-02/#" in acl
    assert "pattern" not in acl  # a %u pattern would not pin the site
    assert acl_block("dash", "dashboard", "plant-a") == "user dash\ntopic read plants/plant-a/#\n"


def test_passwd_merge_reports_rotation() -> None:
    text, rotated = merge_passwd("", "fl-01", "$7$h1")
    assert not rotated
    text, rotated = merge_passwd(text, "fl-01", "$7$h2")
    assert rotated and text == "fl-01:$7$h2\n"


def test_provision_writes_private_config_that_validates(tmp_path: Path, site_path: Path) -> None:
    res = provision(load_site(site_path), site_path, "fl-07", tmp_path / "out")
    assert res.config_path is not None
    assert stat.S_IMODE(res.config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((res.broker_dir / "passwd").stat().st_mode) == 0o600
    cfg = load_config(res.config_path)
    assert check_permissions(cfg) == []
    assert cfg.agent.id == "fl-07" and cfg.mqtt.site == "plant-a"
    assert cfg.mqtt.url == "mqtt://localhost:1883"
    assert cfg.agent.site_file.read_text() == site_path.read_text()
    pw = cfg.mqtt.resolved_password()
    assert pw is not None and pw == res.password and len(pw.reveal()) >= 32
    user, entry = (res.broker_dir / "passwd").read_text().strip().split(":", 1)
    assert user == "fl-07" and verify_password(entry, pw.reveal())
    conf = (res.broker_dir / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "listener 1883" in conf


def test_reprovisioning_rotates_password_and_keeps_other_agents(tmp_path: Path,
                                                                 site_path: Path) -> None:
    site = load_site(site_path)
    first = provision(site, site_path, "fl-01", tmp_path)
    provision(site, site_path, "fl-02", tmp_path)
    again = provision(site, site_path, "fl-01", tmp_path)
    assert again.rotated and again.password != first.password
    entries = dict(ln.split(":", 1) for ln in (tmp_path / "broker/passwd").read_text().split())
    assert set(entries) == {"fl-01", "fl-02"}
    assert verify_password(entries["fl-01"], again.password.reveal())


def test_bad_agent_id_is_refused(tmp_path: Path, site_path: Path) -> None:
    with pytest.raises(InputError, match="--agent"):
        provision(load_site(site_path), site_path, "fl/+", tmp_path)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl missing")
def test_cli_with_tls_and_client_cert_makes_a_verifying_chain(
        tmp_path: Path, site_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["provision", "--site", str(site_path), "--agent", "fl-03", "--out", str(out),
               "--tls", "--client-cert", "--broker-host", "broker.plant-a.example"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "provisioned agent fl-03" in printed
    cfg = load_config(out / "agents/fl-03/agent.toml")
    pw = cfg.mqtt.resolved_password()
    assert pw is not None and pw.reveal() not in printed
    assert cfg.mqtt.url == "mqtts://broker.plant-a.example:8883"
    assert cfg.mqtt.key_file is not None and cfg.mqtt.cert_file is not None
    assert stat.S_IMODE(cfg.mqtt.key_file.stat().st_mode) == 0o600
    ca = out / "ca/ca.crt"
    for crt in (out / "broker/tls/server.crt", cfg.mqtt.cert_file):
        proc = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(crt)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                           str(out / "broker/tls/server.crt")], capture_output=True, text=True,
                          check=True).stdout
    assert "DNS:broker.plant-a.example" in text
    assert "require_certificate true" in (out / "broker/mosquitto.conf").read_text()


def test_dashboard_role_gets_read_only_acl_and_private_credentials(tmp_path: Path,
                                                                    site_path: Path) -> None:
    import tomllib

    res = provision(load_site(site_path), site_path, "dash", tmp_path, role="dashboard")
    assert res.config_path is not None and res.config_path.name == "credentials.toml"
    assert stat.S_IMODE(res.config_path.stat().st_mode) == 0o600
    creds = tomllib.loads(res.config_path.read_text())
    assert creds["username"] == "dash" and creds["password"] == res.password.reveal()
    acl = (tmp_path / "broker/acl").read_text()
    assert "user dash\ntopic read plants/plant-a/#\n" in acl and "write" not in acl


def test_site_admin_may_only_publish_the_site_plan(tmp_path: Path, site_path: Path) -> None:
    res = provision(load_site(site_path), site_path, "plan-admin", tmp_path, role="site-admin",
                    broker_host="broker.plant-a.example", broker_port=8883)
    assert res.agent_dir == tmp_path.resolve() / "admins" / "plan-admin"
    acl = (tmp_path / "broker/acl").read_text()
    assert "user plan-admin\ntopic readwrite plants/plant-a/site\n" in acl
    assert "plants/plant-a/#" not in acl and "agents" not in acl.split("user plan-admin")[1]
    conf = res.agent_dir / "mosquitto_pub"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600   # it holds the password
    lines = conf.read_text().splitlines()
    assert {"-h broker.plant-a.example", "-p 8883", "-u plan-admin", "-r", "-q 1",
            "-t plants/plant-a/site", f"-P {res.password.reveal()}"} <= set(lines)
    assert (res.agent_dir / "site.json").read_text() == site_path.read_text()


def test_cli_site_admin_says_how_to_publish(tmp_path: Path, site_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision", "--site", str(site_path), "--agent", "plan-admin", "--out",
                 str(tmp_path), "--role", "site-admin"]) == 0
    out = capsys.readouterr().out
    assert "XDG_CONFIG_HOME=. mosquitto_pub -f site.json" in out
    assert "provisioned site-admin plan-admin" in out
