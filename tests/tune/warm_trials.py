"""Run study trials one after another in THIS process through the entry point a Tune trial runs
(`harma.tune.trial.run_trial`), as a reused Ray actor does, and print one JSON line: every reported epoch of
each run (its metrics and losses), the sha256 of its best.pt tensors, the backbone cache's hits and misses, and
the child processes left after each run.  `tune.report` is replaced by a collector; a run listed with a stop
epoch gets SystemExit from its report at that epoch, which is how Ray Tune ends a trial it stops.

Usage: python warm_trials.py STUDY.yaml OUT_ROOT RUN [RUN ...], RUN = ARM[:STOP_EPOCH]; each run writes into its
own checkpoint root OUT_ROOT/<index> (a repeated arm starts over, it does not resume).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import sys


def tensor_digest(path: str) -> str:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)["trainable"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def run(study, arm: str, stop: int | None, root: str) -> dict:
    from ray import tune

    import harma.tune.trial as trial_mod
    from harma.tune.records import TRIAL_KEY, TrialSpec

    seed = study.seeds[0]
    spec = TrialSpec(f"{arm}-s{seed}", seed, {**study.arms[arm], "train.seed": seed}, arm=arm)
    reported: list[dict] = []

    def report(result: dict) -> None:
        keep = {k: v for k, v in result.items() if k.startswith(("val_", "test_", "best_", "loss", "epoch"))
                and k != "epoch_seconds" and isinstance(v, (int, float))}
        reported.append(keep)
        if stop is not None and result.get("epoch") == stop:
            sys.exit(0)

    tune.report = report
    trial_mod._where = lambda: {"host": "test", "node_id": "test", "pid": 0}
    try:
        trial_mod.run_trial({TRIAL_KEY: spec}, study, root, root + "/ray")
    except SystemExit:
        pass
    out = trial_mod.trial_run_config(study, spec, root).train.out_dir
    return {"arm": arm, "epochs": reported, "best": tensor_digest(out + "/best.pt"),
            "children": len(multiprocessing.active_children())}


def main() -> None:
    from harma.model import cache
    from harma.study.parse import load_study

    study = load_study(sys.argv[1])
    runs = []
    for index, item in enumerate(sys.argv[3:]):
        arm, _, stop = item.partition(":")
        runs.append(run(study, arm, int(stop) if stop else None, f"{sys.argv[2]}/{index}"))
    print(json.dumps({"runs": runs, "hits": cache.stats.hits, "misses": cache.stats.misses}))


if __name__ == "__main__":
    main()
