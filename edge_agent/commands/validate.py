"""`edge-agent validate`: check a site.json or an agent config; errors name the field and value."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.config import check_permissions, load_config
from edge_agent.errors import ConfigError, InputError
from edge_agent.fusion.aisle_coverage import aisles_cover_site, open_ground_zones
from edge_agent.fusion.doors import doors_from_aisles
from edge_agent.site import Site, load_site


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "validate", help="check site.json or agent.toml; exit 2 on the first error",
        description="Validate a site survey (.json) or an agent config (.toml). A config is also "
                    "checked for secrets readable by others and for the site file it names. "
                    "Errors name the file, the field and the value (exit code 2); warnings do "
                    "not fail.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="site.json or config .toml files")
    p.set_defaults(func=run)


def site_warnings(site: Site) -> list[str]:
    """Things that load but are probably survey mistakes."""
    out = []
    for i, ap in enumerate(site.wifi_aps):
        if not site.bounds.contains(ap.x, ap.y):
            out.append(f"wifi_aps[{i}] ({ap.bssid}) at ({ap.x}, {ap.y}) is outside bounds")
    for i, b in enumerate(site.ble_beacons):
        if not site.bounds.contains(b.x, b.y):
            out.append(f"ble_beacons[{i}] ({b.beacon_id}) at ({b.x}, {b.y}) is outside bounds")
    ids = [b.beacon_id for b in site.ble_beacons]
    for d in sorted({i for i in ids if ids.count(i) > 1}):
        out.append(f"ble_beacons: {d} is listed more than once")
    if not site.wifi_aps and not site.ble_beacons:
        out.append("no wifi_aps and no ble_beacons: only GNSS can position the agent")
    if site.aisles:
        covered, cov = aisles_cover_site(site)
        if not covered:
            shares = ", ".join(f"{k} {v:.0%}" for k, v in cov.items())
            route, ground = open_ground_zones(site)
            out.append(f"aisles: they leave a zone uncovered (near an aisle: {shares}); " + (
                f"the agent tracks {', '.join(ground)} as open ground, off the aisles "
                "(docs/fusion.md, Open ground)" if route else
                "the agent tracks in 2-D, without the aisle filter (docs/fusion.md, Two modes)"))
        if (any(z.indoor for z in site.zones) and any(not z.indoor for z in site.zones)
                and not doors_from_aisles(site)):
            out.append("doors: no aisle crosses from an indoor zone into an outdoor one, so the "
                       "agent knows no door and takes the whole wall as solid; draw the aisles "
                       "through the dock doors (docs/survey-and-calibration.md)")
    return out


def _aisles_line(site: Site) -> str:
    if not site.aisles:
        return "no aisles: 2-D tracking"
    route, ground = open_ground_zones(site)
    doors = doors_from_aisles(site)
    where = "".join(f" ({d.x_m:.1f}, {d.y_m:.1f})" for d in doors[:8])
    more = f" and {len(doors) - 8} more" if len(doors) > 8 else ""
    mode = ("2-D tracking" if not route else "aisle filter" + (
        f" + open ground in {', '.join(ground)}" if ground else ""))
    return (f"{len(site.aisles)} aisles: {mode}; "
            f"{len(doors)} door{'' if len(doors) == 1 else 's'}{where}{more}")


def validate_file(path: Path) -> tuple[str, list[str]]:
    """(summary, warnings) for one file; raises InputError subclasses on the first error."""
    if path.suffix == ".toml":
        cfg = load_config(path)
        warnings = check_permissions(cfg)
        site = load_site(cfg.agent.site_file)
        warnings += [f"{cfg.agent.site_file}: {w}" for w in site_warnings(site)]
        if cfg.mqtt.site and cfg.mqtt.site != site.site:
            warnings.append(f"{path}: mqtt.site {cfg.mqtt.site!r} differs from the site.json "
                            f"site {site.site!r}")
        for name in ("ca_file", "cert_file", "key_file", "password_file"):
            f = getattr(cfg.mqtt, name)
            if f is not None and not Path(f).exists():
                raise ConfigError(path, "file not found", field=f"mqtt.{name}", value=str(f))
        return (f"{path}: ok (agent {cfg.agent.id}, site {site.site}, "
                f"broker {cfg.mqtt.url or 'none: windows stay in the outbox'})", warnings)
    if path.suffix != ".json" and not path.read_bytes().lstrip()[:1] == b"{":
        raise InputError(path, "cannot tell the kind: name it *.json (site) or *.toml (config)")
    site = load_site(path)
    return (f"{path}: ok (site {site.site}, {len(site.wifi_aps)} APs, "
            f"{len(site.ble_beacons)} beacons, {len(site.zones)} zones, {_aisles_line(site)})",
            site_warnings(site))


def run(args: argparse.Namespace) -> int:
    for path in args.files:
        summary, warnings = validate_file(path)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(summary)
    return 0
