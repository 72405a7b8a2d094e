#!/usr/bin/env bash
# Install everything (Debian packages, .venv), run the gates (ruff, mypy, import-linter), then
# the whole test suite, real servers included.
# Extra arguments go to pytest, e.g. scripts/test.sh -m cyrus (the gates still run first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/gates.sh
exec .venv/bin/python -m pytest -q "$@"
