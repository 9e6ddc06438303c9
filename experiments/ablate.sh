#!/usr/bin/env bash
# Train one base recipe in several variants, each on the same seeds (paired comparisons), JOBS
# runs at a time; one row per run in $RESULTS. The experiments/*.sh scripts call it;
# `python -m benchmarks docs` turns the CSV into a table (the `ablation` table).
#   usage: BASE="--model ARCH --lr ..." RESULTS=results/x.csv SEEDS="1 2 3" \
#          experiments/ablate.sh "VARIANT FLAGS" ...
#   JOBS=2 runs at a time; EXTRA="--epochs 1 --train-subset 500" appends flags, for a quick try.
# Resumable: a run whose row is already in $RESULTS is skipped (--resume), so the same command
# goes on where an interrupted one stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
read -ra base <<< "$(echo $BASE)"  # flags split on white space, newlines included; no globs
read -ra extra <<< "${EXTRA:-}"
failed=0
for seed in ${SEEDS:-1 2 3}; do
  for variant in "$@"; do
    while (( $(jobs -rp | wc -l) >= ${JOBS:-2} )); do wait -n || failed=1; done
    read -ra flags <<< "$variant"
    "$PY" -m benchmarks mnist "${base[@]}" --results "$RESULTS" --seeds "$seed" \
      --resume "${flags[@]}" "${extra[@]}" &
  done
done
while (( $(jobs -rp | wc -l) > 0 )); do wait -n || failed=1; done
exit $failed
