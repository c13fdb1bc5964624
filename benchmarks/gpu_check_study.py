"""Stage (d) of gpu_check.sh: run `studies/gpu-smoke.yaml` to the end in a scratch folder and check its trials
table the way a user reads it (`pandas.read_parquet` on the study's folder).

On a GPU the study runs as shipped (0.25 GPU per trial, four trials packed on each GPU) and must end with
COMPLETE and PRUNED rows and no FAILED one.  With `--dry-run` the same study runs CPU-only and smaller
(gpus_per_trial 0, 2 trials at once, 2 epochs) and must end with a COMPLETE row and no FAILED one.  The study
gets `--timeout` seconds (then SIGINT, which stops it as a user's Ctrl-C does, then a kill), and its own output
(Ray's, with any trial's traceback) goes to `--log` (default WORKDIR/study.log); whatever happens, the last line
printed is the verdict, never a traceback.  Usage:
`python benchmarks/gpu_check_study.py WORKDIR [--dry-run] [--timeout S] [--log FILE]`.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from gpu_verdict import emit, one_line, run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GRACE_S = 20


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


def run_study(path: Path, workdir: Path, timeout: float | None, log: Path) -> str:
    """`harma study run` to the end or to the time limit, its output in `log`; how it ended, in words."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "harma.cli", "study", "run", str(path)], cwd=workdir,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        return f"study exit {proc.wait(timeout=timeout)}"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        return f"study stopped at the {timeout:g} s limit (exit {code})"


def trials_verdict(workdir: Path, ended: str, dry_run: bool) -> tuple[bool, str]:
    """(ok, the verdict line) from the study's trials table, read as a user reads it."""
    import pandas as pd

    folder = workdir / "results" / "trials" / "study=gpu-smoke"
    if not folder.is_dir():
        return False, f"{ended}; no trials table at {folder} (the study wrote no results); NOT OK"
    try:
        trials = pd.read_parquet(folder)
    except Exception as exc:  # noqa: BLE001 - the verdict names it
        return False, f"{ended}; the trials table does not read ({one_line(exc)}); NOT OK"
    counts = trials["status"].value_counts().to_dict()
    wanted = {"COMPLETE"} if dry_run else {"COMPLETE", "PRUNED"}
    ok = ended == "study exit 0" and wanted <= set(counts) and "FAILED" not in counts
    emit(trials[["trial_id", "status", "stop_epoch", "gpu_seconds"]].to_string(index=False))
    return ok, (f"{ended}; {len(trials)} trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                + "; " + ("ok" if ok else f"NOT OK (wanted {sorted(wanted)}, no FAILED)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--timeout", type=float, default=None, help="seconds the study may run")
    parser.add_argument("--log", default=None, help="the study's own output (default: WORKDIR/study.log)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = Path(args.log) if args.log else workdir / "study.log"
    emit(f"harma study run {workdir / 'gpu-smoke.yaml'}; its output: {log}")
    ended = run_study(study_file(workdir, args.dry_run), workdir, args.timeout, log)
    ok, verdict = trials_verdict(workdir, ended, args.dry_run)
    emit(verdict)
    return 0 if ok else 1


if __name__ == "__main__":
    run("gpu_check_study", main)
