"""Command-line options shared by the commands that read live radios (`record`, `run`), so the
same thing has the same name and the same accepted forms everywhere."""

from __future__ import annotations

import argparse

from edge_agent.errors import InputError

WIFI_MODES = ("monitor", "iw", "termux")
MAX_PORT = 65535


def parse_host_port(value: str, option: str, default_port: int | None = None) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6] or [IPv6]:PORT (PORT 1-65535; HOST alone takes default_port).

    Anything else is a one-line InputError naming the option and the value.
    """
    form = "HOST:PORT" if default_port is None else "HOST or HOST:PORT"
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InputError("command line", f"must be {form} ([IPv6]:PORT)", field=option,
                             value=value)
        port = rest[1:] if rest else ""
    elif text.count(":") > 1:  # a bare IPv6 address: no port in it
        host, port = text, ""
    else:
        host, _, port = text.partition(":")
        if text.endswith(":"):
            port = "-"  # "host:" is a port left out by mistake
    if not host:
        raise InputError("command line", f"must be {form}: no host", field=option, value=value)
    if not port:
        if default_port is None:
            raise InputError("command line", f"must be {form}: no port", field=option,
                             value=value)
        return host, default_port
    if not port.isdigit() or not 0 < int(port) <= MAX_PORT:
        raise InputError("command line", f"must be {form} with PORT 1-{MAX_PORT}",
                         field=option, value=value)
    return host, int(port)


def add_live_source_options(p: argparse.ArgumentParser, *, from_config: bool,
                            allow_off: bool = False) -> None:
    """--iface, --wifi-mode, --ble/--ble-adapter, --gnss-serial/-gpsd/-termux, --gnss-baud.

    from_config: the command also reads agent.toml, whose values these override.
    """
    cfg = "; default from --config" if from_config else ""
    p.add_argument("--iface", help="Wi-Fi interface (monitor mode: e.g. wlan1; iw: wlan0)")
    modes = (*WIFI_MODES, "off") if allow_off else WIFI_MODES
    p.add_argument("--wifi-mode", choices=modes,
                   help="Wi-Fi capture: monitor (raw frames, hopping channels, needs "
                        "CAP_NET_RAW; the default with --iface), iw (managed-mode scans of "
                        "--iface), termux (Android scan info, no --iface)"
                        + (", off" if allow_off else "") + cfg)
    p.add_argument("--ble", action=argparse.BooleanOptionalAction, default=None,
                   help="scan BLE beacons through bleak" + (" (default from --config)"
                                                            if from_config else ""))
    p.add_argument("--ble-adapter", metavar="HCI",
                   help="BlueZ adapter for --ble, e.g. hci1"
                        + (" (default from --config, else the system's)" if from_config
                           else " (default: the system's)"))
    gnss = p.add_mutually_exclusive_group()
    gnss.add_argument("--gnss-serial", metavar="PORT",
                      help="GNSS receiver on a serial port, e.g. /dev/ttyACM0, or a pyserial "
                           "URL such as socket://phone:11123")
    gnss.add_argument("--gnss-gpsd", metavar="HOST[:PORT]",
                      help="GNSS from gpsd, e.g. localhost or localhost:2947 ([IPv6]:PORT)")
    gnss.add_argument("--gnss-termux", action="store_true", default=None,
                      help="GNSS from an Android phone's GPS through Termux:API "
                           "(termux-location)")
    p.add_argument("--gnss-baud", type=int, default=None, metavar="BAUD",
                   help="baud rate for --gnss-serial (default 9600)")
