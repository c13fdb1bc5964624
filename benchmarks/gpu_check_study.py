"""Stage (d) of gpu_check.sh: run `studies/gpu-smoke.yaml` to the end in a scratch folder and check its trials
table the way a user reads it (`pandas.read_parquet` on the study's folder).

On a GPU the study runs as shipped (0.25 GPU per trial, four trials packed on each GPU) and must end with
COMPLETE and PRUNED rows and no FAILED one.  With `--dry-run` the same study runs CPU-only and smaller
(gpus_per_trial 0, 2 trials at once, 2 epochs) and must end with a COMPLETE row and no FAILED one.  The last line
printed is the summary.  Usage: `python benchmarks/gpu_check_study.py WORKDIR [--dry-run]`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def study_file(workdir: Path, dry_run: bool) -> Path:
    study = yaml.safe_load((REPO / "studies" / "gpu-smoke.yaml").read_text())
    if dry_run:
        study["resources"]["gpus_per_trial"] = 0
        study["num_samples"], study["max_concurrent"] = 2, 2
        study["base"]["set"]["train.epochs"] = 2
        study["scheduler"].update(max_epochs=2, grace_period=1)
    path = workdir / "gpu-smoke.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = study_file(workdir, args.dry_run)
    run = subprocess.run([sys.executable, "-m", "harma.cli", "study", "run", str(path)], cwd=workdir)
    import pandas as pd

    trials = pd.read_parquet(workdir / "results" / "trials" / "study=gpu-smoke")
    counts = trials["status"].value_counts().to_dict()
    wanted = {"COMPLETE"} if args.dry_run else {"COMPLETE", "PRUNED"}
    ok = run.returncode == 0 and wanted <= set(counts) and "FAILED" not in counts
    print(trials[["trial_id", "status", "stop_epoch", "gpu_seconds"]].to_string(index=False))
    print(f"study exit {run.returncode}; {len(trials)} trials: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "; "
          + ("ok" if ok else f"NOT OK (wanted {sorted(wanted)}, no FAILED)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
