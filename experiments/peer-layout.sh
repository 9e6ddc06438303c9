#!/usr/bin/env bash
# peer_minakshi_6k's layout (v8a-v10a-p-v12a-c15a-p-v15a-gap-fc, 5,797 params: two pools, a
# padded conv, activation before batch norm, a linear head after GAP) reached 99.4% on 4 of 5
# test seeds with its own recipe, and well above it with nas_plain_5k's (the peers table). Does
# the layout, narrowed to 4,338-4,702 params, hold up on validation with that recipe? The peer
# itself is measured alongside. Paired seeds, validation split only; rows in
# results/peer-layout.csv, the `ablation peer-layout` table in docs/champions.md.
#   usage: experiments/peer-layout.sh [SEEDS...]   (default 1; see ablate.sh for JOBS, EXTRA)
set -euo pipefail
export SEEDS=${*:-1} RESULTS=${RESULTS:-results/peer-layout.csv}
export BASE="--model peer_minakshi_6k --recipe nas_plain_5k
  --epochs 20 --val-split 10000 --threads 1 --progress false"
exec "$(dirname "$0")/ablate.sh" "" "--model v8a-v10a-p-v12a-c12a-p-v12a-gap-fc|do0.01" \
  "--model v8a-v8a-p-v12a-c12a-p-v12a-gap-fc|do0.01"
