"""Usage and input errors answer at once: each error path runs `harma` in a subprocess that records, at exit,
which heavy modules it imported; none of torch, open_clip, Ray, Optuna, pyarrow, pandas or plotly may be among
them, the error is one line on stderr and the exit code is 2.  (How long each takes against `harma --version`
is measured by benchmarks/bench_error_paths.py and recorded in benchmarks/RESULTS.md, not asserted here.)"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harma.results.schema import StudyColumns
from harma.results.store import ResultsStore

HEAVY = ("torch", "open_clip", "ray", "optuna", "pyarrow", "pandas", "plotly", "scipy", "mlflow", "tensorboardX")
PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
heavy = {heavy!r}
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(m for m in heavy if m in sys.modules))))
sys.argv[0] = "harma"
from harma.cli import main
sys.exit(main())
""".format(heavy=HEAVY)
STUDY = """
name: tiny
kind: ablation
base: {config: synthetic-tiny, set: {train.epochs: 1, data.synthetic_images: 120}}
resources: {gpus_per_trial: 0, cpus_per_worker: 1}
storage: results
seeds: [1]
arms: {harma: {}}
"""


def probe(args: list[str], cwd: Path) -> tuple[int, str, list[str]]:
    """(exit code, stderr, heavy modules imported) of `harma ARGS` run in `cwd`."""
    out = cwd / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, done.stderr, json.loads(out.read_text())


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A working folder with studies/tiny.yaml whose study already has a trials row under ./results."""
    cwd = tmp_path_factory.mktemp("errors")
    (cwd / "studies").mkdir()
    (cwd / "studies" / "tiny.yaml").write_text(STUDY)
    columns = StudyColumns("tiny", {"train.seed": "int", "train.epochs": "int", "data.synthetic_images": "int"})
    ResultsStore(cwd / "results").write_trial(
        {"study": "tiny", "trial_id": "harma-s1", "kind": "ablation", "status": "COMPLETE", "seed": 1,
         "val_r_mean": 10.0, "started_at": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
         "params": {"train.seed": 1}}, columns)
    return cwd


ERRORS = {
    "results show": (["results", "show", "nosuch"], "harma: error: no study 'nosuch' under results (studies: tiny)"),
    "results export": (["results", "export", "nosuch"],
                       "harma: error: export: no study 'nosuch' under results (studies: tiny)"),
    "report": (["report", "nosuch"], "harma: error: report: no study 'nosuch' under results (studies: tiny)"),
    "study status": (["study", "status", "nosuch"], "harma: error: study file studies/nosuch.yaml: not found, and no "
                     "snapshot of study 'nosuch' under results root results ({cwd}/results/snapshots/nosuch/"
                     "study.yaml); give the study file, or --results ROOT where the study ran"),
    "study resume": (["study", "resume", "nosuch"], "harma: error: study file studies/nosuch.yaml: not found, and no "
                     "snapshot of study 'nosuch' under results root results ({cwd}/results/snapshots/nosuch/"
                     "study.yaml); give the study file, or --results ROOT where the study ran"),
    "study verify": (["study", "verify", "nosuch"], "harma: error: study file studies/nosuch.yaml: not found, and no "
                     "snapshot of study 'nosuch' under results root results ({cwd}/results/snapshots/nosuch/"
                     "study.yaml); give the study file, or --results ROOT where the study ran"),
    "study run missing": (["study", "run", "missing.yaml"], "harma: error: study file missing.yaml: not found"),
    "re-run refusal": (["study", "run", "studies/tiny.yaml"], "harma: error: studies/tiny.yaml: name: study 'tiny' "
                       "already has results under {cwd}/results; `harma study resume tiny` continues it, or give "
                       "the study a new name"),
    "table folder as root": (["results", "show", "tiny", "--results", "results/trials"], "harma: error: results "
                             "root results/trials: holds study= folders itself, so it is a table folder (trials or "
                             "epochs) of a results root; give the folder above it"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_an_error_path_imports_nothing_heavy_and_says_one_line(place, name):
    args, expected = ERRORS[name]
    code, err, heavy = probe(args, place)
    assert (code, err.strip()) == (2, expected.format(cwd=place.resolve()))
    assert heavy == [], f"{name} imported {heavy}"


def test_a_usage_error_is_argparse_usage_on_stderr_exit_2(place):
    code, err, heavy = probe(["study", "run"], place)
    assert code == 2 and err.splitlines()[0].startswith("usage: harma study run")
    assert err.strip().endswith("error: the following arguments are required: file") and heavy == []


def test_the_probe_sees_a_heavy_import(place):
    """The probe can fail: a command that reads Parquet does import pyarrow and pandas."""
    code, _, heavy = probe(["results", "show", "tiny"], place)
    assert code == 0 and {"pyarrow", "pandas"} <= set(heavy)
