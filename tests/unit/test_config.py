"""The agent's TOML config: validated on load, unknown keys named, secrets never printed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import AgentConfig, Secret, check_permissions, load_config
from edge_agent.errors import ConfigError
from edge_agent.names import AGENT_ID_RE

GOOD = """
[agent]
id = "fl-07"
site_file = "site.json"
data_dir = "/var/lib/edge-agent"

[wifi]
mode = "monitor"
iface = "wlan1"
channels = [1, 6, 11]

[gnss]
enabled = true
mode = "gpsd"

[mqtt]
url = "mqtts://broker.plant-a.example:8883"
site = "plant-a"
password = "s3cret-Pa55"
ca_file = "tls/ca.crt"
"""


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_good_config_loads_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.agent.id == "fl-07"
    assert cfg.agent.site_file == tmp_path / "site.json"
    assert cfg.wifi.channels == (1, 6, 11)
    assert cfg.ble.enabled is True
    assert cfg.gnss.mode == "gpsd"
    assert cfg.heatmap.cell_m == 2.0
    assert cfg.db_path == Path("/var/lib/edge-agent/outbox.db")
    assert cfg.mqtt.ca_file == tmp_path / "tls/ca.crt"
    assert cfg.mqtt_username == "fl-07"
    pw = cfg.mqtt.resolved_password()
    assert pw is not None and pw.reveal() == "s3cret-Pa55"


def test_unknown_key_is_rejected_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        text = GOOD.replace('iface = "wlan1"', 'iface = "wlan1"\nchanels = [1]')
        load_config(write(tmp_path, text))
    assert "wifi.chanels" in str(e.value) and "agent.toml" in str(e.value)
    assert "unknown key" in str(e.value)


def test_unknown_section_is_rejected_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mqqt"):
        load_config(write(tmp_path, GOOD + "\n[mqqt]\nurl = 'x'\n"))


@pytest.mark.parametrize(("old", "new", "field", "value"), [
    ('mode = "monitor"', 'mode = "promisc"', "wifi.mode", "'promisc'"),
    ("channels = [1, 6, 11]", "channels = [1, 6, 300]", "wifi.channels", "300"),
    ('id = "fl-07"', 'id = "fl/07"', "agent.id", "'fl/07'"),
    ('url = "mqtts://broker.plant-a.example:8883"', 'url = "http://x"', "mqtt.url", "'http://x'"),
    ('mode = "gpsd"', 'mode = "gpsd"\nbaud = "fast"', "gnss.baud", "'fast'"),
])
def test_bad_value_names_field_and_value(tmp_path: Path, old: str, new: str, field: str,
                                         value: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, GOOD.replace(old, new)))
    assert field in str(e.value) and value in str(e.value)


def test_missing_agent_id_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.id"):
        load_config(write(tmp_path, GOOD.replace('id = "fl-07"', "")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[agent\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_credentials_in_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, GOOD.replace("mqtts://", "mqtts://fl-07:hunter2@")))
    assert "hunter2" not in str(e.value)
    assert "mqtt.url" in str(e.value)


def test_password_never_in_repr_str_or_logs(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("config %s %r", cfg, cfg)
    assert "s3cret-Pa55" not in repr(cfg) and "s3cret-Pa55" not in str(cfg)
    assert "s3cret-Pa55" not in caplog.text
    assert repr(Secret("x")) == "Secret('***')" and f"{Secret('x')}" == "***"


def test_password_and_password_file_are_exclusive(tmp_path: Path) -> None:
    text = GOOD.replace('password = "s3cret-Pa55"', 'password = "a"\npassword_file = "pw"')
    with pytest.raises(ConfigError, match="not both"):
        load_config(write(tmp_path, text))


def test_password_file_is_read_lazily(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    text = GOOD.replace('password = "s3cret-Pa55"', 'password_file = "pw"')
    cfg = load_config(write(tmp_path, text))
    pw = cfg.mqtt.resolved_password()
    assert pw is not None and pw.reveal() == "from-file"


def test_world_readable_config_with_password_is_refused(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD, mode=0o644))
    with pytest.raises(ConfigError, match="world-accessible"):
        check_permissions(cfg)


def test_private_and_own_group_readable_configs_are_quiet(tmp_path: Path) -> None:
    # 0640 root:edge-agent is the agent's layout: the service reads it through its own group.
    assert check_permissions(load_config(write(tmp_path, GOOD, mode=0o600))) == []
    own = write(tmp_path, GOOD, mode=0o640)
    assert own.stat().st_gid == os.getegid()
    assert check_permissions(load_config(own)) == []


def test_config_readable_by_another_group_warns(tmp_path: Path) -> None:
    others = [g for g in {*os.getgroups(), 1, 2, 65534} if g != os.getegid()]
    path = write(tmp_path, GOOD, mode=0o640)
    for gid in others:
        try:
            os.chown(path, -1, gid)
            break
        except PermissionError:
            continue
    else:
        pytest.skip("cannot give the file another group here")
    warnings = check_permissions(load_config(path))
    assert len(warnings) == 1 and "readable by group" in warnings[0]
    assert "chgrp edge-agent" in warnings[0]


def test_example_config_and_install_doc_agree_on_the_mode() -> None:
    # provision writes 0600 (laptop); on the agent it is 0640 root:edge-agent (install.sh, docs).
    repo = Path(__file__).resolve().parents[2]
    header = (repo / "deploy/agent.toml.example").read_text().split("\n[agent]")[0]
    assert "0640" in header and "root:edge-agent" in header and "0600" in header
    install = (repo / "docs/install.md").read_text()
    assert "chmod 0640 /etc/edge-agent/agent.toml" in install
    assert "chown -R root:edge-agent /etc/edge-agent" in install


def test_world_readable_config_without_secret_is_fine(tmp_path: Path) -> None:
    text = GOOD.replace('password = "s3cret-Pa55"\n', "")
    assert check_permissions(load_config(write(tmp_path, text, mode=0o644))) == []


def test_dump_toml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    again = load_config(write(tmp_path, cfg.to_toml()))
    assert isinstance(again, AgentConfig)
    assert again == cfg


def test_tls_files_need_mqtts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mqtts"):
        load_config(write(tmp_path, GOOD.replace("mqtts://", "mqtt://")))


# Any TOML document: load_config either returns a config or raises ConfigError, never anything
# else (a KeyError or TypeError would reach the user as a traceback).
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.lists(st.integers(-5, 300), max_size=4))
_KEYS = st.sampled_from(["id", "site_file", "data_dir", "enabled", "mode", "iface", "channels",
                         "dwell_s", "baud", "cell_m", "window_s", "db", "max_mb", "url",
                         "password", "password_file", "ca_file", "cert_file", "mqtt_version",
                         "keepalive_s", "site", "bogus"])
_SECTIONS = st.sampled_from(["agent", "wifi", "ble", "gnss", "heatmap", "buffer", "mqtt", "x"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_SECTIONS, st.one_of(
    st.dictionaries(_KEYS, _VALUES.filter(lambda v: v is not None), max_size=5),
    st.integers()), max_size=5))
def test_any_document_loads_or_raises_config_error(doc: dict[str, object]) -> None:
    from edge_agent.config import config_from_dict

    try:
        cfg = config_from_dict(doc, "/etc/edge-agent/agent.toml")
    except ConfigError as e:
        assert str(e).startswith("/etc/edge-agent/agent.toml: ")
    else:
        assert AGENT_ID_RE.match(cfg.agent.id)
