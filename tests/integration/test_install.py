"""deploy/install.sh in a throwaway root (offline, seconds) and the systemd unit's verification."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from edge_agent.config import load_config

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
UNIT = REPO / "deploy" / "systemd" / "edge-agent.service"


def run_install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--destdir", str(root), "--no-system", "--python", sys.executable,
         "--deps-from", sysconfig.get_path("purelib"), *extra],
        capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    root = tmp_path_factory.mktemp("root")
    proc = run_install(root)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "installed edge-agent" in proc.stdout
    return root


def test_layout_and_modes(installed: Path) -> None:
    opt, etc, var = installed / "opt/edge-agent", installed / "etc/edge-agent", \
        installed / "var/lib/edge-agent"
    assert (opt / "venv/bin/python").exists()
    assert os.access(opt / "bin/edge-agent-monitor-iface", os.X_OK)
    assert os.readlink(opt / "bin/edge-agent") == "/opt/edge-agent/venv/bin/edge-agent"
    # docs/install.md types bare `edge-agent`: on PATH through /usr/local/bin.
    assert os.readlink(installed / "usr/local/bin/edge-agent") == "/opt/edge-agent/bin/edge-agent"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o750
    assert stat.S_IMODE(var.stat().st_mode) == 0o750
    assert (installed / "etc/systemd/system/edge-agent.service").exists()
    assert (installed / "etc/default/edge-agent").exists()


def test_installed_program_runs_from_the_venv_not_the_checkout(installed: Path) -> None:
    py = installed / "opt/edge-agent/venv/bin/python"
    # cwd away from the checkout: `python -c` puts the cwd first on sys.path.
    out = subprocess.run([str(py), "-c", "import edge_agent; print(edge_agent.__file__)"],
                         capture_output=True, text=True, check=True, cwd=installed).stdout
    assert out.startswith(str(installed / "opt/edge-agent/venv"))
    script = installed / "opt/edge-agent/venv/bin/edge-agent"
    ver = subprocess.run([str(py), str(script), "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert ver.startswith("edge-agent ")


def test_example_config_is_valid_toml_for_the_agent(installed: Path) -> None:
    example = installed / "etc/edge-agent/agent.toml.example"
    assert stat.S_IMODE(example.stat().st_mode) == 0o640
    cfg = load_config(example)
    assert cfg.agent.id == "fl-01" and cfg.mqtt.url.startswith("mqtts://")


def test_rerun_keeps_the_config_and_closes_its_permissions(installed: Path) -> None:
    cfg = installed / "etc/edge-agent/agent.toml"
    cfg.write_text('[agent]\nid = "fl-09"\nsite_file = "site.json"\n')
    cfg.chmod(0o644)
    proc = run_install(installed)
    assert proc.returncode == 0, proc.stderr
    assert "kept existing" in proc.stdout
    assert cfg.read_text().startswith('[agent]\nid = "fl-09"')
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640


def test_bad_option_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and "unknown option --frobnicate" in proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path) -> None:
    # The unit names its final paths (/opt/edge-agent/...); point them at the throwaway root so
    # that verify can check the executables exist. Dependencies (sysinit.target, ...) may be
    # missing in a container: --recursive-errors=no checks this unit only.
    text = (installed / "etc/systemd/system/edge-agent.service").read_text()
    unit = tmp_path / "edge-agent.service"
    unit.write_text(text.replace("/opt/edge-agent", str(installed / "opt/edge-agent")))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no",
                           str(unit)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / "edge-agent.service"
    unit.write_text(UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no",
                           str(unit)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 or "sometimes" in proc.stderr


def test_unit_keeps_only_the_monitor_mode_capabilities() -> None:
    lines = dict(ln.split("=", 1) for ln in UNIT.read_text().splitlines()
                 if "=" in ln and not ln.startswith("#") and not ln.startswith("DeviceAllow")
                 and not ln.startswith("SystemCallFilter"))
    assert lines["CapabilityBoundingSet"] == "CAP_NET_RAW CAP_NET_ADMIN"
    assert lines["AmbientCapabilities"] == "CAP_NET_RAW CAP_NET_ADMIN"
    assert lines["User"] == "edge-agent" and lines["NoNewPrivileges"] == "yes"
    assert lines["ProtectSystem"] == "strict" and lines["Restart"] == "on-failure"
    assert lines["ReadWritePaths"] == "/var/lib/edge-agent"


def _build_wheel(out: Path, tmp: Path) -> Path:
    """The project's wheel, built offline from a copy of the checkout (no build/ droppings)."""
    setuptools_major = int(importlib.metadata.version("setuptools").split(".")[0])
    assert setuptools_major >= 77, "pyproject's license = \"MIT\" needs setuptools>=77 here: " \
        "pip install 'setuptools>=77' (the build runs without isolation, offline)"
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for pkg in ("edge_agent", "firmware_sim"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=ignore)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (wheel,) = out.glob("edge_agent-*.whl")
    return wheel


def test_wheel_install_has_package_data_and_the_console_script(tmp_path: Path) -> None:
    # The real pip path: pip installs the wheel (no index, dependencies from this venv), makes
    # the console script from [project.scripts] and the package data from [package-data].
    wheel = _build_wheel(tmp_path / "dist", tmp_path)
    root = tmp_path / "root"
    proc = run_install(root, "--wheel", str(wheel))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"installing {wheel.name}" in proc.stdout
    venv = root / "opt/edge-agent/venv"
    script = venv / "bin/edge-agent"
    assert "from edge_agent.cli import main" in script.read_text()   # pip's console script
    ver = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout
    assert ver.strip() == "edge-agent 0.1.0"
    code = ("import importlib.metadata as m, importlib.resources as r; "
            "print(m.version('edge-agent')); "
            "print(r.files('edge_agent').joinpath('dashboard/static/index.html').is_file()); "
            "import edge_agent; print(edge_agent.__file__)")
    out = subprocess.run([str(venv / "bin/python"), "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out[:2] == ["0.1.0", "True"]
    assert out[2].startswith(str(venv))   # the wheel's copy, not the checkout
    static = "lib/python3*/site-packages/edge_agent/dashboard/static/*"
    statics = {p.name for p in venv.glob(static)}
    assert {"index.html", "app.js", "style.css"} <= statics


def test_wheel_option_rejects_what_is_not_a_wheel(tmp_path: Path) -> None:
    proc = run_install(tmp_path / "root", "--wheel", str(tmp_path / "missing.tar.gz"))
    assert proc.returncode == 2 and "is not a .whl file" in proc.stderr
