#!/usr/bin/env bash
# Re-run every benchmark table of BENCHMARKS.md (see benchmarks/README.md). Hours on 2 CPU cores.
# Needs trained runs yo, sw, de in the workdir (edgeadapt train --lang yo / sw / de) and the data directory.
set -euo pipefail
DATA="${EDGEADAPT_DATA:-../shared/data}"
WORK="${BENCH_WORK:-benchmarks/work}"

edgeadapt bench edge --runs yo --runs sw --threads 1 --threads 2 --repeats 100 --seq-len 384 --work "$WORK"
edgeadapt bench accuracy --run yo --run sw --run de \
    --data afriqa:yo:test --data afriqa:sw:test --data tydiqa:sw:dev --xquad-all --data-dir "$DATA" --work "$WORK"
edgeadapt bench phone --run yo --run sw --data-dir "$DATA" --work "$WORK/phone"
for lang in yo sw; do
    edgeadapt bench ablations --lang "$lang" --max-steps 140 --data-dir "$DATA"
    edgeadapt bench ablations --lang "$lang" --only full --seeds 1 --seeds 2 --seeds 3 --max-steps 140 --data-dir "$DATA"
done
edgeadapt bench pawsx --work "$WORK/pawsx" --data-dir "$DATA"
