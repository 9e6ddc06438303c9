#!/usr/bin/env bash
# The fresh-seed certificate: a champion chosen on seeds 1-10 is trained once on seeds 11-20,
# which took no part in any choice, with its own recipe (20 epochs, all 60,000 training images,
# test split read at the last epoch). Resumable: a seed that already has such a row from this
# CPU model in this precision is skipped, so the same command continues after an interruption,
# and on another CPU kind (or precision) it runs the ten seeds again there: the certificate
# must hold on each. One run at a time (JOBS=2 for two), one thread each; rows land in
# results/runs.csv as each seed ends. Once the rows so far fail the certificate (a chosen seed
# missed, or two fresh ones), no more seeds start: more runs can only add misses. Seeds run in
# the order given, so the weakest seeds of earlier runs can go first.
# An AVX-512 machine computes as an AVX2-only CPU does with its kernels held to AVX2, and the
# rows say so (device_name: "kernels ATen AVX2, oneDNN AVX2"):
#   ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 experiments/fresh-seeds.sh MEMBER
#   usage: experiments/fresh-seeds.sh MEMBER [SEEDS...]   (default seeds 11-20)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RESULTS=${RESULTS:-results/runs.csv}
member=$1; shift
seeds=${*:-11 12 13 14 15 16 17 18 19 20}
todo=$("$PY" - "$RESULTS" "$member" $seeds <<'PY'
import csv, sys

import torch

from benchmarks.harness.fast import fast_settings
from benchmarks.harness.train import device_name
from benchmarks.tasks import config_from_args

path, member, *seeds = sys.argv[1:]
cfg = config_from_args(type("Args", (), {})(), model=member, threads=1, device="cpu")
torch.set_num_threads(1)
here = device_name(torch.device("cpu"), fast_settings(cfg, torch.device("cpu")))
try:
    with open(path, newline="", encoding="utf-8-sig") as f:
        done = {r["seed"] for r in csv.DictReader(f)
                if r["model"] == member and r["epochs"] == "20" and r["train_images"] == "60000"
                and r["device_name"] == here}
except FileNotFoundError:
    done = set()
print(" ".join(s for s in seeds if s not in done))
PY
)
echo "fresh seeds of $member still to run: ${todo:-none}"
verdict() {
  "$PY" - "$RESULTS" "$member" <<'PY'
import sys

from benchmarks.commands.leaderboard import leaderboard, on_protocol, verdict
from benchmarks.harness.results import read_runs

path, member = sys.argv[1:]
board = on_protocol(leaderboard(read_runs(path)))
print(next((verdict(r) for r in board.itertuples() if r.model == member), "pending"))
PY
}
failed=0
for seed in $todo; do
  while (( $(jobs -rp | wc -l) >= ${JOBS:-1} )); do wait -n || failed=1; done
  if [[ -f $RESULTS && $(verdict) == fails ]]; then
    echo "$member's certificate fails on the rows so far: seeds not started: from $seed on"
    break
  fi
  "$PY" -m benchmarks mnist --model "$member" --seeds "$seed" --epochs 20 --threads 1 \
    --progress false --results "$RESULTS" &
done
while (( $(jobs -rp | wc -l) > 0 )); do wait -n || failed=1; done
exit $failed
