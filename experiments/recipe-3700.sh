#!/usr/bin/env bash
# The tiny-model recipe, third round, on the best network under 3,700 parameters (mnist-under3700
# trial 0: the published 3,762 layout without its biases and dropout, 3,692 params), on the
# validation split only: nas_plain_5k's recipe against one change at a time, each a choice the
# peers' notebooks made differently: SGD without momentum, batch 16, 15 epochs, Xavier
# initialisation, and the affine augmentation on half of the images. Paired seeds; rows in
# results/recipe-3700.csv, the `ablation recipe-3700` table in docs/champions.md.
#   usage: experiments/recipe-3700.sh [SEEDS...]   (default 1 2; see ablate.sh for JOBS, EXTRA)
set -euo pipefail
export SEEDS=${*:-1 2} RESULTS=${RESULTS:-results/recipe-3700.csv}
export BASE="--model c4-c4-c4-p-c8-c8-c8-p-c8-c8-c8-gap-fcn|do0 --recipe nas_plain_5k
  --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" "" "--momentum 0" "--batch-size 16" "--epochs 15" \
  "--init xavier" "--augment-p 0.5"
