#!/usr/bin/env bash
# The two adilsammar peers (3,762 and 4,838 params) on test seeds 1-5: first with their own
# published recipe at their own epochs (15 and 12), then with nas_plain_5k's recipe at 20
# epochs, the suite's best small-model recipe. Resumable: a (member, recipe, seed) that already
# has a row in $RESULTS is skipped, so the same command continues after an interruption. One
# run at a time (JOBS=2 for two), one thread each; rows land in $RESULTS as each seed ends.
#   usage: experiments/peers-v3.sh [SEEDS...]   (default seeds 1-5; EXTRA: more flags)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/runs.csv}
seeds=${*:-1 2 3 4 5}
# A row's recipe shows in its epochs: the peers' own are 15 and 12, nas_plain_5k's run 20.
todo() {  # member epochs -> the seeds without a row of that member at that many epochs
  "$PY" - "$RESULTS" "$1" "$2" $seeds <<'PY'
import csv, sys
path, member, epochs, *seeds = sys.argv[1:]
try:
    with open(path, newline="", encoding="utf-8-sig") as f:
        done = {r["seed"] for r in csv.DictReader(f)
                if r["model"] == member and r["epochs"] == epochs}
except FileNotFoundError:
    done = set()
print(" ".join(s for s in seeds if s not in done))
PY
}
failed=0
run() {  # member epochs [flags...]
  local member=$1 epochs=$2; shift 2
  local left; left=$(todo "$member" "$epochs")
  echo "$member, $epochs epochs $*: seeds still to run: ${left:-none}"
  for seed in $left; do
    while (( $(jobs -rp | wc -l) >= ${JOBS:-1} )); do wait -n || failed=1; done
    # shellcheck disable=SC2086  # EXTRA is flags, split on purpose
    "$PY" -m benchmarks mnist --model "$member" --seeds "$seed" "$@" --threads 1 \
      --progress false --results "$RESULTS" ${EXTRA:-} &
  done
  while (( $(jobs -rp | wc -l) > 0 )); do wait -n || failed=1; done
}
run peer_adilsammar_4k 15
run peer_adilsammar_5k 12
run peer_adilsammar_4k 20 --recipe nas_plain_5k --epochs 20
run peer_adilsammar_5k 20 --recipe nas_plain_5k --epochs 20
exit $failed
