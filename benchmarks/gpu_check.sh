#!/usr/bin/env bash
# Every GPU figure of the speed targets in one short run (< 5 minutes on one
# H200), one JSON line per figure on stdout; progress notes go to stderr.
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# Figures: OT forward+backward vs POT's sinkhorn2 for n = 64 ... 4096 in 512
# dimensions (eager and torch.compile'd solvers); training steps of every
# method variant and the public-code-style reference with ResNet-18-sized
# encoders at batch 64 (float32, then bf16 autocast, then the Sinkhorn loop
# compiled), and whether any step reads a value back from the GPU (CUDA's
# sync debug mode); one built-in task on the GPU. Without a CUDA GPU it runs the same
# scripts at CPU sizes and prints a note that GPU-only figures were skipped.
#
# Environment: PY (python to use; default .venv/bin/python when it exists,
# else python3). POT is needed for the POT columns: where it is missing, wheels
# in .whl/ are installed into /tmp/site if present, otherwise the POT rows are
# skipped with a note.
set -u
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CMKD_LAB_CACHE="${CMKD_LAB_CACHE:-/tmp/cmkd_lab_gpu_check_cache}"
note() { printf '{"bench": "note", "note": "%s"}\n' "$1"; }

if ! "$PY" -c "import ot" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
POT_FLAG=""
if ! "$PY" -c "import ot" 2>/dev/null; then
  POT_FLAG="--no-pot"
  note "POT is not installed: the pot rows and speedup_vs_pot are skipped (carry a POT wheel in .whl/)"
fi

"$PY" - <<'EOF'
import json, torch
d = {"bench": "env", "torch": torch.__version__, "cuda": torch.cuda.is_available()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    d.update(gpu=p.name, sms=p.multi_processor_count, mem_gib=round(p.total_memory / 2**30, 1))
print(json.dumps(d))
EOF

T0=$(date +%s)
BUDGET=${BUDGET:-285}  # seconds for the whole check; each part gets at most its cap and what is left
capped() {  # capped CAP LABEL cmd...: run cmd with timeout min(CAP, time left); a note if it stops early
  local cap=$1 label=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - T0) ))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 10 ]; then note "$label skipped: the time budget is spent"; return; fi
  echo "[gpu_check] $label (up to ${cap}s)" >&2
  timeout "$cap" "$@" || note "$label stopped early (timeout or error): rows above it are complete"
}

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  capped 110 "OT vs POT, n = 64 ... 4096" "$PY" benchmarks/bench_ot.py --device cuda \
    --sizes 64,256,1024,4096 --repeats 10 --compile $POT_FLAG
  for args in "" "--amp" "--compile ot"; do
    capped 50 "ResNet-18 steps, batch 64 $args" "$PY" benchmarks/bench_step.py --resnet --device cuda \
      --batch-size 64 --size 224 --steps 10 $args
  done
  capped 40 "host-sync check of every variant's step (ResNet-18 layout, 64 px)" "$PY" benchmarks/bench_step.py \
    --resnet --device cuda --batch-size 64 --size 64 --steps 1 --sync-check
  capped 30 "ResNet-18 steps, ot_solver=scaling" "$PY" benchmarks/bench_step.py --resnet --device cuda \
    --batch-size 64 --size 224 --steps 10 --ot-solver scaling --variants ce,fa,ucmkd-last-layer
  capped 40 "built-in task hapt on the GPU" "$PY" benchmarks/bench_step.py --tasks hapt --device cuda --epochs 1
  printf '{"bench": "gpu_check", "wall_s": %s}\n' "$(( $(date +%s) - T0 ))"
else
  note "no CUDA GPU: GPU-only figures (n = 4096 OT, ResNet-18 at 224 px, bf16, compiled kernels) skipped; CPU sizes below"
  BUDGET=${BUDGET_CPU:-900}
  capped 300 "OT vs POT (CPU sizes)" "$PY" benchmarks/bench_ot.py --device cpu --sizes 64,256 --repeats 10 $POT_FLAG
  capped 300 "ResNet-18 layout steps (CPU size)" "$PY" benchmarks/bench_step.py --resnet --device cpu \
    --batch-size 16 --size 32 --width 8 --feature-dim 32 --steps 4
  capped 300 "built-in task synthetic (CPU)" "$PY" benchmarks/bench_step.py --tasks synthetic --device cpu --epochs 2
fi
