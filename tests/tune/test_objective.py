"""A study whose objective is not the default (val txt_r1, minimised) ranks the same trial first everywhere:
in Parquet (`best_first`), in `harma study status`, and in the report's top-k and index tables."""
from __future__ import annotations

import pandas as pd
import yaml

from harma.cli import main
from harma.report.frames import prepare
from harma.report.pages import index_rows
from harma.report.search import top_k
from harma.results import ResultsStore
from harma.results.trials import best_first
from harma.tune.columns import study_columns
from harma.tune.study import load_study

# trial -> (val txt_r1, val r_mean, bottleneck): the lowest txt_r1 is trial-0002, the highest mR trial-0000
TRIALS = {"trial-0000": (9.0, 60.0, 8), "trial-0001": (4.0, 40.0, 16), "trial-0002": (1.5, 20.0, 32),
          "trial-0003": (0.5, 10.0, 8)}
STATUS = {"trial-0003": "PRUNED"}  # the very lowest, but stopped early: never the best


def write_study(tmp_path):
    raw = yaml.safe_load(open("studies/smoke.yaml"))
    raw.update(name="txtmin", storage=str(tmp_path / "results"), objective={"metric": "txt_r1", "mode": "min"})
    path = tmp_path / "txtmin.yaml"
    path.write_text(yaml.safe_dump(raw))
    study = load_study(path)
    columns = study_columns(study)
    store = ResultsStore(study.storage_path())
    for tid, (txt_r1, r_mean, bottleneck) in TRIALS.items():
        store.write_trial({"study": study.name, "trial_id": tid, "kind": "search",
                           "status": STATUS.get(tid, "COMPLETE"), "val_txt_r1": txt_r1, "val_r_mean": r_mean,
                           "test_r_mean": r_mean - 1, "gpu_seconds": 10.0, "trainable_params": 5,
                           "params": {**study.base_set, "adapter.bottleneck": bottleneck, "train.seed": 3407}},
                          columns)
    return path, store


def test_txt_r1_min_ranks_the_same_trial_first_everywhere(tmp_path, capsys):
    path, store = write_study(tmp_path)
    trials = store.read_trials("txtmin")
    assert set(trials["objective"]) == {"val_txt_r1"} and set(trials["objective_mode"]) == {"min"}
    assert best_first(trials)["trial_id"].tolist() == ["trial-0002", "trial-0001", "trial-0000"]
    assert main(["study", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "best so far by val txt_r1 (min): trial-0002 val_txt_r1 1.50" in out
    assert "adapter.bottleneck=32" in out and "train.epochs=4" in out
    top = top_k(prepare(trials), ["param.adapter.bottleneck"], k=3)
    assert top["trial_id"].tolist() == ["trial-0002", "trial-0001", "trial-0000"]
    assert top["objective"].tolist() == [1.5, 4.0, 9.0]
    index = index_rows(["txtmin"], {"txtmin": trials}).iloc[0]
    assert index["test_r_mean_of_best"] == TRIALS["trial-0002"][1] - 1
    frame = pd.read_parquet(tmp_path / "results" / "trials" / "study=txtmin")
    assert set(frame["objective"]) == {"val_txt_r1"}
