#!/usr/bin/env bash
# Install edgeadapt with everything into a fresh venv and run the linter and the test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EDGEADAPT_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
# torch is pinned to the CPU wheel; an unpinned torch pulls a CUDA build of several GB.
"$PY" -m pip install --quiet "torch==2.13.0" -e ".[train,dev,verify]"
if [ -z "${EDGEADAPT_SHARED_DATA:-}" ] && [ -d ../shared/data ]; then
  EDGEADAPT_SHARED_DATA="$(cd ../shared/data && pwd)"
  export EDGEADAPT_SHARED_DATA
fi
"$PY" -m ruff check edgeadapt tests
# pytest exits 5 when it collected no test: with `set -e` that fails the run, as it should.
"$PY" -m pytest -q "$@"
