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
# The reference: nas_plain_6k's recipe (read from the zoo, --recipe) at batch 128.
export BASE="--recipe nas_plain_6k --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" \
  "--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --batch-size 128" \
  "--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --batch-size 64" \
  "--model v8-v16-p-t8-c12-v16-v12-t10-gap|do0 --batch-size 128" \
  "--model v8-v16-p-t8-v12-v16-v12-t10-gap|do0 --batch-size 32"
