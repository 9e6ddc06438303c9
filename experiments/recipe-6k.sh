#!/usr/bin/env bash
# Issue 19, point 2: does each tiny-model training choice help? One factor at a time on the
# best under-6k architecture (mnist-under6k trial 42) and its searched recipe, 20 epochs,
# trained on 50,000 images and judged on the 10,000-image validation split only (the test
# accuracy is recorded too, never used to choose). Same seeds for every variant, so the
# comparisons are paired. Rows go to results/ablation.csv; `python -m benchmarks docs` turns
# them into docs/champions.md's ablation table.
#   usage: experiments/recipe-6k.sh [SEEDS...]   (default 1 2 3; see ablate.sh for JOBS, EXTRA)
set -euo pipefail
export SEEDS=${*:-1 2 3} RESULTS=${RESULTS:-results/ablation.csv}
# Trial 42's recipe is nas_plain_6k's (the recipe these experiments led to) at batch 128,
# without zoom or shear: read from the zoo (--recipe), the differences written out.
export BASE="--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --recipe nas_plain_6k
  --batch-size 128 --scale 0 --shear 0 --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" \
  "--ema 0" \
  "--ema 0.999" \
  "--ema 0.999 --scale 0.1" \
  "--ema 0.999 --shear 10" \
  "--ema 0.999 --erase 0.2" \
  "--ema 0.999 --label-smoothing 0.1"
