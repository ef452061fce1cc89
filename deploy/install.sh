#!/usr/bin/env bash
# Install edge-agent on Raspberry Pi OS (Debian 12 "bookworm", Python 3.11) as a systemd service.
#
#   sudo deploy/install.sh                      # from a checkout: venv in /opt/edge-agent/venv
#   sudo deploy/install.sh --start              # ... and start it now (needs /etc/edge-agent/agent.toml)
#   deploy/install.sh --destdir /tmp/root --no-system --deps-from "$(.venv/bin/python -c \
#       'import sysconfig; print(sysconfig.get_path("purelib"))')"     # CI: throwaway root, offline
#   deploy/install.sh --wheel dist/edge_agent-0.1.0-py3-none-any.whl   # a built wheel, not the tree
#
# Layout: /opt/edge-agent/venv (the program; /usr/local/bin/edge-agent links to it),
# /etc/edge-agent (config, site.json, TLS; root:edge-agent 0750), /var/lib/edge-agent (the outbox;
# edge-agent 0750), /etc/systemd/system/edge-agent.service.
# Idempotent: re-running upgrades the program and never overwrites agent.toml or site.json.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
DESTDIR=""
PREFIX="/opt/edge-agent"
PYTHON="python3"
SYSTEM=1            # create the user, systemctl daemon-reload/enable
START=0
SYSTEM_SITE=0       # venv --system-site-packages (reuse apt's python3-numpy on a slow Pi)
DEPS_FROM=""        # offline: reuse an existing site-packages for the dependencies
WHEEL=""            # install this built wheel (pip) instead of the checkout's sources
USER_NAME="edge-agent"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
    --source) SRC="${2:?--source needs a directory}"; shift 2 ;;
    --no-system) SYSTEM=0; shift ;;
    --start) START=1; shift ;;
    --system-site-packages) SYSTEM_SITE=1; shift ;;
    --deps-from) DEPS_FROM="${2:?--deps-from needs a site-packages directory}"; shift 2 ;;
    --wheel) WHEEL="${2:?--wheel needs a .whl file}"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 2; }

[ -f "$SRC/pyproject.toml" ] && [ -d "$SRC/edge_agent" ] || die "no edge-agent source in $SRC"
if [ -n "$WHEEL" ]; then
  case "$WHEEL" in *.whl) ;; *) die "--wheel $WHEEL is not a .whl file" ;; esac
  [ -f "$WHEEL" ] || die "--wheel $WHEEL does not exist"
  WHEEL="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON is older than 3.11 (tomllib): use Raspberry Pi OS bookworm or newer"
if [ -z "$DESTDIR" ] && [ "$SYSTEM" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (sudo), or use --destdir DIR --no-system for a throwaway root"
fi
if [ -n "$DESTDIR" ] && [ "$SYSTEM" = 1 ]; then
  # A staging root: the user, ownership and systemctl belong to the target system's first boot.
  say "--destdir: not creating the user or touching systemd on this machine (as --no-system)"
  SYSTEM=0
fi
ROOT="${DESTDIR%/}"
OPT="$ROOT$PREFIX"
ETC="$ROOT/etc/edge-agent"
VAR="$ROOT/var/lib/edge-agent"
UNIT_DIR="$ROOT/etc/systemd/system"

# --- user ------------------------------------------------------------------------------------------
if [ "$SYSTEM" = 1 ]; then
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    say "creating system user $USER_NAME"
    useradd --system --home-dir /var/lib/edge-agent --no-create-home \
            --shell /usr/sbin/nologin "$USER_NAME"
  fi
  for g in dialout bluetooth; do
    getent group "$g" >/dev/null && usermod -a -G "$g" "$USER_NAME"
  done
fi
owner() {  # owner USER:GROUP PATH... (only when installing for real)
  if [ "$SYSTEM" = 1 ]; then chown "$@"; fi
}

# --- folders ---------------------------------------------------------------------------------------
install -d -m 0755 "$OPT" "$OPT/bin" "$OPT/docs" "$UNIT_DIR"
install -d -m 0750 "$ETC" "$VAR"
owner "root:$USER_NAME" "$ETC"
owner "$USER_NAME:$USER_NAME" "$VAR"

# --- the program in a virtualenv -------------------------------------------------------------------
VENV="$OPT/venv"
venv_args=()
[ "$SYSTEM_SITE" = 1 ] && venv_args+=(--system-site-packages)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
fi
# Build from a clean copy so the checkout gets no build/ or egg-info droppings.
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
tar -C "$SRC" --exclude='__pycache__' --exclude='*.pyc' -cf - pyproject.toml README.md edge_agent \
    firmware_sim 2>/dev/null | tar -C "$STAGE" -xf -
pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
if [ -n "$DEPS_FROM" ]; then
  [ -d "$DEPS_FROM" ] || die "--deps-from $DEPS_FROM is not a directory"
fi
if [ -n "$DEPS_FROM" ] && [ -n "$WHEEL" ]; then
  # Offline with a wheel: pip installs the program (package data, console script, metadata)
  # without an index; the dependencies come from $DEPS_FROM through a .pth path line.
  site_dir="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  echo "$DEPS_FROM" > "$site_dir/zz_edge_agent_deps.pth"
  rm -rf "$site_dir/edge_agent" "$site_dir/firmware_sim"   # a previous --deps-from copy
  say "installing $(basename "$WHEEL") (offline, dependencies from $DEPS_FROM)"
  pip_install --no-index --no-deps --force-reinstall "$WHEEL"
elif [ -n "$DEPS_FROM" ]; then
  # Offline (CI, air-gapped plants): the dependencies come from an existing site-packages (a
  # path line in a .pth file) and edge-agent's own pure-Python packages are copied in, with a
  # console script: no index, no downloads, no build backend (setuptools/wheel) needed.
  site_dir="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  echo "$DEPS_FROM" > "$site_dir/zz_edge_agent_deps.pth"
  say "installing edge-agent (offline, dependencies from $DEPS_FROM)"
  rm -rf "$site_dir/edge_agent" "$site_dir/firmware_sim"
  cp -R "$STAGE/edge_agent" "$STAGE/firmware_sim" "$site_dir/"
  printf '%s\n' "#!$PREFIX/venv/bin/python" "import sys" "from edge_agent.cli import main" \
    "sys.exit(main())" > "$VENV/bin/edge-agent"
  chmod 0755 "$VENV/bin/edge-agent"
else
  say "installing edge-agent and its dependencies into $VENV"
  pip_install --upgrade "${WHEEL:-$STAGE}"
fi
install -m 0755 "$SRC/deploy/systemd/edge-agent-monitor-iface" "$OPT/bin/"
ln -sf "$PREFIX/venv/bin/edge-agent" "$OPT/bin/edge-agent"
# On PATH for the engineer (docs/install.md types bare `edge-agent ...`); the service uses the
# full path. A symlink, so an upgrade of the venv needs nothing here.
install -d -m 0755 "$ROOT/usr/local/bin"
ln -sfn "$PREFIX/bin/edge-agent" "$ROOT/usr/local/bin/edge-agent"
for d in install.md config.md survey-and-calibration.md troubleshooting.md privacy.md; do
  [ -f "$SRC/docs/$d" ] && install -m 0644 "$SRC/docs/$d" "$OPT/docs/"
done

# --- config (never overwritten) --------------------------------------------------------------------
install -m 0640 "$SRC/deploy/agent.toml.example" "$ETC/agent.toml.example"
owner "root:$USER_NAME" "$ETC/agent.toml.example"
if [ -f "$ETC/agent.toml" ]; then
  chmod o-rwx "$ETC/agent.toml"   # it may hold the MQTT password
  owner "root:$USER_NAME" "$ETC/agent.toml"
  say "kept existing $ETC/agent.toml"
fi
if [ ! -f "$ROOT/etc/default/edge-agent" ]; then
  install -d -m 0755 "$ROOT/etc/default"
  printf '%s\n' "# Set to the USB Wi-Fi adapter to switch it to monitor mode before each start." \
    "#EDGE_AGENT_MONITOR_IFACE=wlan1" > "$ROOT/etc/default/edge-agent"
fi

# --- the service -----------------------------------------------------------------------------------
sed "s#/opt/edge-agent#$PREFIX#g" "$SRC/deploy/systemd/edge-agent.service" \
  > "$UNIT_DIR/edge-agent.service"
chmod 0644 "$UNIT_DIR/edge-agent.service"
if [ "$SYSTEM" = 1 ] && [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl enable edge-agent.service >/dev/null
  if [ "$START" = 1 ]; then
    [ -f "$ETC/agent.toml" ] || die "no $ETC/agent.toml yet: run edge-agent provision, copy it"
    systemctl restart edge-agent.service
  fi
fi

# Run it through the venv's python: under --destdir the script's #! names the final path.
version="$("$VENV/bin/python" "$VENV/bin/edge-agent" --version)" \
  || die "the installed edge-agent does not run"
say "installed $version in ${ROOT:-}$PREFIX; config in $ETC," \
    "data in $VAR; next: docs/install.md step 3 (provision)"
