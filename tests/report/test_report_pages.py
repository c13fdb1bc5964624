"""Pages built from Parquet written by ResultsStore: files and CSVs, determinism, plotly.js inlined once,
escaping of user text, the statistics shown, still-running and edge-case studies, the index and the CLI."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import plotly.offline
import pytest
from fake_studies import EVIL_ARM, EVIL_ERROR, write_ablation
from scipy import stats as sps

from harma.errors import ResultsError
from harma.report import add_report_commands, build_study_report
from harma.report.html import fmt_p
from harma.results.store import ResultsStore
from harma.results.schema import StudyColumns

FIGURE_IDS = {
    "abl": ["ablation-arms", "ablation-paired", "ablation-curves"],
    "srch": ["search-best-by-trial", "search-best-by-cost", "search-asha", "search-stops", "search-parallel",
             "search-slices", "search-importances", "search-pareto-cost", "search-pareto-params"],
    "rep": ["replicate-arms", "replicate-curves"],
}


def figure_ids(html: str) -> list[str]:
    return re.findall(r'<figure class="harma-figure" data-figure="([^"]+)"', html)


@pytest.mark.parametrize("name", ["abl", "srch", "rep"])
def test_page_has_every_figure_and_its_csv(built_pages, name):
    path = built_pages[name]
    html = path.read_text()
    assert figure_ids(html) == FIGURE_IDS[name]
    for fid in FIGURE_IDS[name]:
        assert f'id="{fid}"' in html
    for csv in re.findall(r'<a href="([^"]+\.csv)"', html):
        assert (path.parent / csv).is_file(), csv


@pytest.mark.parametrize("name", ["abl", "srch", "rep", "index"])
def test_element_ids_are_unique(built_pages, name):
    ids = re.findall(r' id="([^"]+)"', built_pages[name].read_text())
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("name", ["abl", "srch", "rep"])
def test_plotly_shared_from_assets_and_nothing_remote(built_pages, name):
    path = built_pages[name]
    html = path.read_text()
    bundle = plotly.offline.get_plotlyjs()
    assert bundle[:300] not in html and len(html.encode()) < 500_000
    srcs = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert srcs == [f"../assets/plotly-{plotly.offline.get_plotlyjs_version()}.min.js"]
    assert (path.parent / srcs[0]).read_text() == bundle
    assert "cdn.plot.ly" not in html and "http://" not in html and "https://" not in html


def test_self_contained_page_inlines_plotly_once(fake_root, tmp_path):
    store, _ = fake_root
    html = build_study_report(store, "rep", tmp_path / "rep", self_contained=True).read_text()
    bundle = plotly.offline.get_plotlyjs()
    assert html.count(bundle[:300]) == 1 and html.count(bundle) == 1
    rest = html.replace(bundle, "")
    assert not re.search(r"<script[^>]+src=", rest) and not (tmp_path / "assets").exists()
    assert "cdn.plot.ly" not in rest and "http://" not in rest and "https://" not in rest


def test_shared_asset_written_once_and_atomically(fake_root, tmp_path):
    store, _ = fake_root
    build_study_report(store, "rep", tmp_path / "a")
    asset = tmp_path / "assets" / f"plotly-{plotly.offline.get_plotlyjs_version()}.min.js"
    stamp = asset.stat().st_mtime_ns
    build_study_report(store, "abl", tmp_path / "b")
    assert asset.stat().st_mtime_ns == stamp  # identical: not rewritten
    asset.write_text("truncated")
    build_study_report(store, "abl", tmp_path / "b")
    assert asset.read_text() == plotly.offline.get_plotlyjs()
    assert [p.name for p in (tmp_path / "assets").iterdir()] == [asset.name]  # no temporary file left


def test_building_twice_gives_identical_files(fake_root, built_pages, tmp_path):
    store, storage = fake_root
    for name in ("abl", "srch", "rep"):
        again = build_study_report(store, name, tmp_path / name, min_importance_trials=5)
        first = built_pages[name].parent
        assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in again.parent.iterdir())
        for f in first.iterdir():
            assert f.read_bytes() == (again.parent / f.name).read_bytes(), f.name


def test_user_text_is_escaped(built_pages):
    html = built_pages["abl"].read_text()
    assert EVIL_ARM not in html and "<script>alert" not in html
    assert "&lt;b&gt;mm&amp;only&lt;/b&gt;" in html
    assert "CUDA OOM &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert EVIL_ERROR not in html
    assert "worker died: &lt;NCCL&gt; timeout" in built_pages["srch"].read_text()


def test_ablation_page_states_methods_and_p_values(fake_root, built_pages):
    store, _ = fake_root
    html = built_pages["abl"].read_text()
    for phrase in ("Student-t interval", "Wilcoxon signed-rank", "paired t-test", "Holm correction",
                   "11 trials: 9 COMPLETE used; excluded 0 PRUNED, 1 FAILED, 1 RUNNING", "Still running"):
        assert phrase in html, phrase
    trials = store.read_trials("abl")
    done = trials[trials["status"] == "COMPLETE"].set_index(["arm", "seed"])["test_r_mean"]
    p = sps.ttest_rel(done["no_bishare"].sort_index(), done["harma"].sort_index()).pvalue
    assert f"{fmt_p(p)} (paired t)" in html


def test_search_page_top_k_and_importances(built_pages):
    html = built_pages["srch"].read_text()
    assert "--set adapter.bottleneck=128 adapter.share=bishare data.dataset=rsitmd" in html
    assert "PedAnovaImportanceEvaluator" in html
    assert "Parameter importances from n = 6 COMPLETE trials" in html
    assert "Optuna parameter importances (n = 6 COMPLETE trials)" in html  # the figure's title


def test_importances_hidden_below_the_minimum_of_finished_trials(fake_root, tmp_path):
    store, storage = fake_root
    html = build_study_report(store, "srch", tmp_path / "s").read_text()
    assert "search-importances" not in figure_ids(html)
    assert "hidden, since only n = 6 trials are COMPLETE" in html and "fewer than 10 finished" in html
    assert "Epochs at which the scheduler pruned trials: 2, 4." in html


def test_search_page_without_importances_says_why(tmp_path):
    from fake_studies import write_search

    from harma.results.schema import Importances

    store = ResultsStore(tmp_path / "r")
    write_search(store)
    html = build_study_report(store, "srch", tmp_path / "s", min_importance_trials=1).read_text()
    assert "none were computed for &#x27;srch&#x27; yet" in html and "search-importances" not in figure_ids(html)
    store.write_importances(Importances("srch", {}, "PedAnovaImportanceEvaluator", 1,
                                        reason="needs at least 2 COMPLETE trials, has 1"))
    html = build_study_report(store, "srch", tmp_path / "t", min_importance_trials=1).read_text()
    assert "importances are unavailable: needs at least 2 COMPLETE trials, has 1" in html


def test_single_seed_ablation_says_no_test_possible(tmp_path):
    store = ResultsStore(tmp_path / "r")
    write_ablation(store, "one", seeds=(0,), extra_trials=False)
    html = build_study_report(store, "one", tmp_path / "one").read_text()
    assert "no test is possible" in html and "(paired t)" not in html and "(wilcoxon)" not in html
    assert "(n=1)" in html


def test_two_seed_ablation_shows_no_p_value_and_a_banner(tmp_path):
    store = ResultsStore(tmp_path / "r")
    write_ablation(store, "two", seeds=(0, 1), extra_trials=False)
    html = build_study_report(store, "two", tmp_path / "two").read_text()
    assert '<div class="banner" role="alert">Small samples: harma has 2 seeds' in html
    assert "2 seeds: no test (needs ≥ 3 paired seeds)" in html  # the table cells
    assert "2 seeds: no test" in re.search(r'id="ablation-paired".*?</script>', html, re.S).group(0)  # figure
    assert "(paired t)" not in html and "(wilcoxon)" not in html
    assert re.search(r"<td class=\"num\">-?\d+\.\d\d ± \d+\.\d\d</td>", html)  # Δ with its interval


def test_three_seeds_no_banner(built_pages):
    assert 'class="banner"' not in built_pages["abl"].read_text()


def test_missing_reference_arm_and_running_only_study(tmp_path):
    store = ResultsStore(tmp_path / "r")
    write_ablation(store, "noref", arms={"a": 0.0, "b": 1.0}, extra_trials=False)
    html = build_study_report(store, "noref", tmp_path / "noref").read_text()
    assert "The reference arm &#x27;harma&#x27; has no COMPLETE trials" in html
    html = build_study_report(store, "noref", tmp_path / "ref-a", reference="a").read_text()
    assert "paired differences to &#x27;a&#x27;" in html
    store.write_trial({"study": "live", "trial_id": "t0", "kind": "search", "status": "RUNNING",
                       "params": {"loss.gamma": 1.0}}, StudyColumns("live", {"loss.gamma": "float"}))
    store.write_epoch("live", "t0", 1, {"val": {"r_mean": 10.0}}, 5.0)
    html = build_study_report(store, "live", tmp_path / "live").read_text()
    assert "Still running" in html and "No COMPLETE trial yet." in html
    html = build_study_report(store, "ghost", tmp_path / "ghost").read_text()
    assert "No trials of study" in html


def test_mixed_kinds_get_their_own_sections(tmp_path):
    store = ResultsStore(tmp_path / "r")
    write_ablation(store, "mix", extra_trials=False)
    write_ablation(store, "mix", kind="replicate", arms={"harma": 0.0}, extra_trials=False)
    ids = figure_ids(build_study_report(store, "mix", tmp_path / "mix").read_text())
    assert ids[:3] == FIGURE_IDS["abl"] and ids[3:] == FIGURE_IDS["rep"] and len(set(ids)) == len(ids)


def test_index_lists_studies_with_counts_and_links(built_pages):
    html = built_pages["index"].read_text()
    for name in ("abl", "srch", "rep"):
        assert f'<a href="{name}/index.html">{name}</a>' in html
    assert "<script" not in html  # no figure, so no plotly.js on the index
    csv = (built_pages["index"].parent / "studies.csv").read_text().splitlines()
    assert csv[0].startswith("study,kinds,trials,COMPLETE,PRUNED,FAILED,RUNNING")
    assert csv[1].startswith("abl,ablation,11,9,0,1,1,")


def test_a_txt_r1_min_study_plots_and_indexes_its_objective(tmp_path):
    """The learning curves, their CSV, labels and the index follow the study's objective (val txt_r1, min), not
    val mR: the fake epochs hold txt_r1 = r_mean - 10 at every epoch."""
    import pandas as pd
    from fake_studies import write_search

    from harma.report import build_index
    from harma.report import search_figures as sf

    store = ResultsStore(tmp_path / "r")
    write_search(store, "txt", objective=("val_txt_r1", "min"))
    write_search(store)
    page = build_study_report(store, "txt", tmp_path / "out" / "txt")
    html = page.read_text()
    assert "Search: early stopping" in html and "ASHA" not in html
    assert "Learning curves: val txt_r1 (min) by epoch per trial" in html
    curves = pd.read_csv(page.parent / "search-asha-curves.csv")
    epochs = store.read_epochs("txt")
    val = epochs[epochs["split"] == "val"].set_index(["trial_id", "epoch", "metric"])["value"]
    assert set(curves["objective"]) == {"val_txt_r1"}
    assert len(curves) == (val.index.get_level_values("metric") == "txt_r1").sum()
    for row in curves.to_dict("records"):
        assert row["value"] == pytest.approx(val[(row["trial_id"], row["epoch"], "txt_r1")])
        assert row["value"] == pytest.approx(val[(row["trial_id"], row["epoch"], "r_mean")] - 10)
    fig = sf.curves_chart(curves, [2, 4], "val txt_r1 (min)")
    assert fig.layout.yaxis.title.text == "val txt_r1 (min)" and "val mR" not in fig.layout.title.text

    build_index(store, tmp_path / "out")
    index = pd.read_csv(tmp_path / "out" / "studies.csv").set_index("study")
    trials = {name: store.read_trials(name) for name in ("txt", "srch")}
    done = {name: t[t["status"] == "COMPLETE"] for name, t in trials.items()}
    best = done["txt"].sort_values("val_txt_r1").iloc[0]                  # min: the lowest val txt_r1
    assert best["trial_id"] != done["txt"].sort_values("val_txt_r1").iloc[-1]["trial_id"]
    assert index.loc["txt", "objective"] == "val txt_r1 (min)"
    assert index.loc["txt", "best_objective"] == pytest.approx(best["val_txt_r1"])
    assert index.loc["txt", "test_objective_of_best"] == pytest.approx(best["test_txt_r1"])
    assert index.loc["txt", "test_r_mean_of_best"] == pytest.approx(best["test_r_mean"])
    assert index.loc["srch", "objective"] == "val r_mean (max)"
    assert index.loc["srch", "best_objective"] == pytest.approx(done["srch"]["val_r_mean"].max())
    html = (tmp_path / "out" / "index.html").read_text()
    assert "val txt_r1 (min)" in html and "best val mR" not in html


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harma")
    add_report_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_report_and_index(fake_root, tmp_path, capsys):
    store, storage = fake_root
    root = store.root
    args = _parse(["report", "rep", "--results", root, "--out", str(tmp_path / "rep")])
    assert args.func(args) == 0 and (tmp_path / "rep" / "index.html").is_file()
    args = _parse(["report", "--index", "--results", root, "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert '<a href="rep/index.html">' in (tmp_path / "index.html").read_text()
    args = _parse(["report-index", "--results", root, "--out", str(tmp_path / "i2")])
    assert args.func(args) == 0 and (tmp_path / "i2" / "index.html").is_file()
    args = _parse(["report", "nosuch", "--results", root, "--out", str(tmp_path / "x")])
    with pytest.raises(ResultsError, match="no study 'nosuch'"):
        args.func(args)
    args = _parse(["report", "--results", root])
    with pytest.raises(ResultsError, match="give a study name or --index, not both"):
        args.func(args)
    assert not (tmp_path / "x").exists()


def test_long_errors_show_their_last_lines(tmp_path):
    store = ResultsStore(tmp_path / "r")
    trace = "Traceback (most recent call last):\n" + "  frame\n" * 400 + "RuntimeError: <boom> at the end"
    store.write_trial({"study": "f", "trial_id": "t0", "kind": "ablation", "arm": "harma", "seed": 0,
                       "status": "FAILED", "error": trace}, StudyColumns("f"))
    html = build_study_report(store, "f", tmp_path / "f").read_text()
    assert "RuntimeError: &lt;boom&gt; at the end" in html and "Traceback (most recent" not in html


def test_stale_csv_removed_on_rebuild(fake_root, tmp_path):
    store, _ = fake_root
    out = tmp_path / "p"
    out.mkdir()
    (out / "old-figure.csv").write_text("x\n")
    build_study_report(store, "rep", out)
    assert not (out / "old-figure.csv").exists() and Path(out / "replicate-summary.csv").exists()
