#!/usr/bin/env bash
# Is nas_plain_5k's recipe what keeps a model under 5,000 parameters from 99.4% on every seed?
# mnist-under5k-b32 trial 0 (4,746 params) missed on one test seed in six with it; its training
# loss still falls at epoch 20 (0.028 with augmentation on), so the model may underfit. Variants
# that let it fit more: no weight decay; translation as the only augmentation; and two schedule
# shapes, peer_minakshi_6k's Adam one-cycle (cosine, lr 0.003, div 25 and 1000) and SGD with a
# cosine one-cycle ending 5x lower. Seed 1 said the opposite: each of the first three lost
# 0.15-0.21 points. So, the other way: twice the weight decay, stronger augmentation. Paired
# seeds, validation split only (as recipe-6k.sh); rows in results/recipe-5k.csv, the
# `ablation recipe-5k` table in docs/champions.md (on 2026-12-02, seed 2 skipped the three
# variants that lost on seed 1).
#   usage: experiments/recipe-5k.sh [SEEDS...]   (default 1 2; see ablate.sh for JOBS, EXTRA)
set -euo pipefail
export SEEDS=${*:-1 2} RESULTS=${RESULTS:-results/recipe-5k.csv}
export BASE="--model v8-v12-p-t8-v12-v12-v12-t10-gap|do0 --recipe nas_plain_5k
  --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" "" "--weight-decay 0" "--rotate 0 --shear 0 --scale 0" \
  "--optimizer adam --lr 0.003 --div-factor 25 --final-div-factor 1000 --anneal cos" \
  "--anneal cos --final-div-factor 1000" "--weight-decay 0.000127" \
  "--rotate 10 --translate 0.1 --scale 0.15 --shear 15"
