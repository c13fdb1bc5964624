#!/usr/bin/env bash
# GPU acceptance check: one script, five stages, one markdown table (and each stage's output) in $OUT when set.
#   (a) pytest -m gpu: 2-epoch train in fp32 and bf16, resume, `harma eval` of a checkpoint, NaN guard, compiled
#       training, all on `train.device=cuda` (a bare `cuda`, as a Ray trial asks)
#   (b) train-step pairs/s and MFU at batch 214, fp32 and bf16, eager and compiled (bench_gpu_step.py)
#   (c) end-to-end `harma.train` epoch rate on a synthetic set against the step rate (bench_gpu_e2e.py)
#   (d) `harma study run studies/gpu-smoke.yaml` to the end (0.25 GPU per trial); Parquet has COMPLETE and PRUNED
#   (e) aggregate pairs/s of 1, 2 and 4 processes packed on one GPU (bench_gpu_pack.py)
# On a lent GPU machine (Python 3.12, CUDA torch, pandas, pyarrow; no Ray / Optuna / open_clip, no registry),
# from the repo root with the wheel kit carried as .whl (built here: `bash ../shared/gpu/make-kit.sh .whl`, then
# pytest for stage a: `python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl
# pytest pluggy iniconfig`):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH; bash benchmarks/gpu_check.sh
# (the script runs that install itself when .whl/ exists and Ray is missing).  About 9 minutes on one H100/H200.
# Dry run on CPU (CI runs it): bash benchmarks/gpu_check.sh --dry-run   (tiny model, every stage, 2-4 minutes on
# 2 cores; its stage time limits are 3x the GPU ones, for busy CI machines).
# Options: --dry-run; --full adds bf16 max-autotune to (b).  Exit status: the number of failed stages (0 = all ok).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=${PYTHON:-python3}
dry=0; full=0
for arg in "$@"; do
  case $arg in
    --dry-run) dry=1 ;;
    --full) full=1 ;;
    *) echo "gpu_check.sh: unknown argument $arg (expected --dry-run or --full)" >&2; exit 2 ;;
  esac
done

if [[ -d .whl ]] && ! "$py" -c "import ray, optuna, open_clip" 2>/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PATH=/tmp/site/bin:$PATH PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/tmp/site"
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$repo"
work=$(mktemp -d -t harma-gpu-check-XXXXXX)
trap 'rm -rf "$work"' EXIT
out=${OUT:-$work/out}
mkdir -p "$out"
summary=()

figure() {  # one line of figures from a stage's output
  local name=$1 log=$out/$1.txt
  case $name in
    a-pytest-gpu) grep -Eo '[0-9]+ passed.*in [0-9.]+s' "$log" | tail -1 ;;
    b-step) grep -E '^\| (fp32|bf16) ' "$log" | awk -F'|' '{printf "%s/%s %s pairs/s, MFU %s;", $2, $3, $6, $8}' ;;
    e-packed) grep -E '^\| [0-9]+ ' "$log" | awk -F'|' '{printf "%s procs: %s pairs/s;", $2, $3}' ;;
    c-end-to-end) grep -E '^step only' "$log" ;;
    d-study) tail -1 "$log" ;;
  esac
}

stage() {  # stage NAME LIMIT_S COMMAND...: run COMMAND under a time limit (x scale), output to $out/NAME.txt
  local name=$1 limit=$(($2 * scale)); shift 2
  local start=$SECONDS status verdict=ok
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1; status=$?
  [[ $status -eq 124 ]] && verdict="timed out (${limit} s)"
  [[ $status -ne 0 && $status -ne 124 ]] && verdict="FAILED (exit $status)"
  summary+=("| $name | $verdict | $((SECONDS - start)) | $(figure "$name" 2>/dev/null | tr '\n' ' ') |")
  echo "== $name: $verdict in $((SECONDS - start))s"; tail -n 25 "$out/$name.txt"
  [[ $verdict == ok ]]
}

if [[ $dry -eq 1 ]]; then
  export HARMA_GPU_TESTS_ON_CPU=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
  dev=(--device cpu --arch tiny); rows=fp32:off,bf16:off; batch=32; counts=1,2; images=120; px=64; scale=3
  e2e_set=(data.num_workers=2 data.image_size=32)
else
  dev=(--device cuda --arch ViT-B-32); rows=fp32:off,bf16:off,bf16:default,bf16:reduce-overhead; batch=214
  counts=1,2,4; images=2000; px=256; e2e_set=(); scale=1
  [[ $full -eq 1 ]] && rows=$rows,bf16:max-autotune
fi

echo "## gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname) $([[ $dry -eq 1 ]] && echo '(CPU dry run)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"

failed=0
stage a-pytest-gpu 150 "$py" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py || failed=$((failed + 1))
stage b-step 260 "$py" benchmarks/bench_gpu_step.py "${dev[@]}" --batch "$batch" --rows "$rows" --steps 20 \
  --warmup 3 || failed=$((failed + 1))
stage c-end-to-end 100 "$py" benchmarks/bench_gpu_e2e.py "${dev[@]}" --images "$images" --image-px "$px" \
  --epochs 3 --data "$work/synth" --set "${e2e_set[@]}" || failed=$((failed + 1))
stage d-study 150 "$py" benchmarks/gpu_check_study.py "$work/study" $([[ $dry -eq 1 ]] && echo --dry-run) \
  || failed=$((failed + 1))
stage e-packed 150 "$py" benchmarks/bench_gpu_pack.py "${dev[@]}" --batch "$batch" --counts "$counts" --steps 10 \
  --warmup 2 || failed=$((failed + 1))

{
  echo "| stage | result | seconds | figures |"
  echo "|---|---|---:|---|"
  printf '%s\n' "${summary[@]}"
} | tee "$out/gpu_check.md"
exit "$failed"
