"""Sections of a study page for arm-based trials (kind `ablation` or `replicate`).

Arm definitions, summary tables (test and val retrieval, trainable parameters, cost in GPU-hours or CPU
core-hours, see harma.report.cost; mean ± 95% CI over seeds), the
chart of mR per arm, the published numbers against every seed when the study has a paper file
(harma.report.paper_page), paired differences to the reference arm with their tests and Holm-adjusted p-values,
and per-arm learning curves.  Only COMPLETE trials count; the sections say how many others were left out.
"""
from __future__ import annotations

import pandas as pd

from harma.report import arms
from harma.report.arm_defs import arm_definitions, arm_overrides
from harma.report.cost import CostBasis, add_cost, cost_basis
from harma.report.figures import arms_chart, curves_chart, paired_chart
from harma.report.frames import arm_order, complete_per_seed, exclusion_text
from harma.report.html import Page, fmt, fmt_ci, fmt_p
from harma.report.paper_page import NAMES, add_paper_section
from harma.report.spec import StudySpec, base_text, base_values
from harma.report.stats import CI_METHOD, MIN_TEST_PAIRS, WILCOXON_MIN_PAIRS

HEADERS = {**NAMES, "trainable_params": "trainable params"}


def _summary_view(summary: pd.DataFrame, arm_names: list[str], metrics: list[str], cost: str) -> pd.DataFrame:
    rows = []
    for arm in arm_names:
        sub = summary[summary["arm"] == arm].set_index("metric")
        row = {"arm": arm, "seeds": int(sub["n"].max()) if len(sub) else 0}
        for m in metrics:
            r = sub.loc[m]
            name = cost if m == "cost_hours" else HEADERS.get(m.split("_", 1)[1] if m.startswith(("val_", "test_"))
                                                              else m, m)
            row[name] = fmt_ci(r["mean"], r["ci_low"], r["ci_high"], int(r["n"]),
                               count=(m == "trainable_params"), digits=3 if m == "cost_hours" else 2,
                               clipped=bool(r["clipped"]))
        rows.append(row)
    return pd.DataFrame(rows)


def _seed_view(seeds: pd.DataFrame, cost: str) -> pd.DataFrame:
    view = pd.DataFrame({"arm": seeds["arm"], "seed": seeds["seed"].map(lambda v: "–" if pd.isna(v) else int(v)),
                         "trial": seeds["trial_id"]})
    for m in ("val_r_mean", "test_r_mean", "test_txt_r1", "test_img_r1"):
        view[m.replace("_r_mean", " mR").replace("_", " ")] = seeds[m].map(fmt)
    view[cost] = seeds["cost_hours"].map(lambda v: fmt(v, 3))
    return view


def _paired_view(diffs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    rows = []
    for arm, sub in diffs.groupby("arm", sort=False):
        sub = sub.set_index("metric")
        row = {"arm": arm, "pairs": int(sub["n_pairs"].max())}
        for m in metrics:
            r = sub.loc[m]
            short = ("test " if m.startswith("test_") else "val ") + HEADERS[m.split("_", 1)[1]]
            row[f"Δ {short}"] = fmt_ci(r["mean_diff"], r["ci_low"], r["ci_high"], int(r["n_pairs"]))
            if r["test"] == "none":
                row[f"p {short}"] = r["note"]
                row[f"Holm p {short}"] = "–"
            else:
                row[f"p {short}"] = f"{fmt_p(r['p_value'])} ({r['test']})"
                row[f"Holm p {short}"] = fmt_p(r["p_holm"])
        rows.append(row)
    return pd.DataFrame(rows)


def add_arms_sections(page: Page, kind: str, trials: pd.DataFrame, epochs: pd.DataFrame,
                      reference: str, spec: StudySpec | None = None, basis: CostBasis | None = None) -> None:
    """Append the arm definitions, summary, paired-difference and learning-curve sections for one kind of
    arm trials (the trials come from harma.report.frames.prepare; `cost_hours` is added if missing)."""
    if basis is None or "cost_hours" not in trials:
        basis = basis or cost_basis(trials, spec)
        trials = add_cost(trials, basis, spec)
    done = complete_per_seed(trials)
    names = arm_order(done["arm_label"], reference)
    title = "Ablation" if kind == "ablation" else "Replicate"
    _definitions_section(page, kind, title, trials, reference, spec)
    sec = page.section(f"{title}: arms × metrics")
    sec.text(exclusion_text(trials) + " Only COMPLETE trials enter these statistics; a seed run twice "
             "counts once (the last finished).", "note")
    if done.empty:
        sec.text("No COMPLETE trials yet: nothing to summarise.", "warn")
        return
    summary = arms.arm_summary(done, names)
    seeds = arms.per_seed(done)
    page.csv(f"{kind}-summary.csv", summary)
    page.csv(f"{kind}-per-seed.csv", seeds)
    few = {a: n for a, n in arms.seeds_per_arm(done, names).items() if n < MIN_TEST_PAIRS}
    if few:
        listed = ", ".join(f"{a} has {n} seed" + ("" if n == 1 else "s") for a, n in few.items())
        warning = (f"Small samples: {listed} (fewer than {MIN_TEST_PAIRS}). Intervals from so few seeds are "
                   f"wide and unstable, and no p-value is computed for a comparison with fewer than {MIN_TEST_PAIRS} paired seeds.")
        page.banner(warning)
        sec.text(warning, "warn")
    sec.text(f"Cells are mean ± half-width of the 95% confidence interval over seeds ({CI_METHOD}); "
             "'(n=1)' marks an arm with a single seed, where no interval exists. Recalls and mR are "
             "percentages, so their intervals are cut to [0, 100]: a cell whose interval reached past a bound "
             "shows the cut interval as [low, high] and says 'clipped' (the chart's bars are cut the same "
             "way). Test metrics are taken at the epoch with the best validation mR.", "note")
    test_cols = [f"test_{m}" for m in arms.RETRIEVAL] + list(arms.COST)
    sec.text("Test split (at best val epoch), with cost:")
    sec.table(_summary_view(summary, names, test_cols, basis.label), text_columns=("arm",))
    sec.text(basis.how, "note")
    sec.text("Validation split (best epoch):")
    sec.table(_summary_view(summary, names, [f"val_{m}" for m in arms.RETRIEVAL], basis.label),
              text_columns=("arm",))
    sec.table(_seed_view(seeds, basis.label), text_columns=("arm", "trial"),
              details="Every COMPLETE trial (per seed)")
    sec.link(f"{kind}-summary.csv", f"{kind}-summary.csv (all numbers), {kind}-per-seed.csv (every trial)")
    sec.figure(f"{kind}-arms", arms_chart(summary, seeds, names), "Dots: mean; bars: 95% t-interval, cut to "
               "[0, 100]; faint dots: individual seeds; the axis labels give each arm's number of seeds.",
               f"{kind}-summary.csv")
    add_paper_section(page, done, names, spec)
    _paired_section(page, kind, title, done, names, reference)
    _curves_section(page, kind, title, done, epochs, names)


def _definitions_section(page: Page, kind: str, title: str, trials: pd.DataFrame, reference: str,
                         spec: StudySpec | None) -> None:
    sec = page.section(f"{title}: arm definitions")
    sec.text(base_text(spec), "note" if spec is not None else "warn")
    names = arm_order(trials["arm_label"], reference)
    table = arm_definitions(arm_overrides(trials, names, spec), reference,
                            base_values(spec) if spec is not None else None)
    page.csv(f"{kind}-arm-definitions.csv", table)
    sec.table(table, text_columns=("arm",), code_columns=("overrides", "versus reference"))
    sec.text(f"Overrides: what the arm sets on top of the base config. Versus reference: each key whose value "
             f"differs from the reference arm '{reference}', as reference value → arm value ('(base)': the "
             "key keeps the base config's value).", "note")


def _paired_section(page: Page, kind: str, title: str, done: pd.DataFrame, names: list[str],
                    reference: str) -> None:
    if len(names) < 2 and kind == "replicate":
        return
    sec = page.section(f"{title}: paired differences to '{reference}'")
    if len(names) < 2:
        sec.text("Only one arm has COMPLETE trials: there is nothing to compare.", "note")
        return
    if reference not in names:
        sec.text(f"The reference arm '{reference}' has no COMPLETE trials (arms: {', '.join(names)}); "
                 "choose another with --reference.", "warn")
        return
    diffs = arms.paired_differences(done, names, reference)
    page.csv(f"{kind}-paired.csv", diffs)
    sec.text(f"For each arm, differences arm − {reference} are paired by the seed column (only seeds with a "
             f"COMPLETE trial in both arms). Interval: {CI_METHOD} of the differences. Test (two-sided): "
             f"Wilcoxon signed-rank (scipy.stats.wilcoxon) when there are at least {WILCOXON_MIN_PAIRS} pairs, "
             f"since below that it cannot reach p < 0.05; paired t-test (scipy.stats.ttest_rel) for "
             f"{MIN_TEST_PAIRS} to {WILCOXON_MIN_PAIRS - 1} pairs; no test, and no p-value, with fewer than "
             f"{MIN_TEST_PAIRS} pairs (a t-test on 2 pairs has one degree of freedom). The difference and its "
             f"interval are shown whatever the number of pairs: they are the effect size. Holm correction "
             f"across the arm(s) with a test compared with the reference, separately for each metric.", "note")
    if int(diffs["n_pairs"].max()) < MIN_TEST_PAIRS:
        sec.text(f"Fewer than {MIN_TEST_PAIRS} paired seeds for every arm: no test is possible, so no p-values "
                 "are shown; read the differences and their intervals.", "warn")
    headline = ["test_r_mean", "val_r_mean"]
    view = _paired_view(diffs, headline)
    sec.table(view, text_columns=("arm",), wrap_columns=tuple(c for c in view.columns if c.startswith("p ")))
    others = [m for m in arms.TESTED_METRICS if m not in headline]
    sec.table(_paired_view(diffs, others), text_columns=("arm",), details="All recalls (same tests, Holm per "
              "metric)")
    if diffs["n_pairs"].max() >= 1:
        sec.figure(f"{kind}-paired", paired_chart(diffs, names), "Diamonds: mean paired difference; bars: "
                   "95% t-interval over seeds; dashed line: no difference; beside each diamond its Holm p-value, "
                   f"or 'no test' when fewer than {MIN_TEST_PAIRS} seeds pair up.", f"{kind}-paired.csv")


def _curves_section(page: Page, kind: str, title: str, done: pd.DataFrame, epochs: pd.DataFrame,
                    names: list[str]) -> None:
    sec = page.section(f"{title}: learning curves")
    curves = arms.learning_curves(done, epochs, names)
    if curves.empty:
        sec.text("No validation mR per epoch was recorded for the COMPLETE trials.", "note")
        return
    page.csv(f"{kind}-curves.csv", curves)
    sec.figure(f"{kind}-curves", curves_chart(curves, names), "Line: mean val mR over the arm's seeds at each "
               "epoch; band: min to max over seeds.", f"{kind}-curves.csv")
