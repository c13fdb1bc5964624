"""Scale, simulated: harma's own runner (Optuna ask/tell searcher with TPE, the ASHA policy scheduler, the Parquet
callback, the driver lock) through many trials with many at once, on a local Ray given fake GPUs.

Each trial is a stand-in for `harma.tune.trial.run_trial`: it sleeps 1-3 s per epoch (drawn from its trial id)
and reports what the trainer reports (`EpochRecord.flat()` with planned_epochs), its val mR a function of its
parameters; it imports neither torch nor the model.  The study is the smoke search space with `gpus_per_trial:
0.25`, ASHA over 4 epochs, asynchronous, on a private Ray started with `num_gpus` fake GPUs and as many logical
CPUs as trials at once.  The driver runs in its own process (`--driver`) and reports its CPU seconds
(user + system) and wall time; then the parent counts the results files and their bytes, and times `harma study
status` and `harma report` on the finished study, each in a fresh process.
`--searcher N` instead times the searcher alone (ask, 2 epochs, tell; no Ray) for N trials in a row, per 50, on
the study's SQLite storage or, with `--journal`, on an Optuna journal file (`optuna_storage: journal:PATH`).
Run: `OMP_NUM_THREADS=1 python benchmarks/bench_study_scale.py [--trials 250 1000] [--concurrent 64]`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def standin(config: dict, study, checkpoint_root: str, train_storage: str) -> None:
    """Sleeps through 4 epochs and reports like the trainer (no torch)."""
    from ray import tune

    from harma.epoch_record import EpochRecord
    from harma.metrics import METRIC_KEYS

    spec = config["trial"]
    seconds = 1.0 + (zlib.crc32(spec.trial_id.encode()) % 200) / 100.0
    quality = 40.0 - 400.0 * abs(float(spec.overrides.get("optim.lr", 0.003)) - 0.003)
    best = None
    for epoch in range(1, 5):
        time.sleep(seconds)
        metrics = {k: max(0.0, min(100.0, quality + epoch)) for k in METRIC_KEYS}
        if best is None or metrics["r_mean"] > best[1]["r_mean"]:
            best = (epoch, metrics)
        record = EpochRecord(epoch=epoch, val=metrics, test=metrics, train={"loss": 1.0 / epoch}, lr=1e-3,
                             epoch_seconds=seconds, train_seconds=seconds, images_per_s=100.0,
                             best_epoch=best[0], best_val=best[1], best_test=best[1], trainable_params=10,
                             total_params=100, peak_rss_bytes=1, peak_gpu_bytes=None)
        tune.report({**record.flat(), "planned_epochs": 4, "host": "sim", "node_id": "sim", "pid": os.getpid()})


def driver(study_path: str, gpus: int, cpus: int, out: str) -> None:
    import ray

    import harma.tune.cluster as cluster
    import harma.tune.trial as trial_module
    from harma.tune.runner import run_study

    def start_local(study, runtime_env) -> None:
        """harma's private local Ray (loopback only), with fake GPUs and logical CPUs for every trial."""
        with cluster._loopback_node():
            ray.init(num_cpus=cpus, num_gpus=gpus, object_store_memory=256 * 1024**2, include_dashboard=False,
                     _node_ip_address=cluster.LOCAL_NODE_IP, runtime_env=runtime_env, log_to_driver=False,
                     configure_logging=False)

    cluster._start_local = start_local
    trial_module.run_trial = standin
    wall = time.time()
    summary = run_study(study_path, echo=lambda *a, **k: None)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(out).write_text(json.dumps({"wall": time.time() - wall, "cpu": usage.ru_utime + usage.ru_stime,
                                     "peak_rss_mib": usage.ru_maxrss / 1024, "counts": summary["counts"]}))


def write_study(work: Path, trials: int, concurrent: int) -> Path:
    data = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    data.update({"name": f"scale-{trials}", "storage": str(work / "results"), "num_samples": trials,
                 "max_concurrent": concurrent,
                 "resources": {"gpus_per_trial": 0.25, "cpus_per_worker": 1, "workers_per_trial": 1},
                 "scheduler": {"type": "asha", "max_epochs": 4, "grace_period": 1, "reduction_factor": 2}})
    path = work / f"scale-{trials}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def files_of(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def timed(args: list[str], cwd: Path) -> float:
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "harma.cli", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"harma {' '.join(args)}: {proc.stderr[-2000:]}")
    return time.time() - start


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}


def one(work: Path, trials: int, concurrent: int) -> str:
    study = write_study(work, trials, concurrent)
    out = work / f"driver-{trials}.json"
    subprocess.run([sys.executable, __file__, "--driver", str(study), str(concurrent // 4), str(concurrent),
                    str(out)], cwd=work, env=env(), check=True)
    d = json.loads(out.read_text())
    name, root = f"scale-{trials}", work / "results"
    tf, tb = files_of(root / "trials" / f"study={name}")
    ef, eb = files_of(root / "epochs" / f"study={name}")
    rf, rb = files_of(root / "ray")
    status = timed(["study", "status", str(study)], work)
    report = timed(["report", name, "--results", str(root), "--study", str(study), "--out",
                    str(work / f"report-{trials}")], work)
    return (f"| {trials} | {concurrent} | {d['wall']:.0f} s | {d['cpu']:.0f} s | {1000 * d['cpu'] / trials:.0f} ms | "
            f"{d['peak_rss_mib']:.0f} MiB | {tf:,} / {tb / 1024**2:.1f} MiB | {ef:,} / {eb / 1024**2:.1f} MiB | "
            f"{rf:,} / {rb / 1024**2:.1f} MiB | {status:.1f} s | {report:.1f} s | {d['counts']} |")


def searcher_seconds(work: Path, trials: int, journal: bool = False, window: int = 50) -> list[tuple[int, float]]:
    """The searcher alone (no Ray): ask, report 2 epochs and tell `trials` trials one after another on the
    smoke space (TPE; SQLite storage, or a journal file); mean seconds per trial over each `window` trials."""
    import dataclasses

    from harma.study.parse import load_study
    from harma.tune.searcher import OptunaAskTellSearcher

    smoke = load_study(REPO / "studies" / "smoke.yaml")
    study = dataclasses.replace(smoke, name="searcher", storage=str(work / "searcher"), num_samples=trials,
                                scheduler=dataclasses.replace(smoke.scheduler, deterministic=False),
                                optuna_storage=f"journal:{work / 'searcher.journal'}" if journal else None)
    searcher, times, start = OptunaAskTellSearcher(study, "val_r_mean"), [], time.perf_counter()
    for n in range(trials):
        spec = searcher.suggest(f"t{n}")["trial"]
        value = 40.0 - 400.0 * abs(float(spec.overrides["optim.lr"]) - 0.003)
        for epoch in (1, 2):
            searcher.on_trial_result(f"t{n}", {"epoch": epoch, "val_r_mean": value + epoch})
        searcher.on_trial_complete(f"t{n}", {"epoch": 2, "planned_epochs": 2, "val_r_mean": value + 2,
                                             "best_val_r_mean": value + 2})
        if (n + 1) % window == 0:
            times.append((n + 1, (time.perf_counter() - start) / window))
            start = time.perf_counter()
    return times


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--driver":
        driver(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--searcher", type=int, default=0, help="instead: time the searcher alone over N trials")
    parser.add_argument("--journal", action="store_true", help="with --searcher: an Optuna journal file, not SQLite")
    args = parser.parse_args()
    if args.searcher:
        with tempfile.TemporaryDirectory(prefix="harma-scale-") as tmp:
            print("| trials told before | searcher seconds per trial (ask + 2 epochs + tell) |\n|---:|---:|")
            for n, seconds in searcher_seconds(Path(tmp), args.searcher, args.journal):
                print(f"| {n - 50}-{n} | {1000 * seconds:.0f} ms |", flush=True)
        return
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}\n")
    print("| trials | at once | driver wall | driver CPU | CPU / trial | driver peak RSS | trials files / bytes | "
          "epochs files / bytes | Ray's files / bytes | `harma study status` | `harma report` | statuses |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="harma-scale-") as tmp:
        for trials in args.trials:
            print(one(Path(tmp), trials, args.concurrent), flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
