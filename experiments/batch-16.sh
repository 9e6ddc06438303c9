#!/usr/bin/env bash
# Batch 64 -> 32 gained on every seed at 5,946 parameters (candidates-6k.sh): twice the optimizer
# steps in the same 20 epochs. Does halving again, to 16, help a model under 5,000 parameters
# (mnist-under5k-b32 trial 0, 4,746 params, one test seed in six short of 99.4% at batch 32)?
# At the recipe's learning rate, and at half of it (the same rate per image). Paired seeds,
# validation split only (as recipe-6k.sh); rows in results/batch-16.csv, the
# `ablation batch-16` table in docs/champions.md.
#   usage: experiments/batch-16.sh [SEEDS...]   (default 1 2; see ablate.sh for JOBS, EXTRA)
set -euo pipefail
export SEEDS=${*:-1 2} RESULTS=${RESULTS:-results/batch-16.csv}
export BASE="--model v8-v12-p-t8-v12-v12-v12-t10-gap|do0 --recipe nas_plain_5k
  --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" "" "--batch-size 16" "--batch-size 16 --lr 0.025"
