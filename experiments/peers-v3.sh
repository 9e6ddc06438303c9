#!/usr/bin/env bash
# The two adilsammar peers (3,762 and 4,838 params) on test seeds 1-5: first with their own
# published recipe at their own epochs (15 and 12), then with nas_plain_5k's recipe at 20
# epochs, the suite's best small-model recipe. Resumable: a (member, recipe, seed) that already
# has a row in $RESULTS is skipped (--resume), so the same command continues after an
# interruption. One run at a time (JOBS=2 for two), one thread each; rows land in $RESULTS as each seed ends.
#   usage: experiments/peers-v3.sh [SEEDS...]   (default seeds 1-5; EXTRA: more flags)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/runs.csv}
seeds=${*:-1 2 3 4 5}
failed=0
run() {  # member [flags...]
  local member=$1; shift
  for seed in $seeds; do
    while (( $(jobs -rp | wc -l) >= ${JOBS:-1} )); do wait -n || failed=1; done
    # shellcheck disable=SC2086  # EXTRA is flags, split on purpose
    "$PY" -m benchmarks mnist --model "$member" --seeds "$seed" "$@" --threads 1 \
      --progress false --results "$RESULTS" --resume ${EXTRA:-} &
  done
  while (( $(jobs -rp | wc -l) > 0 )); do wait -n || failed=1; done
}
run peer_adilsammar_4k
run peer_adilsammar_5k
run peer_adilsammar_4k --recipe nas_plain_5k --epochs 20
run peer_adilsammar_5k --recipe nas_plain_5k --epochs 20
exit $failed
