"""Per-trial overhead of a Ray Tune trial on a local Ray, and study wall time against the sum of trial times.

Part 1 drives Tune itself on `ray.init(num_cpus=2, resources={"trial_slot": 2}, 256 MiB object store)` and
runs trials one at a time.  A Tune Callback timestamps each trial's `on_trial_start` (its actor is up) and its
first `on_trial_result`; start -> first result is the figure.  Three paths:
  (a) a bare function trial that reports `{"epoch": 1}` immediately;
  (b) harma's in-process path, `harma.tune.trial.run_trial` with workers_per_trial 1, on a tiny synthetic
      study (tiny random-init CLIP, 120 synthetic images, 1 epoch) loaded with `harma.study.parse.load_study`;
  (c) harma's TorchTrainer path, the same study with workers_per_trial 2 (DDP over gloo on 2 Ray Train workers).
For (b) and (c) the first result comes after a whole epoch, so the epoch's own `epoch_seconds` (train + val + test
evaluation, as the trainer measures it) is also shown and subtracted: the rest is set-up (imports, model and data
build, and for (c) the Train controller, worker group and process group).
Part 2 shuts that Ray down and runs a 4-trial ablation (2 arms x 2 seeds, 2 epochs) through
`harma.tune.runner.run_study` with max_concurrent 2 (it starts its own Ray), then compares the study's wall time
with the sum of its trials' `wall_seconds` from the Parquet trials table.
Run: `python benchmarks/bench_trial_overhead.py [--bare 5] [--inproc 3] [--ddp 2]`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pandas as pd
import ray
from ray import tune

from harma.data import build_datasets
from harma.model.build import tokenizer_for
from harma.tune.records import TRIAL_KEY
from harma.tune.runner import _trial_resources, run_study
from harma.study.parse import load_study
from harma.tune.trial import run_trial

STUDY_YAML = """
name: {name}
kind: ablation
base:
  config: synthetic-tiny
  set: {{train.epochs: {epochs}, train.batch_size: 16, data.synthetic_images: 120,
         data.image_root: "{root}/synthetic-120"}}
resources: {{gpus_per_trial: 0, cpus_per_worker: 1, workers_per_trial: {workers}, custom: {{trial_slot: 1}}}}
max_concurrent: {concurrent}
seeds: {seeds}
scheduler: {{type: none}}
storage: "{root}/{name}-results"
arms:
{arms}
"""


class Timestamps(tune.Callback):
    """Wall-clock time of each trial's start, first result (with its epoch_seconds) and end, by trial id."""

    def __init__(self) -> None:
        self.start: dict[str, float] = {}
        self.first: dict[str, float] = {}
        self.epoch_seconds: dict[str, float] = {}
        self.end: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.start.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.trial_id not in self.first:
            self.first[trial.trial_id] = time.time()
            self.epoch_seconds[trial.trial_id] = float(result.get("epoch_seconds", 0.0))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.end[trial.trial_id] = time.time()

    def to_first(self) -> list[float]:
        return [self.first[t] - self.start[t] for t in self.start if t in self.first]

    def epochs(self) -> list[float]:
        return [self.epoch_seconds[t] for t in self.start if t in self.first]

    def gaps(self) -> list[float]:
        """Trials run one at a time: previous trial's end -> next trial's start (actor stop + actor start)."""
        starts = sorted(self.start.values())
        ends = sorted(self.end.values())
        return [s - e for e, s in zip(ends, starts[1:])]


def bare_trial(config: dict) -> None:
    tune.report({"epoch": 1})


def write_study(root: Path, name: str, workers: int, epochs: int, seeds: list[int], arms: dict[str, str],
                concurrent: int):
    text = STUDY_YAML.format(name=name, workers=workers, epochs=epochs, seeds=seeds, root=root,
                             concurrent=concurrent,
                             arms="\n".join(f"  {arm}: {{{ov}}}" for arm, ov in arms.items()))
    path = root / f"{name}.yaml"
    path.write_text(text)
    return load_study(path)


def fit(trainable, resources: dict, param_space: dict, samples: int, storage: Path, name: str) -> Timestamps:
    stamps = Timestamps()
    tuner = tune.Tuner(tune.with_resources(trainable, resources), param_space=param_space,
                       tune_config=tune.TuneConfig(num_samples=samples, max_concurrent_trials=1),
                       run_config=tune.RunConfig(name=name, storage_path=str(storage), callbacks=[stamps],
                                                 verbose=0, failure_config=tune.FailureConfig(max_failures=0)))
    results = tuner.fit()
    errors = [r.error for r in results if r.error]
    if errors:
        raise RuntimeError(f"{name}: {len(errors)} trial(s) failed: {errors[0]}")
    return stamps


def harma_trials(study) -> list:
    """The study's (arm, seed) trials as the runner plans them (an ablation needs no results store)."""
    from harma.tune.runner import _fixed_trials

    return _fixed_trials(study, None)


def harma_fit(study, root: Path) -> Timestamps:
    trainable = tune.with_parameters(run_trial, study=study, checkpoint_root=str(root / f"{study.name}-runs"),
                                     train_storage=str(root / f"{study.name}-train"))
    return fit(trainable, _trial_resources(study), {TRIAL_KEY: tune.grid_search(harma_trials(study))}, 1,
               root / "tune", study.name)


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def part1(root: Path, n_bare: int, n_inproc: int, n_ddp: int) -> None:
    inproc = write_study(root, "inproc", 1, 1, list(range(1, n_inproc + 1)), {"harma": ""}, 1)
    ddp = write_study(root, "ddp", 2, 1, list(range(1, n_ddp + 1)), {"harma": ""}, 1)
    cfg = inproc.run_config()
    build_datasets(cfg.data, tokenizer_for(cfg))        # synthetic set + image cache exist before any trial
    ray.init(num_cpus=2, resources={"trial_slot": 2}, object_store_memory=256 * 1024**2, include_dashboard=False)
    try:
        rows = []
        t0 = time.time()
        bare = fit(bare_trial, {"cpu": 1, "trial_slot": 1}, {}, n_bare, root / "tune", "bare")
        rows.append(("(a) bare function trial, reports at once", bare, time.time() - t0))
        t0 = time.time()
        rows.append(("(b) harma in-process (workers_per_trial 1)", harma_fit(inproc, root), time.time() - t0))
        t0 = time.time()
        rows.append(("(c) harma TorchTrainer (workers_per_trial 2, gloo)", harma_fit(ddp, root), time.time() - t0))
    finally:
        ray.shutdown()
    print("Per-trial overhead, trials run one at a time on a local 2-CPU Ray; seconds from Tune's on_trial_start "
          "to the first on_trial_result (medians; every trial listed)\n")
    print("| path | trials | start -> first result | first epoch's own epoch_seconds | set-up (difference) | "
          "all start -> first result | previous end -> next start | fit() wall / trials |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for name, stamps, wall in rows:
        firsts, epochs, gaps = stamps.to_first(), stamps.epochs(), stamps.gaps()
        setup = [f - e for f, e in zip(firsts, epochs)]
        gap = f"{statistics.median(gaps):.2f}" if gaps else "n/a"
        print(f"| {name} | {len(firsts)} | {statistics.median(firsts):.2f} | {statistics.median(epochs):.2f} | "
              f"{statistics.median(setup):.2f} | {fmt(firsts)} | {gap} | {wall / len(firsts):.1f} |")


def part2(root: Path) -> None:
    study = write_study(root, "concurrency", 1, 2, [1, 2],
                        {"harma": "", "contrastive-plus-triplet": "loss.w_triplet: 0.5"}, 2)
    cfg = study.run_config()
    build_datasets(cfg.data, tokenizer_for(cfg))
    start = time.time()
    run_study(study, echo=lambda *a, **k: None)
    wall = time.time() - start
    trials = pd.read_parquet(Path(study.storage_path()) / "trials")
    assert len(trials) == 4 and set(trials["status"]) == {"COMPLETE"}, trials[["trial_id", "status", "error"]]
    span = (trials["finished_at"].max() - trials["started_at"].min()).total_seconds()
    total = float(trials["wall_seconds"].sum())
    print("\nStudy wall time vs the sum of trial wall times: 4-trial ablation (2 arms x 2 seeds, 2 epochs each, tiny "
          "synthetic), harma.tune.runner.run_study, max_concurrent 2, 2 CPUs\n")
    print("| study | trials | sum of trial wall_seconds | first start -> last finish | run_study() call "
          "(incl. Ray start/stop) | sum / span | sum / call | trial wall_seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    print(f"| ablation, max_concurrent 2 | {len(trials)} | {total:.1f} | {span:.1f} | {wall:.1f} | "
          f"{total / span:.2f}x | {total / wall:.2f}x | {fmt(sorted(trials['wall_seconds']))} |")
    t0 = trials["started_at"].min()
    print("\ntimeline (seconds after the first trial start): " + "; ".join(
        f"{r.trial_id} {(r.started_at - t0).total_seconds():.1f}-{(r.finished_at - t0).total_seconds():.1f}"
        for r in trials.sort_values("started_at").itertuples()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bare", type=int, default=5, help="bare trials")
    parser.add_argument("--inproc", type=int, default=3, help="harma in-process trials")
    parser.add_argument("--ddp", type=int, default=2, help="harma TorchTrainer trials")
    parser.add_argument("--skip-study", action="store_true", help="skip part 2 (run_study)")
    args = parser.parse_args()
    print(f"ray {ray.__version__}, {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}\n")
    with tempfile.TemporaryDirectory(prefix="harma-bench-") as tmp:
        root = Path(tmp)
        part1(root, args.bare, args.inproc, args.ddp)
        if not args.skip_study:
            part2(root)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
