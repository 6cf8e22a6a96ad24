#!/usr/bin/env bash
# Issue 10's GPU figures in one device call, most wanted first, each under its own time limit,
# so that a call cut short still returns what it measured. Run from the repo root on the lent
# machine with the 300-W crop cache carried (that machine may have OpenCV 5, which has no Haar
# cascades, and has no ../shared):
#
#   run(command="bash bench/gpu_session.sh", carry=[".cache/faces-<key>.npz"], timeout_s=560)
#
# Needs nothing installed beyond the machine's own torch, rich, typer, onnxruntime, OpenCV and
# matplotlib: fkd runs from this checkout (PYTHONPATH), and fkd-train is a two-line shim.
# Logs go to $OUT (the device tool brings them back). Try it on a CPU first:
#   DEVICE=cpu BATCHES=2 WHOLE=1 STEPS="epoch whole" PYTHON=.venv/bin/python OUT=/tmp/g bash bench/gpu_session.sh
#
# STEPS picks the steps (default "epoch whole compile"). "teacher" is for a later call, once the
# speed figures are in: a wide network (WIDTH, default 64) on the same crops for TEACHER_EPOCHS
# (250) epochs, at most TEACHER_MINUTES (7) minutes, whose fkd.pt comes back in
# $OUT/teacher for distillation into the shipped size here (fkd-train --teacher):
#   run(command="STEPS=teacher bash bench/gpu_session.sh", carry=[".cache/faces-<key>.npz"], timeout_s=560)
set -u
OUT=${OUT:-/tmp/fkd-gpu}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BATCHES=${BATCHES:-50}
WHOLE=${WHOLE:-300}
STEPS=${STEPS:-epoch whole compile}
WIDTH=${WIDTH:-64}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-250}
TEACHER_MINUTES=${TEACHER_MINUTES:-7}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
shim=$(mktemp -d)
printf '#!/bin/sh\nexec %s -c "from fkd.train.cli import train_app; train_app(prog_name=\\"fkd-train\\")" "$@"\n' \
    "$PYTHON" >"$shim/fkd-train"
chmod +x "$shim/fkd-train"
export PATH=$shim:$PATH

cache=$(ls .cache/faces-*.npz 2>/dev/null | head -n 1)
if [ -z "$cache" ]; then
    echo "no .cache/faces-*.npz here: carry the crop cache (DEVELOPERS.md, 'Measuring training on a GPU')." >&2
    exit 2
fi
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    "$PYTHON" -c "import sys, torch, cv2; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cv2', cv2.__version__, 'cuda', torch.cuda.is_available()); print('cpus', __import__('os').cpu_count())"
    echo "cache $cache"
} 2>&1 | tee "$OUT/machine.txt"

step() {  # step NAME SECONDS COMMAND...: one measurement, its log in $OUT/NAME.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most $limit s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    echo "== $name exit ${PIPESTATUS[0]}"
}

wanted() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

wanted epoch && step epoch 100 "$PYTHON" bench/train_speed.py --device "$DEVICE" --batches "$BATCHES" --data "$cache"
wanted whole && step whole 300 "$PYTHON" bench/train_speed.py --device "$DEVICE" --batches "$BATCHES" --data "$cache" \
    --whole "$WHOLE"
wanted compile && step compile 120 "$PYTHON" bench/train_speed.py --device "$DEVICE" --batches "$BATCHES" \
    --data "$cache" --compile
# the clock stops training after TEACHER_MINUTES; the export and the int8 twin follow within the limit
wanted teacher && step teacher $((TEACHER_MINUTES * 60 + 120)) fkd-train --data "$cache" --width "$WIDTH" \
    --augment strong --epochs "$TEACHER_EPOCHS" --time-budget "$TEACHER_MINUTES" --device "$DEVICE" \
    --output "$OUT/teacher" --save-every 25 --seed 0 && rm -f "$OUT/teacher/last.pt"  # the optimiser's state stays
exit 0
