#!/usr/bin/env bash
# The accuracy levers of issue 10, each from scratch on the same split, seed and schedule,
# one after another so each run has the machine's cores to itself (two runs side by side on
# two cores measure each other). A run that finished before is kept. Then tabulate:
#
#     bash bench/levers.sh [EPOCHS]      # default 30; logs in runs/lever30-*.log
#     python bench/levers_table.py runs/lever30-*/ --plot runs/levers30.png
set -euo pipefail
epochs=${1:-30}
common=(--data ../shared/data/300w --negatives-from ../shared --epochs "$epochs" --threads 2
        --save-every "$epochs" --seed 0)
run() {  # name, extra flags (a later --epochs overrides the common one)...
    local name=runs/lever$epochs-$1; shift
    [[ -f $name/metrics.json ]] && return 0
    fkd-train "${common[@]}" "$@" --output "$name" >"$name.log" 2>&1 || echo "$name failed" >&2
}
mkdir -p runs
run base
run heatmap --heatmap-weight 1
run strong --augment strong
run elastic --augment elastic  # strong plus smooth non-rigid warps (added later)
run mtfl --data ../shared/data/mtfl
run noema --ema 0
run distill --teacher weights/fkd.pt  # self-distillation: no wide teacher can be trained on 2 CPU cores
run together --heatmap-weight 1 --data ../shared/data/mtfl --teacher weights/fkd.pt  # do they add up?
run mtfl-distill --data ../shared/data/mtfl --teacher weights/fkd.pt  # the teacher fills MTFL's 10 missing points
run heatmap-mtfl --heatmap-weight 1 --data ../shared/data/mtfl  # the pair without the teacher
run eyes --loss smoothl1-eyes  # errors rescaled by each face's eye distance, as NME weighs them (added later)
run mtfl-share40 --data ../shared/data/mtfl --aux-share 0.4  # more MTFL per batch: 42 batches an epoch, not 33,
# so compare it with a 24-epoch run too (bench/RESULTS.md, "MTFL's share of each batch")
# A longer schedule is not compared at this length: every lever run is short of converged, so
# twice the epochs would win whatever the recipe. bench/RESULTS.md gives the long-run evidence.
