"""Sections of a study page for search trials (Optuna sampler, ASHA scheduler).

Progress (best-so-far by trial and by GPU-hours), the ASHA view, the searched parameters (parallel
coordinates, Optuna importances, slice plots), cost against quality (Pareto fronts) and the top-k
configurations with the exact `--set` overrides that reproduce them.
"""
from __future__ import annotations

import pandas as pd

from harma.report import search
from harma.report import search_figures as sf
from harma.report.frames import exclusion_text, fixed_params, searched_params
from harma.report.html import Page, Section, fmt, fmt_count
from harma.report.importance import param_importances
from harma.report.overrides import format_value
from harma.results.trials import objective_label


def add_search_sections(page: Page, study: str, trials: pd.DataFrame, epochs: pd.DataFrame,
                        optuna_storage_url: str | None, top: int = 10) -> None:
    """Append every search section for the study's search trials."""
    obs = search.observed(trials)
    params = searched_params(obs)
    sec = page.section("Search: progress")
    sec.text(exclusion_text(trials) + " The objective is the best validation mR of a trial (maximised). "
             "PRUNED trials (stopped early by ASHA) appear as grey points; best-so-far curves, Pareto fronts "
             "and the top-k table use COMPLETE trials only. GPU-hours add up every finished trial, pruned and "
             "failed ones included.", "note")
    if trials.empty:
        return
    by_trial = search.best_so_far_by_trial(trials)
    page.csv("search-best-by-trial.csv", by_trial)
    sec.figure("search-best-by-trial", sf.best_by_trial_chart(by_trial), "Points: each trial's objective; "
               "line: best COMPLETE objective so far.", "search-best-by-trial.csv")
    by_gpu = search.best_so_far_by_gpu(trials)
    if by_gpu["best_so_far"].notna().any():
        page.csv("search-best-by-gpu.csv", by_gpu)
        sec.figure("search-best-by-gpu", sf.best_by_gpu_chart(by_gpu), "GPU-hours accumulate in the order "
                   "trials finished.", "search-best-by-gpu.csv")
    _asha_section(page, trials, epochs)
    _params_section(page, study, obs, params, trials, optuna_storage_url)
    _pareto_section(page, trials)
    _top_section(page, trials, params, top)


def _asha_section(page: Page, trials: pd.DataFrame, epochs: pd.DataFrame) -> None:
    sec = page.section("Search: ASHA view")
    rungs = search.rungs(trials)
    sec.text("Epochs at which ASHA pruned trials: " + (", ".join(map(str, rungs)) if rungs else "none yet")
             + ".", "note")
    page.csv("search-asha-trials.csv", search.asha_trials(trials))
    curves = search.trial_curves(trials, epochs)
    if not curves.empty:
        page.csv("search-asha-curves.csv", curves)
        sec.figure("search-asha", sf.asha_chart(curves, rungs), "One line per trial; colour: final status.",
                   "search-asha-curves.csv")
    counts = search.stop_counts(trials)
    if not counts.empty:
        page.csv("search-stops.csv", counts)
        sec.figure("search-stops", sf.stop_chart(counts), "How long each trial ran (stop_epoch).",
                   "search-stops.csv")
    sec.link("search-asha-trials.csv", "search-asha-trials.csv: epochs run, best epoch and objective per trial")


def _params_section(page: Page, study: str, obs: pd.DataFrame, params: list[str], trials: pd.DataFrame,
                    storage: str | None) -> None:
    sec = page.section("Search: parameters")
    fixed = fixed_params(obs if len(obs) else trials)
    if fixed:
        sec.text("Fixed in every observed trial: " + ", ".join(
            f"{k[len('param.'):]}={format_value(v)}" for k, v in sorted(fixed.items())), "note")
    if not params:
        sec.text("No parameter took two different values among the observed trials: nothing to plot.", "note")
    else:
        slices = search.slice_table(trials, params)
        page.csv("search-params.csv", slices)
        sec.figure("search-parcoords", sf.parcoords_chart(slices, params), "Each line is one observed trial "
                   "(COMPLETE or PRUNED); drag along an axis to filter. Categorical values are spread over "
                   "their axis; wide positive ranges are shown as log10.", "search-params.csv")
        sec.figure("search-slices", sf.slices_chart(slices, params), "Slice plots of the objective against "
                   "each parameter.", "search-params.csv")
    _importance(sec, page, study, storage)


def _importance(sec: Section, page: Page, study: str, storage: str | None) -> None:
    frame, description = param_importances(storage, study)
    if frame is None:
        sec.text(f"Parameter importances: {description}.", "warn")
        return
    page.csv("search-importances.csv", frame)
    sec.text(f"Parameter importances: {description}.", "note")
    sec.figure("search-importances", sf.importance_chart(frame), "Importance of each parameter for the "
               "objective, as computed by Optuna.", "search-importances.csv")


def _pareto_section(page: Page, trials: pd.DataFrame) -> None:
    sec = page.section("Search: cost against quality")
    sec.text("Pareto front: COMPLETE trials that no other COMPLETE trial beats on both higher val mR and "
             "lower cost.", "note")
    shown = False
    for cost, name, log_x in (("gpu_hours", "GPU-hours", False), ("trainable_params", "trainable parameters",
                                                                 True)):
        table = search.pareto_table(trials, cost)
        if table.empty:
            continue
        fid = "search-pareto-" + ("gpu" if cost == "gpu_hours" else "params")
        page.csv(f"{fid}.csv", table)
        log = log_x and table[cost].min() > 0 and table[cost].max() / table[cost].min() >= 100
        sec.figure(fid, sf.pareto_chart(table, cost, name, log), f"Red: the Pareto front ({name}).",
                   f"{fid}.csv")
        shown = True
    if not shown:
        sec.text("No COMPLETE trial with a recorded cost yet.", "note")


def _top_section(page: Page, trials: pd.DataFrame, params: list[str], k: int) -> None:
    sec = page.section(f"Search: top {k} configurations")
    top = search.top_k(trials, params, k)
    if top.empty:
        sec.text("No COMPLETE trial yet.", "note")
        return
    page.csv("search-top.csv", top)
    sec.text("Ranked by val mR; test mR is at the best val epoch. To reproduce a configuration, run the "
             "study's base config with its overrides, which list every searched or overridden key.", "note")
    view = pd.DataFrame({
        "rank": top["rank"], "trial": top["trial_id"], objective_label(trials): top["objective"].map(fmt),
        "test mR": top["test_r_mean"].map(fmt), "GPU-hours": top["gpu_hours"].map(lambda v: fmt(v, 3)),
        "trainable params": top["trainable_params"].map(fmt_count), "overrides": top["overrides"]})
    sec.table(view, text_columns=("trial",), code_columns=("overrides",))
