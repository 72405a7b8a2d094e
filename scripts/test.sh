#!/usr/bin/env bash
# Install everything (Debian packages, .venv) and run the whole test suite, real servers included.
# Extra arguments go to pytest, e.g. scripts/test.sh -m cyrus
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
exec .venv/bin/python -m pytest -q "$@"
