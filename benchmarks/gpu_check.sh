#!/usr/bin/env bash
# GPU check for a lent machine (one H100/H200, CUDA torch), from the repo root after `pip install -e .`:
# HarMA-injected ViT-B-32 train-step throughput (pairs/s) at batch 214 in fp32 and bf16 autocast, and peak GPU
# memory, printed as a markdown table (and copied to $OUT/gpu_check.md when $OUT is set).  Whole script is
# capped at 7.5 minutes.  Usage: bash benchmarks/gpu_check.sh [extra args for bench_gpu_step.py]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "## gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
python -c "import torch, harma; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

dest=/dev/null
if [[ -n "${OUT:-}" ]]; then dest="$OUT/gpu_check.md"; fi
timeout 450 python benchmarks/bench_gpu_step.py --batch 214 --steps 20 --warmup 3 "$@" | tee "$dest"
