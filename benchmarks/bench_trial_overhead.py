"""Trial slots that train: harma's study runner side by side with plain Ray Tune, in one run.

Part 1, the smoke study (`studies/smoke.yaml`: 10 trials, 4 epochs, ASHA, 2 slots) run by harma twice, as shipped
(`scheduler.deterministic: true`) and asynchronous (`false`), then plain Tune trials that sleep through the epoch
times of the first run's trials (`slot_timeline.py plain`).  Part 2, one-epoch trials (the smoke space, no early
stopping, asynchronous) for 5, 10 and 20 trials, each replayed by plain Tune.  Every driver runs in its own
process (`slot_timeline.py`), started with BENCH_LAUNCH set to the time it was launched.  Per run: the share of
slot time spent in epochs, the wait from a slot falling free to the next trial's start and to its first epoch,
the idle slot seconds per trial, the time from launch to the first trial start and first result, the driver's
peak RSS and the heavy modules the driver imported.  Targets: harma's share >= 85% of plain Tune's, free -> next
trial <= 2x plain Tune's, idle per trial constant in the trial count.  All in a temporary folder; the synthetic
set is built first, in a subprocess (the driver never imports torch).
Run: `OMP_NUM_THREADS=1 python benchmarks/bench_trial_overhead.py [--counts 5 10 20] [--skip-smoke]`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from slot_timeline import replay_epochs, slot_figures  # noqa: E402

SLOTS = 2
PREBUILD = ("from harma.config import load_config; from harma.data import build_datasets; "
            "from harma.model.build import tokenizer_for; cfg = load_config('synthetic-tiny'); "
            "build_datasets(cfg.data, tokenizer_for(cfg))")


def child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "BENCH_LAUNCH": repr(time.time())}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.pop("RAY_ADDRESS", None)
    return env


def run_child(work: Path, *args: str) -> dict:
    out = work / f"facts-{time.time_ns()}.json"
    proc = subprocess.run([sys.executable, str(HERE / "slot_timeline.py"), *args, str(out)], cwd=work,
                          env=child_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"slot_timeline.py {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


def write_study(work: Path, name: str, changes: dict) -> Path:
    data = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    data.update({"name": name, "storage": str(work / "results")})
    for key, value in changes.items():
        if key.startswith("set."):
            data["base"]["set"][key[4:]] = value
        else:
            data[key] = value
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def harma_and_plain(work: Path, name: str, changes: dict) -> tuple[dict, dict]:
    harma = run_child(work, "harma", str(write_study(work, name, changes)))
    replay = work / f"{name}-replay.json"
    replay.write_text(json.dumps(replay_epochs(harma)))
    return harma, run_child(work, "plain", str(replay), str(SLOTS))


HEADER = ("| run | trials | span s | epoch s | slot time in epochs | free -> next start | free -> next epoch | "
          "idle s / trial | launch -> first start | launch -> first result | driver peak RSS | driver imported |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def row(label: str, facts: dict) -> str:
    f = slot_figures(facts, SLOTS)
    return (f"| {label} | {f['trials']} | {f['span']:.1f} | {f['epoch_seconds']:.1f} | {100 * f['share']:.0f}% | "
            f"{f['free_to_start']:.2f} s | {f['free_to_epoch']:.2f} s | {f['idle_per_trial']:.2f} | "
            f"{f['launch_to_first_start']:.1f} s | {f['launch_to_first_result']:.1f} s | "
            f"{f['driver_rss_mib']:.0f} MiB | {', '.join(facts['heavy_modules']) or 'none heavy'} |")


def ratios(harma: dict, plain: dict) -> str:
    h, p = slot_figures(harma, SLOTS), slot_figures(plain, SLOTS)
    return (f"harma / plain: share {h['share'] / p['share']:.2f} (target >= 0.85), free -> next start "
            f"{h['free_to_start'] / max(p['free_to_start'], 1e-9):.2f}x, free -> next epoch "
            f"{h['free_to_epoch'] / max(p['free_to_epoch'], 1e-9):.2f}x (target <= 2x)")


def smoke(work: Path) -> None:
    det, plain = harma_and_plain(work, "smoke-det", {})
    start = time.time()
    asy = run_child(work, "harma", str(write_study(work, "smoke-async", {"scheduler": {
        "type": "asha", "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "deterministic": False}})))
    print(f"\n## Smoke study (10 trials, 4 epochs, ASHA), {SLOTS} slots\n\n{HEADER}")
    print(row("harma, deterministic (as shipped)", det))
    print(row("harma, asynchronous", asy))
    print(row("plain Tune, sleeping the deterministic run's epochs", plain))
    print(f"\n{ratios(det, plain)}")
    print(f"deterministic / asynchronous span: {slot_figures(det, SLOTS)['span']:.1f} / "
          f"{slot_figures(asy, SLOTS)['span']:.1f} s; asynchronous run took {time.time() - start:.0f} s in all")
    for label, facts in (("deterministic", det), ("asynchronous", asy)):
        print(f"{label}: statuses {facts['counts']}, best {facts['best']}")


def counts(work: Path, sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        harma, plain = harma_and_plain(work, f"one-epoch-{n}", {
            "num_samples": n, "set.train.epochs": 1,
            "scheduler": {"type": "none", "deterministic": False}})
        rows += [row(f"harma, {n} one-epoch trials", harma), row(f"plain Tune, {n} trials", plain)]
        print(ratios(harma, plain), flush=True)
    print(f"\n## One-epoch trials, {SLOTS} slots\n\n{HEADER}")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="*", default=[5, 10, 20])
    parser.add_argument("--skip-smoke", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average "
          f"at start {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="harma-slots-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-c", PREBUILD], cwd=work, env=child_env(), check=True)
        if not args.skip_smoke:
            smoke(work)
        if args.counts:
            counts(work, args.counts)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
