"""The "paper vs ours" section of an arm page: the published numbers of a study's paper file
(harma.study.paper, `studies/NAME.paper.yaml`) against each COMPLETE trial, seed by seed, and per arm the mean
over seeds with its 95% t-interval and the difference to the published value.

Data first: `paper_rows` (one row per arm, seed and metric) and `paper_summary` (one per arm and metric) are
plain frames, also written as `paper-vs-ours.csv`; the section formats them.
"""
from __future__ import annotations

import pandas as pd

from harma.errors import SpecError, StudyError
from harma.report.html import Page, fmt, fmt_ci
from harma.report.spec import StudySpec
from harma.report.stats import CI_METHOD, mean_ci
from harma.study.paper import PaperNumbers, find_paper

NAMES = {"r_mean": "mR", "txt_r1": "txt R@1", "txt_r5": "txt R@5", "txt_r10": "txt R@10", "img_r1": "img R@1",
         "img_r5": "img R@5", "img_r10": "img R@10"}          # the metrics' names on every report page


def paper_of(spec: StudySpec | None) -> PaperNumbers | None:
    """The paper numbers beside the study file of `spec` (or under studies/); SpecError naming a bad file."""
    if spec is None:
        return None
    try:
        return find_paper(spec.source, spec.name)
    except StudyError as exc:
        raise SpecError(str(exc)) from None


def paper_rows(done: pd.DataFrame, paper: PaperNumbers, arms: list[str]) -> pd.DataFrame:
    """arm, seed, trial_id, metric, paper, ours, difference (ours − paper), for every COMPLETE trial."""
    rows = []
    for arm in arms:
        for trial in done[done["arm_label"] == arm].itertuples(index=False):
            for metric, published in paper.metrics.items():
                ours = float(getattr(trial, f"{paper.split}_{metric}"))
                rows.append({"arm": arm, "seed": trial.seed, "trial_id": trial.trial_id, "metric": metric,
                             "paper": published, "ours": ours, "difference": ours - published})
    return pd.DataFrame(rows, columns=["arm", "seed", "trial_id", "metric", "paper", "ours", "difference"])


def paper_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per arm and metric: seeds, mean of ours with its t-interval, paper, mean difference."""
    out = []
    for (arm, metric), sub in rows.groupby(["arm", "metric"], sort=False):
        s = mean_ci(sub["ours"].tolist())
        out.append({"arm": arm, "metric": metric, "seeds": s.n, "ours_mean": s.mean, "ci_low": s.ci_low,
                    "ci_high": s.ci_high, "paper": float(sub["paper"].iloc[0]),
                    "difference": s.mean - float(sub["paper"].iloc[0])})
    return pd.DataFrame(out, columns=["arm", "metric", "seeds", "ours_mean", "ci_low", "ci_high", "paper",
                                      "difference"])


def _signed(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:+.2f}"


def _seed_view(rows: pd.DataFrame, split: str) -> pd.DataFrame:
    return pd.DataFrame({
        "arm": rows["arm"], "seed": rows["seed"].map(lambda v: "–" if pd.isna(v) else str(int(v))),
        "trial": rows["trial_id"], "metric": rows["metric"].map(lambda m: f"{split} {NAMES.get(m, m)}"),
        "paper": rows["paper"].map(fmt), "ours": rows["ours"].map(fmt),
        "ours − paper": rows["difference"].map(_signed)})


def _summary_view(summary: pd.DataFrame, split: str) -> pd.DataFrame:
    return pd.DataFrame({
        "arm": summary["arm"], "metric": summary["metric"].map(lambda m: f"{split} {NAMES.get(m, m)}"),
        "seeds": summary["seeds"].astype(str), "paper": summary["paper"].map(fmt),
        "ours (mean ± 95% CI)": [fmt_ci(r.ours_mean, r.ci_low, r.ci_high, int(r.seeds))
                                 for r in summary.itertuples(index=False)],
        "mean ours − paper": summary["difference"].map(_signed)})


def add_paper_section(page: Page, done: pd.DataFrame, arms: list[str], spec: StudySpec | None) -> None:
    """Append "Paper vs ours" when the study has a paper file; nothing otherwise."""
    paper = paper_of(spec)
    if paper is None or done.empty:
        return
    rows = paper_rows(done, paper, arms)
    summary = paper_summary(rows)
    page.csv("paper-vs-ours.csv", rows)
    sec = page.section("Paper vs ours")
    sec.text(f"Published ({paper.file}): {paper.source}. Ours: the {paper.split} metrics of each COMPLETE trial at "
             f"its epoch with the best validation objective. The HarMA authors chose their checkpoint on the test "
             f"split every epoch; harma selects on val and reports test, so a published test number is the more "
             f"optimistic of the two.", "note")
    sec.table(_summary_view(summary, paper.split), text_columns=("arm", "metric"))
    sec.text(f"Interval: {CI_METHOD} over the seeds of an arm; one seed has none.", "note")
    sec.table(_seed_view(rows, paper.split), text_columns=("arm", "trial", "metric"),
              details="Every seed against the paper")
    sec.link("paper-vs-ours.csv", "paper-vs-ours.csv (every seed and metric)")
