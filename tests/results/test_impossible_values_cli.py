"""A search study's trials file with the right schema but an impossible objective (val_r_mean inf, its test
metrics -5, its wall time -100 s), written with pyarrow behind harma's back, is one line naming the file, the
column and the value, exit 2, from `harma study status` (which named the inf trial best), `harma report`
(which crashed in plotly drawing the parallel chart), `harma results show` and `harma results export`; a stray
copy of a trials file is one line naming both files, where status counted the trial twice."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harma.cli import main
from harma.metrics import METRIC_KEYS

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from fake_studies import write_search  # noqa: E402

from harma.results.store import ResultsStore  # noqa: E402

STUDY = """
name: srch
kind: search
base: {{config: synthetic-tiny}}
storage: {root}
num_samples: 10
search:
  space:
    adapter.bottleneck: {{type: categorical, choices: [16, 32, 64, 128]}}
"""
VICTIM = "srch_00002"      # a COMPLETE trial of the fake search


def poisoned(table: pa.Table) -> pa.Table:
    """The row with val_r_mean inf, every test metric -5 and wall_seconds -100."""
    values = {"val_r_mean": float("inf"), "wall_seconds": -100.0, **{f"test_{m}": -5.0 for m in METRIC_KEYS}}
    for column, value in values.items():
        table = table.set_column(table.schema.get_field_index(column), table.schema.field(column),
                                 pa.array([value], pa.float64()))
    return table


@pytest.fixture()
def study_root(tmp_path, monkeypatch):
    root = tmp_path / "results"
    write_search(ResultsStore(root))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "srch.yaml").write_text(STUDY.format(root=root))
    return root


@pytest.fixture()
def inf_file(study_root):
    path = study_root / "trials" / "study=srch" / f"{VICTIM}.parquet"
    pq.write_table(poisoned(pq.read_table(path)), path)
    return study_root, path


COMMANDS = {
    "status": ["study", "status", "srch"],
    "report": ["report", "srch", "--out", "page"],
    "show": ["results", "show", "srch"],
    "export": ["results", "export", "srch", "--out", "srch.csv"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_inf_objective_is_one_line_exit_2(inf_file, command, one_line, tmp_path):
    root, path = inf_file
    assert main(COMMANDS[command] + ["--results", str(root)]) == 2
    assert one_line() == (f"harma: error: results file {path}: column val_r_mean holds inf; expected a recall in "
                          "[0, 100] or null")
    assert not (tmp_path / "page").exists() and not (tmp_path / "srch.csv").exists()


def test_status_reads_the_same_study_once_the_file_is_mended(inf_file, capsys):
    root, path = inf_file
    path.unlink()
    assert main(["study", "status", "srch", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "srch (search): COMPLETE 5, FAILED 1, PRUNED 3, 9 in all"


def test_a_stray_copy_of_a_trials_file_is_one_line_naming_both(study_root, one_line):
    folder = study_root / "trials" / "study=srch"
    stray = folder / f"{VICTIM}-copy.parquet"
    shutil.copy(folder / f"{VICTIM}.parquet", stray)
    assert main(["study", "status", "srch", "--results", str(study_root)]) == 2
    line = one_line()
    assert line.startswith(f"harma: error: results files {stray} and {folder / VICTIM}.parquet both hold trial "
                           f"{VICTIM} of study srch")
    assert f"move the stray file ({stray}, whose name is not {VICTIM}.parquet)" in line
