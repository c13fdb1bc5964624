#!/usr/bin/env bash
# GPU acceptance check, built for one 10-minute call on a lent GPU machine: five stages, headline first, within
# --budget seconds (default 480 on a GPU) all told, set-up included.  Each stage prints its rows the moment they
# are measured (to the console and $OUT/<stage>.txt) and adds its row to $OUT/gpu_check.md as it ends, so a run
# cut short keeps everything measured so far.  Stages, in the order they run (letters kept from earlier runs):
#   b  train-step pairs/s and MFU at batch 214: bf16 eager, bf16 compiled in the mode trials use (--compile,
#      default reduce-overhead), fp32 eager (bench_gpu_step.py; --full adds bf16 default and max-autotune)
#   c  end-to-end `harma.train` epoch rate on a synthetic set against the step-only rate (bench_gpu_e2e.py), with
#      train.compile=auto as trials run it: the first epoch's row shows the seconds spent compiling
#   e  aggregate pairs/s of 1, 2 and 4 processes on one GPU, each inside its 1/N share the way a packed trial
#      trains (harma.tune.packing; bench_gpu_pack.py)
#   d  `harma study run studies/gpu-smoke.yaml` (0.25 GPU per trial) to the end; Parquet has COMPLETE and PRUNED
#   a  pytest -m gpu: 2-epoch train in fp32 and bf16, resume, `harma eval`, NaN guard, compiled training, on a
#      bare `train.device=cuda` (as a Ray trial asks)
# Budgets (GPU): b 200, c 60, e 65, d 75, a 50 s, plus 30 s of set-up (the kit's install, the module check) =
# 480 s; dry run: b 80, c 110, e 140, d 240, a 240 s + 30 = 840 s (it took 3–6 min on a busy 2-core box).
# Each stage's time limit is its share of the time left when it starts, so a stage that ends early leaves its
# time to the later ones and the whole run ends within the budget.  The stage budgets were
# set from a CPU dry run and the issue's 155 s default-mode compile on an H200: none was measured on a GPU yet.
# Stages c and d compile since trials default to train.compile=auto (CUDA graphs): their budgets predate that
# (stage c may hit the Inductor cache stage b fills for the train forward; its eval encoders compile anew).
# For the rerun a 15-minute device loan leaves room for, pass --work /tmp/harma-gpu-check both times: the rerun
# reuses the compile cache (TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR) and the synthetic set, e.g.
#   bash benchmarks/gpu_check.sh --work /tmp/harma-gpu-check --stages b --budget 200
# On a lent GPU machine (Python 3.12, CUDA torch; no Ray / Optuna / open_clip, no registry) carry the wheel kit
# as .whl (built here: `KIT_EXTRA='pytest pluggy iniconfig' bash ../shared/gpu/make-kit.sh .whl`): the script
# installs it into /tmp/site itself.  A missing module is one line at the start naming the fix.
# Options: --dry-run (every stage on CPU, tiny model, few steps; CI runs it), --stages b,c (pick; they still run
# in the order above), --budget S (total seconds; the picked stages' budgets scale to fit), --full, --compile
# MODE, --work DIR (keep the work folder: a rerun reuses its compile cache and synthetic data).
# Exit status: the number of failed stages (0 = all ok).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

ORDER=(b c e d a)
declare -A NAME=([a]=a-pytest-gpu [b]=b-step [c]=c-end-to-end [d]=d-study [e]=e-packed)
declare -A GPU_S=([b]=200 [c]=60 [e]=65 [d]=75 [a]=50)
declare -A DRY_S=([b]=80 [c]=110 [e]=140 [d]=240 [a]=240)
declare -A NEEDS=([a]="torch open_clip pytest" [b]="torch open_clip" [c]="torch open_clip"
                  [d]="torch open_clip ray optuna pandas pyarrow" [e]="torch open_clip")
SETUP_S=30; GPU_BUDGET=480; DRY_BUDGET=840

usage() { echo "usage: gpu_check.sh [--dry-run] [--stages b,c,e,d,a] [--budget S] [--full] [--compile MODE]" \
  "[--work DIR]" >&2; exit 2; }

dry=0; full=0; picked=""; budget=""; mode=reduce-overhead; keep=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) dry=1 ;;
    --full) full=1 ;;
    --stages) picked=${2:-}; shift ;;
    --budget) budget=${2:-}; shift ;;
    --compile) mode=${2:-}; shift ;;
    --work) keep=${2:-}; shift ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done

selected=()
for s in "${ORDER[@]}"; do
  [[ -z $picked || ",$picked," == *",$s,"* ]] && selected+=("$s")
done
for s in ${picked//,/ }; do
  [[ -n ${NAME[$s]:-} ]] || { echo "gpu_check.sh: --stages: unknown stage '$s' (stages: a b c d e)" >&2; exit 2; }
done
[[ -z $budget || $budget =~ ^[0-9]+$ ]] || { echo "gpu_check.sh: --budget: whole seconds, got '$budget'" >&2; exit 2; }
command -v "$py" >/dev/null || { echo "gpu_check: no Python at '$py' (set PYTHON=...)" >&2; exit "${#selected[@]}"; }

declare -A WEIGHT
for s in "${selected[@]}"; do
  if [[ $dry -eq 1 ]]; then WEIGHT[$s]=${DRY_S[$s]}; else WEIGHT[$s]=${GPU_S[$s]}; fi
done
weights_left() { local s sum=0; for s in "$@"; do sum=$((sum + WEIGHT[$s])); done; echo "$sum"; }
if [[ -z $budget ]]; then
  if [[ -n $picked ]]; then budget=$(($(weights_left "${selected[@]}") + SETUP_S))
  elif [[ $dry -eq 1 ]]; then budget=$DRY_BUDGET; else budget=$GPU_BUDGET; fi
fi
deadline=$((SECONDS + budget))

if [[ -n $keep ]]; then work=$(mkdir -p "$keep" && cd "$keep" && pwd) || exit 2
else work=$(mktemp -d -t harma-gpu-check-XXXXXX); trap 'rm -rf "$work"' EXIT; fi
out=${OUT:-$work/out}
mkdir -p "$out" "$work/cache"
summary=$out/gpu_check.md
export TORCHINDUCTOR_CACHE_DIR=$work/cache/inductor TRITON_CACHE_DIR=$work/cache/triton
export GPU_CHECK_TRACEBACKS=$out/tracebacks

# ------------------------------------------------------------------------------------------------ set-up
missing_modules() {  # the modules of "$@" that do not import in $py
  "$py" - "$@" 2>/dev/null <<'PY' || echo "$*"
import importlib, sys
bad = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        bad.append(name)
print(" ".join(bad))
PY
}

needed_modules() { local s; for s in "${selected[@]}"; do echo "${NEEDS[$s]}"; done | tr ' ' '\n' | sort -u; }

install_kit() {  # the carried wheel kit into /tmp/site, when it is here and something is missing
  [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null || return 0
  local t=$SECONDS
  "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1 \
    || { echo "gpu_check: the wheel kit .whl did not install into /tmp/site"; return 0; }
  export PATH=/tmp/site/bin:$PATH PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  echo "gpu_check: installed the wheel kit .whl into /tmp/site in $((SECONDS - t)) s"
}

declare -A BLOCKED
block_stages() {  # mark each selected stage whose modules are missing; one line naming them and the fix
  local s m stages parts=()
  for m in "$@"; do
    stages=""
    for s in "${selected[@]}"; do
      [[ " ${NEEDS[$s]} " == *" $m "* ]] && { BLOCKED[$s]="${BLOCKED[$s]:+${BLOCKED[$s]} }$m"; stages+=" $s"; }
    done
    parts+=("$m (stage$([[ ${#stages} -gt 2 ]] && echo s)${stages})")
  done
  echo "gpu_check: MISSING $(printf '%s, ' "${parts[@]}" | sed 's/, $//'): fix: carry the wheel kit as .whl (build" \
    "it here: KIT_EXTRA='pytest pluggy iniconfig' bash ../shared/gpu/make-kit.sh .whl) or, where a network" \
    "exists, pip install -e '.[all]'"
}

MISSING=""
check_modules() {  # MISSING: the needed modules that do not import, after installing the kit if it is here
  export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$repo"
  MISSING=$(missing_modules $(needed_modules))
  if [[ -n $MISSING ]]; then install_kit; MISSING=$(missing_modules $(needed_modules)); fi
  [[ -z $MISSING ]] || block_stages $MISSING
}

check_cuda() {  # on a GPU run, no CUDA means nothing can be measured: one line, every stage failed
  [[ $dry -eq 1 || " $MISSING " == *" torch "* ]] && return 0
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && return 0
  local build
  build=$("$py" -c 'import torch; print("torch", torch.__version__, "CUDA build", torch.version.cuda)' 2>&1 | tail -1)
  echo "gpu_check: CUDA is not available to $py ($build): nothing can be measured; on a machine without a GPU" \
    "run --dry-run" | tee -a "$summary"
  exit "${#selected[@]}"
}

header() {
  echo "## gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname) $([[ $dry -eq 1 ]] && echo '(CPU dry run)')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available',
    torch.cuda.is_available())" 2>&1 | tail -1
}

# ------------------------------------------------------------------------------------------------ stages
if [[ $dry -eq 1 ]]; then
  export HARMA_GPU_TESTS_ON_CPU=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  dev=(--device cpu --arch tiny); rows=bf16:off,fp32:off; batch=16; steps=5; counts=1,2; images=120; px=64
  e2e_set=(data.num_workers=1 data.image_size=32)
else
  dev=(--device cuda --arch ViT-B-32); rows=bf16:off,bf16:$mode,fp32:off; batch=214; steps=20; counts=1,2,4
  images=1000; px=256; e2e_set=()
  [[ $full -eq 1 ]] && rows=$rows,bf16:default,bf16:max-autotune
fi

stage_command() {  # stage_command LETTER LIMIT: the stage's command line in CMD
  case $1 in
    b) CMD=("$py" benchmarks/bench_gpu_step.py "${dev[@]}" --batch "$batch" --rows "$rows" --steps "$steps"
            --warmup 3) ;;
    c) CMD=("$py" benchmarks/bench_gpu_e2e.py "${dev[@]}" --images "$images" --image-px "$px" --epochs 2
            --data "$work/synth-$images-$px" --set "${e2e_set[@]}") ;;
    e) CMD=("$py" benchmarks/bench_gpu_pack.py "${dev[@]}" --batch "$batch" --counts "$counts" --steps 10
            --warmup 2 --timeout "$2") ;;
    d) CMD=("$py" benchmarks/gpu_check_study.py "$work/study-$(date +%s)" --timeout "$(($2 > 60 ? $2 - 30 : $2 / 2))"
            --log "$out/d-study-run.log") ; [[ $dry -eq 1 ]] && CMD+=(--dry-run) ;;
    a) CMD=("$py" -m pytest -q -m gpu -p no:cacheprovider --tb=line tests/test_gpu.py) ;;
  esac
}

table_rows() { grep -E "$2" "$out/$1.txt" 2>/dev/null; }

TRIM='function t(x) { gsub(/^ +| +$/, "", x); return x }'

figure() {  # one line of figures from a stage's output
  local name=$1
  case $name in
    b-step) table_rows "$name" '^\| (fp32|bf16) ' | awk -F'|' "$TRIM"'{printf "%s/%s %s pairs/s, MFU %s, ",
              t($2), t($3), t($6), t($8); printf "compile %s s; ", t($9)}' ;;
    c-end-to-end) table_rows "$name" '^step only' || table_rows "$name" '^\| [0-9]+ \|' | tail -1 |
              awk -F'|' "$TRIM"'{printf "epoch %s: %s images/s end to end (no step-only figure)", t($2), t($4)}' ;;
    e-packed) table_rows "$name" '^\| [0-9]+ \|' | awk -F'|' "$TRIM"'{printf "%s procs: %s pairs/s (peak %s); ",
              t($2), t($3), t($6)}' ;;
    d-study) grep -v '^\s*$' "$out/$name.txt" | tail -1 ;;
    a-pytest-gpu) grep -Eo '[0-9]+ (passed|failed|error).*in [0-9.]+s' "$out/$name.txt" | tail -1 ;;
  esac
}

stage_limit() {  # the stage's share of the time left, after what the summary needs
  local s=$1; shift
  local left=$((deadline - SECONDS - 5)) limit
  limit=$((left * WEIGHT[$s] / $(weights_left "$s" "$@")))
  echo $((limit < 10 ? 10 : limit))
}

run_timed() {  # run_timed LIMIT LOG: CMD under LIMIT s in its own process group, output streamed to LOG and here
  : >"$2"
  timeout -k 5 "$1" "${CMD[@]}" >>"$2" 2>&1 &
  local pid=$!
  STAGE_PID=$pid
  tail -n +1 -f --pid="$pid" "$2" 2>/dev/null &
  local tail_pid=$! status
  wait "$pid"; status=$?
  wait "$tail_pid" 2>/dev/null
  STAGE_PID=
  return "$status"
}

measured_rows() {  # how many result rows a stage printed
  case $1 in
    b-step) table_rows "$1" '^\| (fp32|bf16) \|' | wc -l ;;
    c-end-to-end|e-packed) table_rows "$1" '^\| [0-9]+ \|' | wc -l ;;
    *) echo 0 ;;
  esac
}

verdict_of() {  # verdict_of STATUS LIMIT NAME
  case $1 in
    0) echo ok ;;
    124|137) echo "timed out (${2} s) after $(measured_rows "$3") row(s)" ;;
    *) echo "FAILED (exit $1): $(grep -v '^\s*$' "$out/$3.txt" | tail -1 | cut -c1-200)" ;;
  esac
}

run_stage() {  # run_stage LETTER LATER...: one stage; its row into the summary; status 0 when ok
  local s=$1 name=${NAME[$1]} start=$SECONDS limit verdict status
  shift
  limit=$(stage_limit "$s" "$@")
  if [[ -n ${BLOCKED[$s]:-} ]]; then
    verdict="not run: missing ${BLOCKED[$s]}"; echo "== $name: $verdict"
  else
    echo "== $name (limit $limit s)"
    stage_command "$s" "$limit"
    run_timed "$limit" "$out/$name.txt"; status=$?
    verdict=$(verdict_of "$status" "$limit" "$name")
    echo "== $name: $verdict in $((SECONDS - start)) s"
  fi
  echo "| $name | $verdict | $((SECONDS - start)) | $limit | $(figure "$name" 2>/dev/null | tr '\n' ' ') |" >>"$summary"
  [[ $verdict == ok ]]
}

stop_stage() { [[ -n ${STAGE_PID:-} ]] && kill -TERM -- "-$STAGE_PID" 2>/dev/null; exit 130; }

# ------------------------------------------------------------------------------------------------ main
trap stop_stage INT TERM
header | tee "$summary"
check_modules >"$work/setup.txt"           # in this shell: BLOCKED, MISSING and the kit's PYTHONPATH stay set
tee -a "$summary" <"$work/setup.txt"
check_cuda
plan=""
total_weight=$(weights_left "${selected[@]}")
for s in "${selected[@]}"; do plan+=" $s $((WEIGHT[$s] * (budget - SETUP_S) / total_weight))"; done
echo "budget $budget s:$plan s, plus $SETUP_S s of set-up; compile cache $TORCHINDUCTOR_CACHE_DIR" | tee -a "$summary"
{ echo; echo "| stage | result | seconds | limit | figures |"; echo "|---|---|---:|---:|---|"; } >>"$summary"

failed=0
for i in "${!selected[@]}"; do
  run_stage "${selected[@]:$i}" || failed=$((failed + 1))
done
echo; echo "total $SECONDS s of $budget s"; echo
cat "$summary"
exit "$failed"
