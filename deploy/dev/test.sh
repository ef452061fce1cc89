#!/usr/bin/env bash
# The whole test suite, with its own set-up: lint, types, then pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/dev/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
