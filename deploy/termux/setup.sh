#!/data/data/com.termux/files/usr/bin/bash
# edge-agent on an Android phone with Termux (F-Droid build) and Termux:API.
#   1. Install Termux, Termux:API and Termux:Boot from F-Droid (the Play Store builds are stale).
#   2. Open Termux:API once and grant Location ("Allow all the time") so scans return results.
#   3. In Termux: bash setup.sh ; then copy the provisioned agent.toml to ~/.config/edge-agent/.
# Wi-Fi comes from `termux-wifi-scaninfo` (managed-mode scans; no monitor mode on phones), GNSS
# from `termux-location`. BLE needs a helper app and is off by default.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
pkg update -y
# python: 3.11+ (tomllib); numpy from Termux's repo (building it with pip on a phone takes hours)
pkg install -y python python-numpy termux-api openssl
python - <<'PY'
import sys
sys.exit("edge-agent needs Python 3.11+" if sys.version_info < (3, 11) else 0)
PY
VENV="$HOME/.local/share/edge-agent/venv"
python -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install -q "$SRC"
mkdir -p "$HOME/.config/edge-agent" "$HOME/.local/share/edge-agent"
chmod 700 "$HOME/.config/edge-agent"
[ -f "$HOME/.config/edge-agent/agent.toml" ] || \
  sed -e 's/^mode = "monitor".*/mode = "termux"/' -e 's/^mode = "serial".*/mode = "termux"/' \
      -e '/^\[ble\]/,/^\[/ s/^enabled = true.*/enabled = false/' \
      -e '/^\[gnss\]/,/^\[/ s/^enabled = false.*/enabled = true/' \
      -e 's#^data_dir = .*#data_dir = "'"$HOME"'/.local/share/edge-agent"#' \
      "$SRC/deploy/agent.toml.example" > "$HOME/.config/edge-agent/agent.toml"
chmod 600 "$HOME/.config/edge-agent/agent.toml"
mkdir -p "$HOME/.termux/boot"
install -m 0755 "$SRC/deploy/termux/start-edge-agent" "$HOME/.termux/boot/start-edge-agent"
termux-wifi-scaninfo >/dev/null || echo "setup: termux-wifi-scaninfo failed: grant Location to Termux:API"
termux-location -p gps -r last >/dev/null || echo "setup: termux-location failed: grant Location to Termux:API"
echo "setup: done. Edit ~/.config/edge-agent/agent.toml, then: ~/.termux/boot/start-edge-agent"
