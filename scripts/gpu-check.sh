#!/usr/bin/env bash
# One GPU check of effbench, in well under 4 minutes on an H100/H200:
#   efficientvit_m5 batch-1 latency (torch eager, CUDA graph, fp16), batch-256 throughput with
#   NVML energy (counter vs integrated power, idle power, throttle reasons), the TensorRT and
#   ONNX Runtime GPU cells where those packages exist (TensorRT fp32 needs no ModelOpt; fp16/int8 on
#   TensorRT 11 report "unusable" with the reason without it), then `pytest tests/gpu`.
# Every step runs on its own; a failing step is reported and the next one runs. Figures come from
# effbench itself (scripts/gpu_check.py: the harness `bench run` uses). Usage, from the repository root:
#   bash scripts/gpu-check.sh            (PYTHON=/path/to/python to choose the interpreter)
set -u

cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src:$PWD/tests/plugins${PYTHONPATH:+:$PYTHONPATH}"
OUT="$(mktemp -d -t effbench-gpu-check.XXXXXX)"
export EFFBENCH_CACHE="$OUT/cache"
STEP_TIMEOUT="${STEP_TIMEOUT:-90}"
declare -a SUMMARY=()
start=$SECONDS

step() {  # step NAME COMMAND...
  local name="$1"; shift
  local t0=$SECONDS rc
  echo "=== $name"
  timeout "$STEP_TIMEOUT" "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("ok      $name ($((SECONDS - t0)) s)")
  elif [ "$rc" -eq 124 ]; then
    SUMMARY+=("TIMEOUT $name (after ${STEP_TIMEOUT} s)")
    echo "!!! $name timed out after ${STEP_TIMEOUT} s"
  else
    SUMMARY+=("FAILED  $name (exit $rc)")
    echo "!!! $name failed (exit $rc); going on"
  fi
}

step env "$PY" scripts/gpu_check.py env
if command -v nvidia-smi >/dev/null 2>&1; then
  step nvidia-smi nvidia-smi --query-gpu=name,uuid,driver_version,power.limit,clocks.sm,temperature.gpu --format=csv
fi
step backends "$PY" -c "
from effbench.backends.registry import all_backends
for n, b in sorted(all_backends().items()):
    print(f'{n:12} {b.version() or \"-\":12} {b.unavailable_reason(\"cuda:0\") or \"usable on cuda:0\"}')"

STEPS="$("$PY" scripts/gpu_check.py steps 2>/dev/null || echo "eager_b1 graph_b1 fp16_b1 b256_energy trt_fp32_b1 trt_fp16_b1 trt_int8_b1 ort_cuda_b1")"
for s in $STEPS; do
  step "$s" "$PY" scripts/gpu_check.py cell "$s" "$OUT/$s.json"
done

if "$PY" -c "import pytest" >/dev/null 2>&1; then
  STEP_TIMEOUT=120 step "pytest tests/gpu" "$PY" -m pytest tests/gpu -q -p no:cacheprovider -rs
else
  SUMMARY+=("MISSING pytest tests/gpu (pytest not installed: pip install pytest)")
fi

echo
echo "=================== effbench GPU check summary ==================="
"$PY" scripts/gpu_check.py summary "$OUT" || true
echo
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "  total $((SECONDS - start)) s; step records in $OUT"
echo "=================================================================="
