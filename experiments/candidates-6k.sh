#!/usr/bin/env bash
# Issue 19, round two after recipe-6k.sh: the choices that helped there on validation (the
# weight average, scale 0.1, shear 10) together, then two changes on top of them: batch 64
# (twice the steps; nas_plain_11k and 16k were found with it) and the same 5,946 parameters
# with the first conv after the transition padded (c12: later maps 2 pixels wider, more
# positions for the global average; more compute, no more weights). Validation only, paired
# seeds; rows in results/candidates-6k.csv. Batch 32, the last line, was added after batch 64 won
# (it ran on seeds 1 and 2 only, for lack of time).
#   usage: experiments/candidates-6k.sh [SEEDS...]   (default 1 2 3; see ablate.sh)
set -euo pipefail
export SEEDS=${*:-1 2 3} RESULTS=${RESULTS:-results/candidates-6k.csv}
export BASE="--lr 0.05038667787535556 --weight-decay 6.362684112612832e-05
  --schedule onecycle --warmup 0.1 --div-factor 20 --final-div-factor 200 --anneal linear
  --rotate 7 --translate 0.08 --ema 0.999 --scale 0.1 --shear 10
  --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" \
  "--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --batch-size 128" \
  "--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --batch-size 64" \
  "--model v8-v16-p-t8-c12-v16-v12-t10-gap|do0 --batch-size 128" \
  "--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --batch-size 32"
