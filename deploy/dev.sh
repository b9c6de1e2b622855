#!/usr/bin/env bash
# Set up (once) and use abduce from a checkout.
#
#   bash deploy/dev.sh demo [--out DIR]   the main job: a campaign against a simulated microscope
#   bash deploy/dev.sh test [PYTEST ARGS] the lints, then the test suite (fast tier; add `-m slow` for the slow tier)
#   bash deploy/dev.sh lint               the lints alone
#   bash deploy/dev.sh abduce ARGS...     any abduce command
#
# Creates .venv with Python 3.11+ and installs the CPU build of torch 2.13.0
# *before* anything that depends on torch (any other torch requirement pulls a
# CUDA build of several GB), then abduce itself in editable mode. Re-runs
# reinstall only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${ABDUCE_VENV:-.venv}"
TORCH="torch==2.13.0"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.abduce-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "$TORCH"
    "$VENV/bin/python" -m pip install --quiet -e '.[test,bluesky,nsid]'
    rm -f "$VENV"/.abduce-installed-*
    touch "$stamp"
fi

# Measured on the 2-core machines (README, "Speed"): passive OpenMP waits.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

# The architecture's contracts (pyproject.toml, [tool.importlinter]) and the style (ruff check, ruff format).
lint() {
    "$VENV/bin/lint-imports" --no-cache >/dev/null || { "$VENV/bin/lint-imports" --no-cache; exit 1; }
    "$VENV/bin/ruff" check --quiet . || { echo "ruff check failed (fix, or: ruff check --fix .)" >&2; exit 1; }
    "$VENV/bin/ruff" format --check --quiet . || { echo "ruff format --check failed (run: ruff format .)" >&2; exit 1; }
}

cmd="${1:-}"
shift || true
case "$cmd" in
    demo) exec "$VENV/bin/abduce" demo "$@" ;;
    lint) lint ;;
    test)
        lint  # seconds, before minutes of tests
        exec "$VENV/bin/python" -m pytest "$@" ;;
    abduce) exec "$VENV/bin/abduce" "$@" ;;
    *) echo "usage: bash deploy/dev.sh {demo|test|lint|abduce} [ARGS...]" >&2; exit 2 ;;
esac
