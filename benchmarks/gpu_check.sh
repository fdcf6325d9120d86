#!/usr/bin/env bash
# GPU check of neuript: one script, under 10 minutes on a machine with NVIDIA GPUs.
#
#   benchmarks/gpu_check.sh            (from the repository root or anywhere)
#
# Steps, each bounded by a number of steps and killed by `timeout` if it hangs, so one hang
# cannot eat the budget (the worst case is the sum of the limits below, 580 s):
#   info         GPUs, driver, torch, CUDA and NCCL versions
#   corpus       16 synthetic recordings -> `neuript prepare` (no data set needed)
#   compile      `paper` pretraining step in bf16, fused SDPA kernels, eager vs torch.compile
#   ddp          torchrun, NCCL DDP on every visible GPU: 20 `paper` pretraining steps
#   fsdp         the same with --strategy fsdp (sharded), checkpoint at step 10
#   fsdp_resume  --resume of the fsdp run with the step budget raised to 30 (an override)
#   speed        the GPU section of benchmarks/bench_speed.py (--quick budgets)
# Results: benchmarks/results/gpu_check.json + gpu_check.md ($GPU_CHECK_OUT overrides the
# folder). Without a CUDA GPU it prints one line, writes nothing and exits 0.
# Environment: PYTHON (default .venv/bin/python, else python3), GPU_CHECK_OUT, GPU_CHECK_WORK
# (scratch folder, default a fresh temporary one, removed at the end).
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
OUT="${GPU_CHECK_OUT:-benchmarks/results}"

if ! NGPU="$("$PY" -c 'import torch; n = torch.cuda.device_count() if torch.cuda.is_available() else 0; print(n); raise SystemExit(n == 0)' 2>/dev/null)"; then
    echo "gpu_check: skipped, no CUDA GPU visible to torch (nothing run, nothing written)"
    exit 0
fi

START=$(date +%s)
if [ -n "${GPU_CHECK_WORK:-}" ]; then
    WORK="$GPU_CHECK_WORK"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d -t neuript-gpu-check.XXXXXX)"
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK/logs" "$WORK/steps"
: > "$WORK/status.tsv"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "gpu_check: $NGPU GPU(s); scratch folder $WORK; results to $OUT"

# step NAME LIMIT_S COMMAND...: run with a time limit, log to $WORK/logs/NAME.log, record rc.
step() {
    local name="$1" limit="$2"
    shift 2
    local t0 t1 rc
    t0=$(date +%s%N)
    echo "gpu_check: $name (at most ${limit} s) ..."
    timeout --kill-after=15 "$limit" "$@" > "$WORK/logs/$name.log" 2>&1
    rc=$?
    t1=$(date +%s%N)
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(awk "BEGIN {print ($t1 - $t0) / 1e9}")" \
        >> "$WORK/status.tsv"
    echo "gpu_check: $name -> rc $rc (log: $WORK/logs/$name.log)"
    return 0
}

TORCHRUN=("$PY" -m torch.distributed.run --standalone --nproc_per_node="$NGPU")
PRETRAIN=(-m neuript pretrain --corpus "$WORK/corpus" --preset paper --device cuda
          --batch-size 8 --train.precision bf16 --train.log_every 5 --val_batches 2)

step info 20 "$PY" -c "
import json, torch, torch.distributed as d
nccl = torch.cuda.nccl.version() if d.is_nccl_available() else None
info = {'count': torch.cuda.device_count(), 'name': torch.cuda.get_device_name(0),
        'torch': torch.__version__, 'cuda': torch.version.cuda,
        'nccl': '.'.join(map(str, nccl)) if isinstance(nccl, tuple) else nccl,
        'memory_gb': round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)}
json.dump(info, open('$WORK/info.json', 'w'), indent=1)
print(info)"
step corpus 60 bash -c "'$PY' -m benchmarks.gpu_check synth --work '$WORK' &&
    '$PY' -m neuript prepare '$WORK/raw' --out '$WORK/corpus' --workers 4"
step compile 140 "$PY" -m benchmarks.gpu_check compile --work "$WORK"
step ddp 80 "${TORCHRUN[@]}" "${PRETRAIN[@]}" --out "$WORK/ddp" --strategy ddp --max-steps 20 \
    --train.ckpt_every 0
step fsdp 100 "${TORCHRUN[@]}" "${PRETRAIN[@]}" --out "$WORK/fsdp" --strategy fsdp \
    --max-steps 20 --train.ckpt_every 10
cp -r "$WORK/fsdp" "$WORK/fsdp_resume" 2>/dev/null
rm -rf "$WORK/fsdp_resume/checkpoints/step_00000020"  # resume from the step-10 checkpoint
step fsdp_resume 70 "${TORCHRUN[@]}" "${PRETRAIN[@]}" --out "$WORK/fsdp_resume" --strategy fsdp \
    --max-steps 30 --train.ckpt_every 10 --resume
step speed 110 "$PY" -m benchmarks.gpu_check speed --work "$WORK"

"$PY" -m benchmarks.gpu_check summarize --work "$WORK" --out "$OUT" \
    --command "benchmarks/gpu_check.sh" --wall-s "$(( $(date +%s) - START ))"
cat "$OUT/gpu_check.md"
