"""The study driver never imports torch, open_clip, harma's model or its trainer: neither the modules it imports
(the CLI, the study commands, the runner, callbacks, searcher, scheduler and trial modules) nor what it does
up to the point Tune starts trials (load the smoke study, plan its trials, build its scheduler, the Parquet
callback and a trial's resolved config), nor, in a real run, anything up to the end of the study (Tune's own
default loggers included: TensorBoard's would import torch)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harma_subprocess import REPO, harma_env, tiny_study

HEAVY = ("torch", "open_clip", "harma.model", "harma.train", "harma.train_epochs", "harma.evaluate")
REPORT = ("import json, sys\n"
          f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")

PLAN = """
import dataclasses, sys
import harma.cli, harma.study_cli, harma.tune.runner as runner, harma.tune.callbacks, harma.tune.searcher
import harma.tune.trial, harma.tune.scheduler
from harma.results.store import ResultsStore
from harma.study.parse import load_study
from harma.tune.callbacks import ParquetResults, resolved_config
from harma.tune.cluster import trial_env
from harma.tune.records import provenance

study = dataclasses.replace(load_study(sys.argv[1]), storage=sys.argv[2])
store = ResultsStore(study.storage_path())
columns = runner.columns_for(study, store)
plan = runner._plan(study, store, columns, False, set(), set(), [], print, concurrency=2)
config = plan.searcher.suggest("t0")
scheduler = runner._scheduler(study, store, False)
callback = ParquetResults(study, store, columns, provenance(), sys.argv[2] + "/runs", plan.total)
resolved_config(study, config["trial"], sys.argv[2] + "/runs")
trial_env(study)
assert plan.total == study.num_samples and scheduler.ordered is not None
"""


def run_python(code: str, *args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env={**harma_env(), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=600)


def test_planning_the_smoke_study_imports_no_torch(tmp_path):
    proc = run_python(PLAN + REPORT, str(REPO / "studies" / "smoke.yaml"), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_check_sees_torch_when_it_is_there(tmp_path):
    proc = run_python("import harma.tune.trial as t; from harma.train import train\n" + REPORT)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == sorted(
        ["torch", "open_clip", "harma.model", "harma.train", "harma.train_epochs", "harma.evaluate"])


RUN = """
import sys
from harma.cli import main
code = main(["study", "run", "light.yaml"])
assert code == 0, code
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_whole_study_run_keeps_the_driver_light(scratch):
    (scratch / "light.yaml").write_text(tiny_study("light", "ablation", 1, "seeds: [1]\narms: {a: {}}\n"))
    proc = run_python(RUN + REPORT, cwd=scratch)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
