"""The drivers `bench_trial_overhead.py` starts, one per process, and the slot figures it reads off them.

`harma`: `harma.tune.runner.run_study` on a study file, with the Parquet callback swapped for a subclass that
also timestamps each trial's start (Tune's on_trial_start: its actor is up, or reused), each epoch result (with
the trainer's own `epoch_seconds`: train + val + test evaluation) and its end.  `plain`: Ray Tune on the same
local Ray set-up (a private Ray on this machine, 1 CPU and 1 `trial_slot` per trial, as many trials at once as
harma ran, FIFO, Tune's defaults otherwise: no actor reuse), each trial a function that sleeps through the
epoch times a harma trial measured and reports after each, timestamped by the same hooks.  Both write one JSON
file: the trials' timelines, the driver's peak RSS, the launch time (set by the parent just before it started
the process) and which heavy modules the driver had imported at the end.
Figures (`slot_figures`): with S slots over the span from the first trial start to the last trial end, the
share of slot time spent in epochs; for each trial after the first S (by start), the wait from the slot it took
falling free (the (k-S)-th trial end) to its start and to its first epoch's start (first result - its epoch);
and the idle slot seconds per trial, (S * span - epoch seconds) / trials.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HEAVY = ("torch", "open_clip", "harma.model", "harma.train")


class Stamps:
    """Wall-clock times of each trial's start, epoch results (with epoch_seconds) and end, by a trial key."""

    def __init__(self) -> None:
        self.trials: dict[str, dict[str, Any]] = {}

    def start(self, key: str) -> None:
        self.trials.setdefault(key, {"start": time.time(), "results": [], "end": None})

    def result(self, key: str, result: dict) -> None:
        if "epoch" in result and key in self.trials:
            self.trials[key]["results"].append((time.time(), float(result.get("epoch_seconds", 0.0))))

    def end(self, key: str) -> None:
        if key in self.trials:
            self.trials[key]["end"] = time.time()


def driver_facts(stamps: Stamps) -> dict[str, Any]:
    return {"trials": stamps.trials, "launch": float(os.environ.get("BENCH_LAUNCH", "nan")),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "heavy_modules": [m for m in HEAVY if m in sys.modules]}


def run_harma(study_path: str, out: str) -> None:
    import harma.tune.callbacks as callbacks
    from harma.tune.records import trial_spec

    stamps = Stamps()

    class Timed(callbacks.ParquetResults):
        def on_trial_start(self, iteration, trials, trial, **info):
            stamps.start(trial_spec(trial.config).trial_id)
            super().on_trial_start(iteration, trials, trial, **info)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            stamps.result(trial_spec(trial.config).trial_id, result)
            super().on_trial_result(iteration, trials, trial, result, **info)

        def _finish(self, trial, error: bool) -> None:
            stamps.end(trial_spec(trial.config).trial_id)
            super()._finish(trial, error)

    callbacks.ParquetResults = Timed
    from harma.tune.runner import run_study

    summary = run_study(study_path, echo=lambda *a, **k: None)
    Path(out).write_text(json.dumps({**driver_facts(stamps), "counts": summary["counts"], "best": summary["best"]}))


def sleeper(config: dict) -> None:
    from ray import tune

    for epoch, seconds in enumerate(config["epochs"], start=1):
        time.sleep(seconds)
        tune.report({"epoch": epoch, "epoch_seconds": seconds})


def run_plain(replay: str, slots: int, out: str) -> None:
    """Plain Tune: one sleeping trial per replayed harma trial (its epoch seconds), in harma's start order."""
    import ray
    from ray import tune

    epochs = json.loads(Path(replay).read_text())
    stamps = Stamps()

    class Timed(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            stamps.start(trial.trial_id)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            stamps.result(trial.trial_id, result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            stamps.end(trial.trial_id)

    ray.init(num_cpus=os.cpu_count(), resources={"trial_slot": max(slots, os.cpu_count() or 1)},
             object_store_memory=256 * 1024**2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    try:
        tuner = tune.Tuner(tune.with_resources(sleeper, {"cpu": 1, "trial_slot": 1}),
                           param_space={"epochs": tune.grid_search(epochs)},
                           tune_config=tune.TuneConfig(max_concurrent_trials=slots),
                           run_config=tune.RunConfig(name="plain", storage_path=str(Path(out).parent / "plain-ray"),
                                                     callbacks=[Timed()], verbose=0))
        tuner.fit()
    finally:
        ray.shutdown()
    Path(out).write_text(json.dumps(driver_facts(stamps)))


def replay_epochs(facts: dict) -> list[list[float]]:
    """Each trial's epoch seconds, in start order (what a plain trial sleeps through)."""
    trials = sorted(facts["trials"].values(), key=lambda t: t["start"])
    return [[seconds for _, seconds in t["results"]] for t in trials]


def slot_figures(facts: dict, slots: int) -> dict[str, float]:
    trials = [t for t in facts["trials"].values() if t["end"] is not None]
    starts = sorted(t["start"] for t in trials)
    ends = sorted(t["end"] for t in trials)
    span = ends[-1] - starts[0]
    epochs = sum(s for t in trials for _, s in t["results"])
    by_start = sorted(trials, key=lambda t: t["start"])
    to_start = [by_start[k]["start"] - ends[k - slots] for k in range(slots, len(by_start))]
    to_epoch = [by_start[k]["results"][0][0] - by_start[k]["results"][0][1] - ends[k - slots]
                for k in range(slots, len(by_start)) if by_start[k]["results"]]
    firsts = [t["results"][0][0] for t in trials if t["results"]]
    return {"trials": len(trials), "span": span, "epoch_seconds": epochs, "share": epochs / (slots * span),
            "free_to_start": statistics.median(to_start) if to_start else float("nan"),
            "free_to_epoch": statistics.median(to_epoch) if to_epoch else float("nan"),
            "idle_per_trial": (slots * span - epochs) / len(trials),
            "launch_to_first_start": starts[0] - facts["launch"],
            "launch_to_first_result": min(firsts) - facts["launch"],
            "driver_rss_mib": facts["peak_rss_mib"]}


def main() -> None:
    mode = sys.argv[1]
    if mode == "harma":
        run_harma(sys.argv[2], sys.argv[3])
    elif mode == "plain":
        run_plain(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"usage: slot_timeline.py harma STUDY OUT | plain REPLAY SLOTS OUT (got {mode!r})")


if __name__ == "__main__":
    main()
