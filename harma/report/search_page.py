"""Sections of a study page for search trials (Optuna sampler, early-stopping scheduler).

Progress (best-so-far by trial number and by cost: GPU-hours, or CPU core-hours without GPUs), early stopping
(learning curves of the study's objective and where trials stopped), the searched parameters (parallel
coordinates, Optuna importances from enough COMPLETE trials, slice plots), cost against quality (Pareto fronts)
and the top-k configurations with the `harma train` line that reproduces each (with the study file) or their
own overrides (without it).
"""
from __future__ import annotations

import pandas as pd

from harma.report import search
from harma.report import search_figures as sf
from harma.report.cost import COST, CostBasis, add_cost, best_so_far_by_cost, cost_basis
from harma.report.frames import exclusion_text, fixed_params, searched_params, trial_numbers
from harma.report.html import Page, Section, fmt, fmt_count
from harma.report.importance import param_importances
from harma.results.overrides import format_value
from harma.report.spec import StudySpec, base_text, train_command
from harma.results.trials import (MIN_IMPORTANCE_TRIALS, complete_count, objective_label, param_key,
                                  row_overrides)


def add_search_sections(page: Page, study: str, trials: pd.DataFrame, epochs: pd.DataFrame,
                        results_root: str | None, top: int = 10,
                        min_importance_trials: int = MIN_IMPORTANCE_TRIALS, spec: StudySpec | None = None,
                        basis: CostBasis | None = None) -> None:
    """Append every search section for the study's search trials (from harma.report.frames.prepare;
    `cost_hours` is added if missing)."""
    if basis is None or COST not in trials:
        basis = basis or cost_basis(trials, spec)
        trials = add_cost(trials, basis, spec)
    obs = search.observed(trials)
    params = searched_params(obs)
    sec = page.section("Search: progress")
    sec.text(exclusion_text(trials) + f" The objective is each trial's best {_objective_text(trials)}. "
             "PRUNED trials (stopped early by the study's scheduler) appear as grey points; best-so-far curves, "
             f"Pareto fronts and the top-k table use COMPLETE trials only. {basis.label} add up every finished "
             "trial, pruned and failed ones included. " + basis.how, "note")
    if trials.empty:
        return
    by_trial = search.best_so_far_by_trial(trials)
    by_trial["trial_number"] = trial_numbers(by_trial["trial_id"])
    page.csv("search-best-by-trial.csv", by_trial)
    sec.figure("search-best-by-trial", sf.best_by_trial_chart(by_trial, _objective_text(trials)), "Points: each trial's objective; "
               "line: best COMPLETE objective so far, in start order; x: the trial number in the trial id "
               "(trial-0007 is 7, Optuna's numbering).", "search-best-by-trial.csv")
    by_cost = best_so_far_by_cost(trials)
    if by_cost["best_so_far"].notna().any():
        page.csv("search-best-by-cost.csv", by_cost)
        sec.figure("search-best-by-cost", sf.best_by_cost_chart(by_cost, basis, _objective_text(trials)), f"{basis.label} accumulate "
                   "in the order trials finished.", "search-best-by-cost.csv")
    _stopping_section(page, trials, epochs)
    _params_section(page, study, obs, params, trials, results_root, min_importance_trials)
    _pareto_section(page, trials, basis)
    _top_section(page, trials, params, top, spec, basis)


def _objective_text(trials: pd.DataFrame) -> str:
    """`val r_mean (max)`: the study's objective as every row records it."""
    return objective_label(trials) if len(trials) else "objective"


def _stopping_section(page: Page, trials: pd.DataFrame, epochs: pd.DataFrame) -> None:
    """Learning curves of the study's objective and where trials stopped, whatever scheduler stopped them (the
    figure and CSV ids keep their first names, `search-asha*`, so links to them stay valid)."""
    sec = page.section("Search: early stopping")
    rungs = search.rungs(trials)
    sec.text("Epochs at which the scheduler pruned trials: " + (", ".join(map(str, rungs)) if rungs else "none yet")
             + ".", "note")
    page.csv("search-asha-trials.csv", search.stopping_trials(trials))
    curves = search.trial_curves(trials, epochs)
    if not curves.empty:
        page.csv("search-asha-curves.csv", curves)
        sec.figure("search-asha", sf.curves_chart(curves, rungs, _objective_text(trials)),
                   f"One line per trial: its {_objective_text(trials)} at each epoch; colour: final status.",
                   "search-asha-curves.csv")
    counts = search.stop_counts(trials)
    if not counts.empty:
        page.csv("search-stops.csv", counts)
        sec.figure("search-stops", sf.stop_chart(counts), "How long each trial ran (stop_epoch).",
                   "search-stops.csv")
    sec.link("search-asha-trials.csv", "search-asha-trials.csv: epochs run, best epoch and objective per trial")


def _params_section(page: Page, study: str, obs: pd.DataFrame, params: list[str], trials: pd.DataFrame,
                    storage: str | None, min_trials: int) -> None:
    sec = page.section("Search: parameters")
    fixed = fixed_params(obs if len(obs) else trials)
    if fixed:
        sec.text("Fixed in every observed trial: " + ", ".join(
            f"{param_key(k)}={format_value(v)}" for k, v in sorted(fixed.items())), "note")
    if not params:
        sec.text("No parameter took two different values among the observed trials: nothing to plot.", "note")
    else:
        slices = search.slice_table(trials, params)
        page.csv("search-params.csv", slices)
        sec.figure("search-parallel", sf.parallel_chart(slices, params, _objective_text(trials)), "Each line is one observed trial "
                   "(COMPLETE solid, PRUNED faint); every axis runs from its lowest value (bottom) to its "
                   "highest (top), written beside it; categorical values are spread over their axis in sorted "
                   "order; wide positive ranges are on a log scale.", "search-params.csv")
        sec.figure("search-slices", sf.slices_chart(slices, params, _objective_text(trials)), "Slice plots of the objective against "
                   "each parameter.", "search-params.csv")
    _importance(sec, page, study, storage, complete_count(trials), min_trials)


def _importance(sec: Section, page: Page, study: str, storage: str | None, n: int, min_trials: int) -> None:
    if n < min_trials:
        sec.text(f"Parameter importances: hidden, since only n = {n} trials are COMPLETE and a ranking of "
                 f"parameters from fewer than {min_trials} finished trials mostly reflects noise.", "warn")
        return
    frame, description = param_importances(storage, study)
    if frame is None:
        sec.text(f"Parameter importances (n = {n} COMPLETE trials): {description}.", "warn")
        return
    page.csv("search-importances.csv", frame)
    sec.text(f"Parameter importances from n = {n} COMPLETE trials: {description}.", "note")
    sec.figure("search-importances", sf.importance_chart(frame, n), f"Importance of each parameter for the "
               f"objective, as computed by Optuna from n = {n} COMPLETE trials (shown from "
               f"{min_trials} on).", "search-importances.csv")


def _pareto_section(page: Page, trials: pd.DataFrame, basis: CostBasis) -> None:
    sec = page.section("Search: cost against quality")
    sec.text(f"Pareto front: COMPLETE trials that no other COMPLETE trial beats on both a better "
             f"{_objective_text(trials)} and a lower cost.", "note")
    shown = False
    for cost, name, log_x in ((COST, basis.label, False), ("trainable_params", "trainable parameters", True)):
        table = search.pareto_table(trials, cost)
        if table.empty:
            continue
        fid = "search-pareto-" + ("cost" if cost == COST else "params")
        page.csv(f"{fid}.csv", table)
        log = log_x and table[cost].min() > 0 and table[cost].max() / table[cost].min() >= 100
        sec.figure(fid, sf.pareto_chart(table, cost, name, log, _objective_text(trials)), f"Red: the Pareto front ({name}).",
                   f"{fid}.csv")
        shown = True
    if not shown:
        sec.text("No COMPLETE trial with a recorded cost yet.", "note")


def _top_section(page: Page, trials: pd.DataFrame, params: list[str], k: int, spec: StudySpec | None,
                 basis: CostBasis) -> None:
    sec = page.section(f"Search: top {k} configurations")
    top = search.top_k(trials, params, k)
    if top.empty:
        sec.text("No COMPLETE trial yet.", "note")
        return
    rows = trials.set_index("trial_id")
    if spec is not None:
        top["reproduce"] = [train_command(spec, row_overrides(rows.loc[t].to_dict())) for t in top["trial_id"]]
    page.csv("search-top.csv", top)
    sec.text(base_text(spec, "trial"), "note" if spec is not None else "warn")
    if spec is not None:
        sec.text(f"Ranked by {_objective_text(trials)}; test mR is at the best val epoch. Each reproduce line "
                 "rebuilds the trial's "
                 "exact run config: the base config, the study's base overrides, then the trial's own "
                 "parameters (its seed included).", "note")
    else:
        sec.text(f"Ranked by {_objective_text(trials)}; test mR is at the best val epoch. Without the study "
                 "file only the trial's "
                 "own parameters are known: add them to the study's base config and base overrides to "
                 "reproduce a trial.", "note")
    view = pd.DataFrame({
        "rank": top["rank"], "trial": top["trial_id"], objective_label(trials): top["objective"].map(fmt),
        "test mR": top["test_r_mean"].map(fmt),
        basis.label: trials.set_index("trial_id").loc[top["trial_id"], COST].map(lambda v: fmt(v, 3)).tolist(),
        "trainable params": top["trainable_params"].map(fmt_count)})
    view["reproduce" if spec is not None else "overrides"] = top["reproduce" if spec is not None else "overrides"]
    sec.table(view, text_columns=("trial",), code_columns=("reproduce", "overrides"))
