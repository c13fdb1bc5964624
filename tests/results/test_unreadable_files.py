"""An empty, truncated or foreign file among a study's Parquet results is one error naming the file (exit 2 on
the CLI), from `harma study status`, `harma report` and `harma results`, never a pyarrow traceback."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_readers import write_studies

from harma.cli import main
from harma.results.store import ResultsFileError, ResultsStore

STUDY = """
name: abl
kind: ablation
base: {{config: synthetic-tiny}}
seeds: [0]
storage: {root}
arms:
  harma: {{}}
"""


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not parquet at all\n"}[how])


@pytest.fixture()
def damaged(tmp_path, monkeypatch, request):
    root = tmp_path / "results"
    write_studies(root)
    victim = sorted((root / "trials" / "study=abl").glob("*.parquet"))[0]
    _damage(victim, request.param)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "abl.yaml").write_text(STUDY.format(root=root))
    return root, victim


def _one_error_line(capsys, victim: Path) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(victim) in lines[0] and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("damaged", ["empty", "truncated", "garbage"], indirect=True)
def test_store_read_names_the_file(damaged):
    root, victim = damaged
    with pytest.raises(ResultsFileError, match=str(victim)):
        ResultsStore(root).read_trials("abl")
    with pytest.raises(ResultsFileError, match=str(victim)):
        ResultsStore(root).param_kinds("abl")


@pytest.mark.parametrize("damaged", ["empty", "truncated"], indirect=True)
def test_study_status_is_one_line_exit_2(damaged, capsys):
    root, victim = damaged
    assert main(["study", "status", "abl", "--results", str(root)]) == 2
    assert _one_error_line(capsys, victim).startswith("harma: error: results file")


@pytest.mark.parametrize("damaged", ["empty", "truncated"], indirect=True)
def test_report_is_one_line_exit_2(damaged, capsys, tmp_path):
    root, victim = damaged
    assert main(["report", "abl", "--results", str(root), "--out", str(tmp_path / "page")]) == 2
    _one_error_line(capsys, victim)


@pytest.mark.parametrize("damaged", ["truncated"], indirect=True)
def test_results_show_is_one_line_exit_2(damaged, capsys):
    root, victim = damaged
    assert main(["results", "show", "abl", "--results", str(root)]) == 2
    _one_error_line(capsys, victim)
