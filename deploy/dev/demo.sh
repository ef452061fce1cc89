#!/usr/bin/env bash
# The README's first command: set up (Debian packages + .venv), then run `edge-agent demo`.
# Simulates 3 forklifts, replays them through the agent into a private Mosquitto, serves the
# dashboard and prints its URL; Ctrl-C stops everything. Extra arguments go to `edge-agent demo`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/dev/setup.sh
exec .venv/bin/edge-agent demo "$@"
