#!/usr/bin/env bash
# The static gates, in the order that fails fastest: lint, format, layering, types.
# Config for each is in pyproject.toml. Needs the .venv of scripts/setup.sh test.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
echo "gates: ruff check";    $bin/ruff check --quiet .
echo "gates: ruff format";   $bin/ruff format --check --quiet .
echo "gates: import-linter"
out=$($bin/lint-imports --no-cache 2>&1) || { echo "$out"; exit 1; }
echo "gates: mypy";          $bin/mypy --no-error-summary
echo "gates: passed"
