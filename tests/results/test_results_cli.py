"""`harma results` through the real `harma` CLI: listing studies with status counts, one study's trials, and
`export` of one study or of every study (the union of their columns) to one CSV or Parquet file, written only
where asked or under the results root; bad input is one line on stderr and exit status 2."""
from __future__ import annotations

import os

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_readers import ABLATION, SEARCH, SEARCH_TRIALS, write_studies

from harma.cli import main


@pytest.fixture()
def root(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    write_studies(tmp_path / "r")
    return str(tmp_path / "r")


def test_list_and_show(root, capsys):
    assert main(["results", "--results", root]) == 0
    assert capsys.readouterr().out.splitlines() == ["abl: COMPLETE 5", "srch: COMPLETE 3"]
    assert main(["results", "show", "srch", "--results", root]) == 0
    out = capsys.readouterr().out
    assert "trial-0002" in out and "val_txt_r1 12.00" in out
    assert main(["results", "list", "--results", root + "-empty"]) == 0
    assert "no studies" in capsys.readouterr().out


def test_export_one_study_to_csv(root, tmp_path, capsys):
    out = tmp_path / "srch.csv"
    assert main(["results", "export", "srch", "--results", root, "--out", str(out)]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    frame = pd.read_csv(out)
    expected = [f.name for f in pq.read_schema(f"{root}/trials/study=srch/trial-0000.parquet")]
    assert list(frame.columns) == expected
    assert frame["param.adapter.bottleneck"].tolist() == [v["adapter.bottleneck"] for v in SEARCH_TRIALS.values()]


def test_export_all_studies_to_parquet_holds_every_column(root, capsys):
    assert main(["results", "export", "--all", "--format", "parquet", "--results", root]) == 0
    path = os.path.join(root, "exports", "all-studies-trials.parquet")
    assert capsys.readouterr().out.strip().endswith(path)
    table = pq.read_table(path)
    assert table.num_rows == 8 and sorted(set(table["study"].to_pylist())) == ["abl", "srch"]
    params = {f"param.{k}" for k in {**SEARCH.params, **ABLATION.params}}
    assert params <= set(table.column_names)
    assert str(table.schema.field("param.loss.w_triplet").type) == "double"
    assert main(["results", "export", "--all", "--table", "epochs", "--results", root]) == 0
    assert len(pd.read_csv(os.path.join(root, "exports", "all-studies-epochs.csv"))) == 16
    assert os.listdir(".") == []  # nothing in the working directory


@pytest.mark.parametrize("argv, message", [
    (["export", "nosuch"], "no study 'nosuch'"), (["export"], "a study name or --all"),
    (["export", "abl", "--all"], "a study name or --all"), (["show", "nosuch"], "no study 'nosuch'"),
])
def test_bad_input_is_one_error_and_exit_2(root, capsys, argv, message):
    assert main(["results", *argv, "--results", root]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harma: error:") and message in err and len(err.splitlines()) == 1


def test_export_to_a_folder_is_refused(root, tmp_path, capsys):
    assert main(["results", "export", "abl", "--results", root, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
