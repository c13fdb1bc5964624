"""A study whose objective is not the default (val txt_r1, minimised) ranks the same trial first everywhere:
in Parquet (`best_first`), in Optuna, in `harma study status`, and in the report's top-k and index tables;
Optuna and Parquet hold the same value (the best epoch's) for every trial.  The trials run through the real
searcher and Parquet callback with fake epoch results, no Ray cluster."""
from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import yaml

pytest.importorskip("ray")

from harma.cli import main  # noqa: E402
from harma.metrics import REPORTED_KEYS  # noqa: E402
from harma.report.frames import prepare  # noqa: E402
from harma.report.pages import index_rows  # noqa: E402
from harma.report.search import top_k  # noqa: E402
from harma.results.store import ResultsStore  # noqa: E402
from harma.results.trials import best_first  # noqa: E402
from harma.tune.callbacks import ParquetResults  # noqa: E402
from harma.study.columns import study_columns  # noqa: E402
from harma.epoch_record import EpochRecord  # noqa: E402
from harma.tune.records import Provenance, epoch_result  # noqa: E402
from harma.tune.searcher import OptunaAskTellSearcher  # noqa: E402
from harma.study.parse import load_study  # noqa: E402

# val txt_r1 per epoch (4 planned); the best epoch is the lowest.  trial-0003 is the lowest of all but is
# stopped after 2 epochs (PRUNED), so the best COMPLETE trial is trial-0002 (1.5), while by its last epoch
# trial-0000 would score 11 rather than its best 9.
CURVES = {"trial-0000": [12.0, 9.0, 10.0, 11.0], "trial-0001": [6.0, 4.0, 5.0, 4.5],
          "trial-0002": [3.0, 2.0, 1.5, 1.8], "trial-0003": [1.0, 0.5]}
BEST = {"trial-0000": 9.0, "trial-0001": 4.0, "trial-0002": 1.5}


def epoch_record(curve: list[float], epoch: int) -> EpochRecord:
    best_epoch = min(range(1, epoch + 1), key=lambda e: curve[e - 1])
    def val(e: int) -> dict:
        return {**{k: 50.0 + e for k in REPORTED_KEYS}, "txt_r1": curve[e - 1]}
    return EpochRecord(epoch=epoch, val=val(epoch), test=val(epoch), train={"loss": 1.0}, lr=1e-3,
                       epoch_seconds=1.0, train_seconds=1.0, images_per_s=1.0, best_epoch=best_epoch,
                       best_val=val(best_epoch), best_test=val(best_epoch), trainable_params=5, total_params=9,
                       peak_rss_bytes=1)


def run_fake_search(tmp_path):
    raw = yaml.safe_load(open("studies/smoke.yaml"))
    raw.update(name="txtmin", storage=str(tmp_path / "results"), num_samples=len(CURVES),
               objective={"metric": "txt_r1", "mode": "min"})
    path = tmp_path / "txtmin.yaml"
    path.write_text(yaml.safe_dump(raw))
    study = load_study(path)
    store = ResultsStore(study.storage_path())
    searcher = OptunaAskTellSearcher(study, "val_txt_r1")
    callback = ParquetResults(study, store, study_columns(study), Provenance("abc", False, "{}"),
                              str(tmp_path / "runs"), total=len(CURVES), echo=lambda *a, **k: None)
    for n, curve in enumerate(CURVES.values()):
        config = searcher.suggest(f"ray-{n}")
        trial = SimpleNamespace(config=config)
        callback.on_trial_start(0, [], trial)
        for epoch in range(1, len(curve) + 1):
            flat = epoch_result(epoch_record(curve, epoch), 4, {"host": "h", "node_id": "n"})
            callback.on_trial_result(0, [], trial, flat)
            searcher.on_trial_result(f"ray-{n}", flat)
        callback.on_trial_complete(0, [], trial)
        searcher.on_trial_complete(f"ray-{n}", flat)
    return path, study, store


def test_txt_r1_min_ranks_the_same_trial_first_everywhere(tmp_path, capsys):
    path, study, store = run_fake_search(tmp_path)
    trials = store.read_trials("txtmin")
    assert set(trials["objective"]) == {"val_txt_r1"} and set(trials["objective_mode"]) == {"min"}
    assert dict(zip(trials["trial_id"], trials["status"]))["trial-0003"] == "PRUNED"
    assert best_first(trials)["trial_id"].tolist() == ["trial-0002", "trial-0001", "trial-0000"]

    optuna_study = optuna.load_study(study_name="txtmin", storage=study.optuna_storage_url())
    assert optuna_study.metric_names == ["val_txt_r1"] and optuna_study.direction.name == "MINIMIZE"
    assert optuna_study.best_trial.user_attrs["harma_trial_id"] == "trial-0002"
    parquet = dict(zip(trials["trial_id"], trials["val_txt_r1"]))
    told = {t.user_attrs["harma_trial_id"]: t.value for t in optuna_study.get_trials()
            if t.state == optuna.trial.TrialState.COMPLETE}
    assert told == BEST == {k: parquet[k] for k in BEST}
    steps = {t.user_attrs["harma_trial_id"]: t.intermediate_values for t in optuna_study.get_trials()}
    assert steps == {tid: dict(enumerate(curve, 1)) for tid, curve in CURVES.items()}   # each epoch's own value

    assert main(["study", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "best so far by val txt_r1 (min): trial-0002 val_txt_r1 1.50" in out
    row = trials.set_index("trial_id").loc["trial-0002"]
    assert f"adapter.bottleneck={row['param.adapter.bottleneck']}" in out and "train.epochs=4" in out

    top = top_k(prepare(trials), ["param.adapter.bottleneck"], k=3)
    assert top["trial_id"].tolist() == ["trial-0002", "trial-0001", "trial-0000"]
    assert top["objective"].tolist() == [1.5, 4.0, 9.0]
    index = index_rows(["txtmin"], {"txtmin": trials}).iloc[0]
    assert index["test_r_mean_of_best"] == row["test_r_mean"]
    assert (index["objective"], index["best_objective"]) == ("val txt_r1 (min)", 1.5)
    assert index["test_objective_of_best"] == row["test_txt_r1"]


def test_the_objective_goes_by_one_name_per_concept(tmp_path):
    """The trials column holds the best epoch's value, a reported result holds this epoch's and the best epoch's
    under two names, and ASHA and the searcher are handed this epoch's."""
    from harma.study.columns import best_objective, epoch_objective, objective_column
    from harma.tune.runner import _scheduler

    _, study, store = run_fake_search(tmp_path)
    assert (objective_column(study), epoch_objective(study), best_objective(study)) == (
        "val_txt_r1", "val_txt_r1", "best_val_txt_r1")
    flat = epoch_result(epoch_record(CURVES["trial-0000"], 3), 4, {})
    assert flat[epoch_objective(study)] == 10.0 and flat[best_objective(study)] == 9.0
    raw = yaml.safe_load(open("studies/smoke.yaml"))
    assert raw["scheduler"]["type"] == "asha"
    assert _scheduler(study, store, resume=False)._metric_name == epoch_objective(study)

