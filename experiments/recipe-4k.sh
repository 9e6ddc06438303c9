#!/usr/bin/env bash
# After experiments/handpicked.py: is nas_plain_6k's recipe's learning rate right for the best
# under-4,000 architecture (mnist-under4k trial 0, 3,882 params), or does a model a third
# smaller want a larger or smaller one? And does padding the first conv help? Paired seeds,
# validation split only (as recipe-6k.sh); rows in results/recipe-4k.csv, the
# `ablation recipe-4k` table in docs/champions.md.
#   usage: experiments/recipe-4k.sh [SEEDS...]   (default 1 2; see ablate.sh for JOBS, EXTRA)
set -euo pipefail
export SEEDS=${*:-1 2} RESULTS=${RESULTS:-results/recipe-4k.csv}
export BASE="--model v8-v12-p-t8-v8-v8-v8-v12-t10-gap|do0 --recipe nas_plain_6k
  --epochs 20 --val-split 10000 --threads 1 --progress false"
# The last variant pads the first conv (c8): the same weights over a 28x28 map instead of 26x26,
# so every later map is a pixel or two wider (more compute, no more parameters).
exec "$(dirname "$0")/ablate.sh" "" "--lr 0.1" "--lr 0.025" \
  "--model c8-v12-p-t8-v8-v8-v8-v12-t10-gap|do0"
