"""Warm start from another study: its best COMPLETE trials (by its own objective) are enqueued into the new
Optuna study and handed out first, marked `warm_start_from` in Optuna and in Parquet; a parameter the new space
lacks (unless equal to the new base value) or a value outside its range is one StudyError naming both."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

pytest.importorskip("ray")

from harma.results.store import ResultsStore  # noqa: E402

from harma.results.schema import StudyColumns  # noqa: E402
from harma.tune.callbacks import ParquetResults  # noqa: E402
from harma.study.columns import study_columns  # noqa: E402
from harma.tune.records import TRIAL_KEY, Provenance  # noqa: E402
from harma.tune.searcher import OptunaAskTellSearcher  # noqa: E402
from harma.study.parse import load_study  # noqa: E402
from harma.errors import StudyError
from harma.study.warm_start import plan_warm_start  # noqa: E402
from harma.tune.searcher import enqueue_warm  # noqa: E402

SOURCE = StudyColumns("rsitmd", {"adapter.bottleneck": "int", "optim.lr": "float", "train.epochs": "int",
                                 "train.seed": "int", "adapter.share": "string"})
# trial -> (val r_mean, params); best first by val r_mean (max): t2, t0, t1
ROWS = {"trial-0000": (30.0, {"adapter.bottleneck": 16, "optim.lr": 1e-3}),
        "trial-0001": (20.0, {"adapter.bottleneck": 8, "optim.lr": 1e-4}),
        "trial-0002": (40.0, {"adapter.bottleneck": 32, "optim.lr": 3e-3})}


def setup(tmp_path, rows=ROWS, top_k=2):
    store = ResultsStore(tmp_path / "results")
    for tid, (value, params) in rows.items():
        store.write_trial({"study": "rsitmd", "trial_id": tid, "kind": "search", "status": "COMPLETE",
                           "val_r_mean": value, "params": {**params, "train.epochs": 4, "train.seed": 1}}, SOURCE)
    raw = yaml.safe_load(open("studies/smoke.yaml"))
    raw.update(name="rsicd", storage=str(tmp_path / "results"), num_samples=4)
    raw["search"]["warm_start"] = {"study": "rsitmd", "top_k": top_k}
    raw["scheduler"]["deterministic"] = False    # asks 3 trials before telling any (as 3 slots would)
    (tmp_path / "rsicd.yaml").write_text(yaml.safe_dump(raw))
    return load_study(tmp_path / "rsicd.yaml"), store


def test_best_source_trials_are_handed_out_first_and_marked(tmp_path):
    study, store = setup(tmp_path)
    warm = plan_warm_start(study, store)
    assert [(t.source, t.params) for t in warm] == [("rsitmd/trial-0002", ROWS["trial-0002"][1]),
                                                    ("rsitmd/trial-0000", ROWS["trial-0000"][1])]
    searcher = OptunaAskTellSearcher(study, "val_r_mean")
    enqueue_warm(searcher.optuna_study, warm)
    callback = ParquetResults(study, store, study_columns(study), Provenance(None, None, "{}"),
                              str(tmp_path / "runs"), total=4, echo=lambda *a, **k: None)
    configs = [searcher.suggest(f"r{i}")[TRIAL_KEY] for i in range(3)]
    for i, source in enumerate(["rsitmd/trial-0002", "rsitmd/trial-0000"]):
        assert configs[i].warm_start_from == source
        wanted = ROWS[source.split("/")[1]][1]
        assert {k: configs[i].overrides[k] for k in wanted} == wanted
    assert configs[2].warm_start_from is None
    for cfg in configs:
        callback.on_trial_start(0, [], SimpleNamespace(config={TRIAL_KEY: cfg}))
    rows = store.read_trials("rsicd").set_index("trial_id")["warm_start_from"]
    assert rows[["trial-0000", "trial-0001"]].tolist() == ["rsitmd/trial-0002", "rsitmd/trial-0000"]
    assert rows.isna().tolist() == [False, False, True]


def test_a_parameter_the_new_space_lacks_or_a_value_out_of_range_is_refused(tmp_path):
    study, store = setup(tmp_path, {"trial-0000": (30.0, {"adapter.bottleneck": 16, "adapter.share": "both"})})
    with pytest.raises(StudyError, match=r"rsitmd/trial-0000 sets adapter.share='both'.*add adapter.share"):
        plan_warm_start(study, store)
    base = study.base_values()["adapter.share"]  # the new study's own base value is no conflict
    study, store = setup(tmp_path / "a", {"trial-0000": (30.0, {"adapter.bottleneck": 16, "adapter.share": base})})
    assert plan_warm_start(study, store)[0].params == {"adapter.bottleneck": 16}
    study, store = setup(tmp_path / "b", {"trial-0000": (30.0, {"adapter.bottleneck": 64})})
    with pytest.raises(StudyError, match=r"adapter.bottleneck=64, outside .*search.space.adapter.bottleneck"):
        plan_warm_start(study, store)
    study, store = setup(tmp_path / "c", {"trial-0000": (30.0, {"optim.lr": 0.5})})
    with pytest.raises(StudyError, match=r"optim.lr=0.5, outside"):
        plan_warm_start(study, store)


def test_warm_start_is_checked_when_the_study_loads(tmp_path):
    with pytest.raises(StudyError, match="top_k <= num_samples"):
        setup(tmp_path, top_k=9)
    study, store = setup(tmp_path / "d")
    empty = ResultsStore(tmp_path / "elsewhere")
    with pytest.raises(StudyError, match="'rsitmd' has no COMPLETE trials"):
        plan_warm_start(study, empty)
