"""The agent's one TOML config (/etc/edge-agent/agent.toml): typed sections, validated on load.

Unknown keys are rejected by name; every error names the file, the field and the value. Secrets
(the MQTT password) live in `Secret`, whose repr and str never show the value, so logs stay clean.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_agent.errors import ConfigError
from edge_agent.names import AGENT_ID_RE  # agent ids become MQTT user names and topic levels

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/agent.toml")
DEFAULT_DATA_DIR = Path("/var/lib/edge-agent")
WIFI_MODES = ("monitor", "iw", "termux")
GNSS_MODES = ("serial", "gpsd", "termux")
MQTT_VERSIONS = (5, 311)
# 2.4 GHz channels 1-14 and the 5 GHz ones up to 177 (the site.json channel range is wider).
MAX_WIFI_CHANNEL = 233
# Below ~0.05 s a monitor-mode interface spends more time retuning than listening.
MIN_DWELL_S = 0.05


class Secret:
    """A string that never prints itself: repr/str show '***'; `.reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class AgentSection:
    """Who this agent is and where its survey and data are."""

    id: str
    site_file: Path
    data_dir: Path = DEFAULT_DATA_DIR


@dataclass(frozen=True)
class WifiSection:
    enabled: bool = True
    mode: str = "monitor"  # monitor (scapy, needs CAP_NET_RAW/ADMIN) | iw (managed scan) | termux
    iface: str = "wlan1"
    channels: tuple[int, ...] = (1, 6, 11)
    dwell_s: float = 0.25


@dataclass(frozen=True)
class BleSection:
    enabled: bool = True
    adapter: str = "hci0"


@dataclass(frozen=True)
class GnssSection:
    enabled: bool = False
    mode: str = "serial"  # serial | gpsd
    device: str = "/dev/ttyACM0"
    baud: int = 9600
    gpsd_host: str = "127.0.0.1"
    gpsd_port: int = 2947


@dataclass(frozen=True)
class HeatmapSection:
    cell_m: float = 2.0
    window_s: float = 60.0


@dataclass(frozen=True)
class BufferSection:
    """The SQLite outbox; `db` relative paths are under agent.data_dir."""

    db: Path = Path("outbox.db")
    max_mb: float = 100.0
    max_age_h: float = 168.0
    record_positions: bool = False
    record_raw: bool = False


@dataclass(frozen=True)
class MqttSection:
    """The broker; credentials are never part of `url`. `password` is a Secret."""

    url: str = ""  # empty: no publishing, windows wait in the outbox
    site: str = ""  # topic level plants/{site}/...; empty: the site.json "site"
    username: str = ""  # empty: the agent id
    password: Secret | None = field(default=None, repr=False)
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    mqtt_version: int = 5
    keepalive_s: int = 30
    publish_positions: bool = False

    def resolved_password(self) -> Secret | None:
        """The password: inline, or the first line of password_file (read now, not logged)."""
        if self.password is not None:
            return self.password
        if self.password_file is None:
            return None
        try:
            text = self.password_file.read_text().splitlines()
        except OSError as e:
            raise ConfigError(self.password_file, f"cannot read password file: {e.strerror}",
                              field="mqtt.password_file") from None
        return Secret(text[0].strip() if text else "")


@dataclass(frozen=True)
class AgentConfig:
    """The whole config; `path` is the file it came from (relative paths resolve against it)."""

    agent: AgentSection
    wifi: WifiSection = field(default_factory=WifiSection)
    ble: BleSection = field(default_factory=BleSection)
    gnss: GnssSection = field(default_factory=GnssSection)
    heatmap: HeatmapSection = field(default_factory=HeatmapSection)
    buffer: BufferSection = field(default_factory=BufferSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    path: Path = Path("agent.toml")

    @property
    def db_path(self) -> Path:
        db = self.buffer.db
        return db if db.is_absolute() else self.agent.data_dir / db

    @property
    def mqtt_username(self) -> str:
        return self.mqtt.username or self.agent.id

    def to_toml(self) -> str:
        """The config as TOML text (inline password included: write it with mode 0600)."""
        return dump_toml(self)


# --- loading -------------------------------------------------------------------------------------

def load_config(path: str | Path) -> AgentConfig:
    """Read and validate the TOML config; any problem is a ConfigError naming field and value."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(p, "file not found") from None
    except PermissionError:
        raise ConfigError(p, "permission denied (the config is readable by root and the "
                             "edge-agent group only)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(p, f"not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(p, "not UTF-8 text") from None
    return config_from_dict(raw, p)


def config_from_dict(raw: dict[str, Any], path: str | Path = "agent.toml") -> AgentConfig:
    """Validate a parsed TOML document; relative paths resolve against the file's directory."""
    p = Path(path)
    v = _Reader(p)
    sections = {"agent", "wifi", "ble", "gnss", "heatmap", "buffer", "mqtt"}
    for k in raw:
        if k not in sections:
            raise ConfigError(p, f"unknown section (known: {', '.join(sorted(sections))})",
                              field=k)
    if "agent" not in raw:
        raise ConfigError(p, "missing section [agent]", field="agent")
    base = p.parent

    a = v.table(raw, "agent", {"id", "site_file", "data_dir"})
    agent_id = v.string(a, "agent.id")
    if not AGENT_ID_RE.match(agent_id):
        raise ConfigError(p, "must be 1-64 of A-Z a-z 0-9 . _ - (it is an MQTT username and "
                             "topic level)", field="agent.id", value=agent_id)
    agent = AgentSection(agent_id, v.path(a, "agent.site_file", base),
                         v.path(a, "agent.data_dir", base, default=DEFAULT_DATA_DIR))

    w = v.table(raw, "wifi", {f.name for f in fields(WifiSection)})
    channels = v.int_list(w, "wifi.channels", default=[1, 6, 11], lo=1, hi=MAX_WIFI_CHANNEL)
    wifi = WifiSection(v.boolean(w, "wifi.enabled", True),
                       v.choice(w, "wifi.mode", WIFI_MODES, "monitor"),
                       v.string(w, "wifi.iface", "wlan1"), tuple(channels),
                       v.number(w, "wifi.dwell_s", 0.25, lo=MIN_DWELL_S, hi=10.0))
    if wifi.enabled and wifi.mode == "monitor" and not channels:
        raise ConfigError(p, "monitor mode needs at least one channel", field="wifi.channels",
                          value=channels)

    b = v.table(raw, "ble", {f.name for f in fields(BleSection)})
    ble = BleSection(v.boolean(b, "ble.enabled", True), v.string(b, "ble.adapter", "hci0"))

    g = v.table(raw, "gnss", {f.name for f in fields(GnssSection)})
    gnss = GnssSection(v.boolean(g, "gnss.enabled", False),
                       v.choice(g, "gnss.mode", GNSS_MODES, "serial"),
                       v.string(g, "gnss.device", "/dev/ttyACM0"),
                       v.integer(g, "gnss.baud", 9600, lo=1200, hi=921600),
                       v.string(g, "gnss.gpsd_host", "127.0.0.1"),
                       v.integer(g, "gnss.gpsd_port", 2947, lo=1, hi=65535))

    h = v.table(raw, "heatmap", {f.name for f in fields(HeatmapSection)})
    heatmap = HeatmapSection(v.number(h, "heatmap.cell_m", 2.0, lo=0.25, hi=100.0),
                             v.number(h, "heatmap.window_s", 60.0, lo=1.0, hi=86400.0))

    bu = v.table(raw, "buffer", {f.name for f in fields(BufferSection)})
    buffer = BufferSection(v.path(bu, "buffer.db", None, default=Path("outbox.db")),
                           v.number(bu, "buffer.max_mb", 100.0, lo=1.0, hi=1e6),
                           v.number(bu, "buffer.max_age_h", 168.0, lo=1.0, hi=24.0 * 3650),
                           v.boolean(bu, "buffer.record_positions", False),
                           v.boolean(bu, "buffer.record_raw", False))

    m = v.table(raw, "mqtt", {f.name for f in fields(MqttSection)})
    url = v.string(m, "mqtt.url", "")
    if url:
        if not re.match(r"^mqtts?://[^/\s]+$", url):
            raise ConfigError(p, "must be mqtt://host[:port] or mqtts://host[:port]",
                              field="mqtt.url", value=url)
        if "@" in url:
            # Never echo the value: it may hold a password.
            raise ConfigError(p, "must not hold credentials: use mqtt.username and "
                                 "mqtt.password_file", field="mqtt.url")
    password: Secret | None = None
    if "password" in m:
        pw = m["password"]
        if not isinstance(pw, str) or not pw:
            raise ConfigError(p, "must be a non-empty string", field="mqtt.password")
        password = Secret(pw)
    password_file = v.path(m, "mqtt.password_file", base)
    if password is not None and password_file is not None:
        raise ConfigError(p, "give mqtt.password or mqtt.password_file, not both",
                          field="mqtt.password_file", value=str(password_file))
    topic_site = v.string(m, "mqtt.site", "")
    if topic_site and not AGENT_ID_RE.match(topic_site):
        raise ConfigError(p, "must be 1-64 of A-Z a-z 0-9 . _ - (it is a topic level)",
                          field="mqtt.site", value=topic_site)
    username = v.string(m, "mqtt.username", "")
    mqtt = MqttSection(url, topic_site, username, password, password_file,
                       v.path(m, "mqtt.ca_file", base), v.path(m, "mqtt.cert_file", base),
                       v.path(m, "mqtt.key_file", base),
                       int(v.choice(m, "mqtt.mqtt_version", MQTT_VERSIONS, 5)),
                       v.integer(m, "mqtt.keepalive_s", 30, lo=5, hi=3600),
                       v.boolean(m, "mqtt.publish_positions", False))
    if (mqtt.cert_file is None) != (mqtt.key_file is None):
        raise ConfigError(p, "a client certificate needs both cert_file and key_file",
                          field="mqtt.cert_file" if mqtt.cert_file is None else "mqtt.key_file")
    if url.startswith("mqtt://") and (mqtt.ca_file or mqtt.cert_file):
        raise ConfigError(p, "TLS files given but the URL is plain mqtt:// (use mqtts://)",
                          field="mqtt.url", value=url)
    return AgentConfig(agent, wifi, ble, gnss, heatmap, buffer, mqtt, p)


class _Reader:
    """Typed getters that raise ConfigError(file, field, value)."""

    def __init__(self, path: Path) -> None:
        self.file = path

    def table(self, raw: dict[str, Any], name: str, known: set[str]) -> dict[str, Any]:
        t = raw.get(name, {})
        if not isinstance(t, dict):
            raise ConfigError(self.file, "must be a table", field=name, value=t)
        for k in t:
            if k not in known:
                raise ConfigError(self.file, f"unknown key (known: {', '.join(sorted(known))})",
                                  field=f"{name}.{k}")
        return t

    @staticmethod
    def _key(name: str) -> str:
        return name.split(".", 1)[1]

    def string(self, t: dict[str, Any], name: str, default: str | None = None) -> str:
        val = t.get(self._key(name), default)
        if not isinstance(val, str) or (default is None and not val):
            raise ConfigError(self.file, "must be a non-empty string", field=name, value=val)
        return val

    def boolean(self, t: dict[str, Any], name: str, default: bool) -> bool:
        val = t.get(self._key(name), default)
        if not isinstance(val, bool):
            raise ConfigError(self.file, "must be true or false", field=name, value=val)
        return val

    def number(self, t: dict[str, Any], name: str, default: float, *, lo: float,
               hi: float) -> float:
        val = t.get(self._key(name), default)
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
            raise ConfigError(self.file, "must be a number", field=name, value=val)
        if not lo <= val <= hi:
            raise ConfigError(self.file, f"must be between {lo:g} and {hi:g}", field=name,
                              value=val)
        return float(val)

    def integer(self, t: dict[str, Any], name: str, default: int, *, lo: int, hi: int) -> int:
        val = t.get(self._key(name), default)
        if isinstance(val, bool) or not isinstance(val, int):
            raise ConfigError(self.file, "must be an integer", field=name, value=val)
        if not lo <= val <= hi:
            raise ConfigError(self.file, f"must be between {lo} and {hi}", field=name, value=val)
        return val

    def int_list(self, t: dict[str, Any], name: str, *, default: list[int], lo: int,
                 hi: int) -> list[int]:
        val = t.get(self._key(name), default)
        if not isinstance(val, list) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in val):
            raise ConfigError(self.file, "must be a list of integers", field=name, value=val)
        for c in val:
            if not lo <= c <= hi:
                raise ConfigError(self.file, f"each must be between {lo} and {hi}", field=name,
                                  value=c)
        return list(val)

    def choice(self, t: dict[str, Any], name: str, options: tuple[Any, ...], default: Any) -> Any:
        val = t.get(self._key(name), default)
        if val not in options or isinstance(val, bool):
            raise ConfigError(self.file, f"must be one of {', '.join(map(str, options))}",
                              field=name, value=val)
        return val

    def path(self, t: dict[str, Any], name: str, base: Path | None, *,
             default: Path | None = None) -> Any:
        val = t.get(self._key(name))
        if val is None:
            return default
        if not isinstance(val, str) or not val:
            raise ConfigError(self.file, "must be a non-empty path string", field=name, value=val)
        p = Path(val)
        return p if p.is_absolute() or base is None else base / p


# --- permissions ---------------------------------------------------------------------------------

# On the agent the config is root:edge-agent 0640: the service (user and group edge-agent, see
# deploy/systemd/edge-agent.service) reads it through its group and cannot rewrite it; provision
# writes it 0600 on the engineer's laptop, where no service needs to read it.
SERVICE_GROUP = "edge-agent"


def check_permissions(cfg: AgentConfig) -> list[str]:
    """Warnings about who can read the config's secrets; ConfigError when one is world-readable.

    Refuses: an inline password, a password file or a client key readable by "other".
    Warns: the same readable by a group other than edge-agent or this process's own group.
    """
    warnings: list[str] = []
    guarded: list[tuple[Path, str]] = []
    if cfg.mqtt.password is not None:
        guarded.append((cfg.path, "mqtt.password"))
    if cfg.mqtt.password_file is not None:
        guarded.append((cfg.mqtt.password_file, "mqtt.password_file"))
    if cfg.mqtt.key_file is not None:
        guarded.append((cfg.mqtt.key_file, "mqtt.key_file"))
    for path, what in guarded:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError as e:
            warnings.append(f"{path}: cannot check permissions ({e.strerror})")
            continue
        if mode & stat.S_IROTH or mode & stat.S_IWOTH:
            raise ConfigError(path, f"holds a secret ({what}) but is world-accessible: run "
                                    f"chmod o-rwx {path}", field=what, value=oct(mode))
        if mode & stat.S_IRGRP and not _is_service_group(os.stat(path).st_gid):
            warnings.append(f"{path}: holds a secret ({what}) and is readable by group "
                            f"{_group_name(os.stat(path).st_gid)} (mode {oct(mode)}): "
                            f"chgrp {SERVICE_GROUP} {path}, or chmod g-r")
    return warnings


def _group_name(gid: int) -> str:
    import grp  # POSIX only; the agent runs on Linux (Termux included)

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _is_service_group(gid: int) -> bool:
    """The group the service reads its config through: edge-agent, or this process's own."""
    return gid == os.getegid() or _group_name(gid) == SERVICE_GROUP


# --- writing -------------------------------------------------------------------------------------

def _toml_value(val: object) -> str:
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, int | float):
        return repr(val)
    if isinstance(val, Secret):
        return _toml_value(val.reveal())
    if isinstance(val, Path):
        return _toml_value(str(val))
    if isinstance(val, str):
        out = val.replace("\\", "\\\\").replace('"', '\\"')
        out = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in out)
        return f'"{out}"'
    if isinstance(val, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in val) + "]"
    raise TypeError(f"cannot write {type(val).__name__} to TOML")


def dump_toml(cfg: AgentConfig) -> str:
    """TOML text that load_config reads back to an equal config (None fields are left out)."""
    lines = ["# edge-agent config: `edge-agent validate` checks it; docs/config.md explains it.",
             "# It may hold the MQTT password: keep it mode 0600/0640, owner root:edge-agent."]
    for name in ("agent", "wifi", "ble", "gnss", "heatmap", "buffer", "mqtt"):
        section = getattr(cfg, name)
        lines.append("")
        lines.append(f"[{name}]")
        for f in fields(section):
            val = getattr(section, f.name)
            if val is None or (name == "mqtt" and val == "" and f.name != "url"):
                continue
            lines.append(f"{f.name} = {_toml_value(val)}")
    return "\n".join(lines) + "\n"
