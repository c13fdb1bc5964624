"""Tidy tables of arm-based studies (ablations and replicates), computed from COMPLETE trials only.

`arm_summary` gives per arm and metric the seed count, mean, sd and 95% t-interval (cut to [0, 100] for the
retrieval metrics, which are percentages, with a `clipped` flag where that changed it); `paired_differences`
gives, for every arm against the reference arm over seeds present in both, the mean difference with its
interval, the paired test (see stats.paired_test) and Holm-adjusted p-values (one family per metric: all arms
compared with the reference); `learning_curves` gives the per-arm mean and min–max band of a metric by
epoch over seeds; `per_seed` is the raw numbers behind them.
"""
from __future__ import annotations

import pandas as pd

from harma.report.stats import WILCOXON_MIN_PAIRS, clip_interval, holm, mean_ci, paired_test

RETRIEVAL = ("r_mean", "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10")
COST = ("trainable_params", "cost_hours")  # cost_hours: see harma.report.cost
SUMMARY_METRICS = tuple(f"test_{m}" for m in RETRIEVAL) + tuple(f"val_{m}" for m in RETRIEVAL) + COST
TESTED_METRICS = ("test_r_mean", "val_r_mean") + tuple(
    f"{s}_{m}" for s in ("test", "val") for m in RETRIEVAL if m != "r_mean")


def arm_summary(done: pd.DataFrame, arms: list[str], metrics: tuple[str, ...] = SUMMARY_METRICS,
                level: float = 0.95) -> pd.DataFrame:
    """One row per (arm, metric): n, mean, sd, ci_low, ci_high, clipped, in the given arm order."""
    rows = []
    for arm in arms:
        sub = done[done["arm_label"] == arm]
        for metric in metrics:
            s = mean_ci(sub[metric].astype(float).to_numpy(), level)
            low, high, clipped = (clip_interval(s.ci_low, s.ci_high) if is_percent(metric)
                                  else (s.ci_low, s.ci_high, False))
            rows.append({"arm": arm, "metric": metric, "n": s.n, "mean": s.mean, "sd": s.sd,
                         "ci_low": low, "ci_high": high, "clipped": clipped})
    return pd.DataFrame(rows, columns=["arm", "metric", "n", "mean", "sd", "ci_low", "ci_high", "clipped"])


def is_percent(metric: str) -> bool:
    """Retrieval metrics (`val_r_mean`, `test_txt_r1`, ...) are percentages, bounded by 0 and 100."""
    return metric.split("_", 1)[-1] in RETRIEVAL and metric.startswith(("val_", "test_"))


def seeds_per_arm(done: pd.DataFrame, arms: list[str]) -> dict[str, int]:
    """COMPLETE seeds of each arm (one per seed; trials without a seed count one each)."""
    return {arm: int((done["arm_label"] == arm).sum()) for arm in arms}


def _pairs(done: pd.DataFrame, arm: str, reference: str, metric: str) -> pd.DataFrame:
    cols = ["seed", metric]
    a = done.loc[(done["arm_label"] == arm) & done["seed"].notna(), cols]
    r = done.loc[(done["arm_label"] == reference) & done["seed"].notna(), cols]
    merged = a.merge(r, on="seed", suffixes=("_arm", "_ref")).dropna()
    return merged.sort_values("seed", kind="stable")


def paired_differences(done: pd.DataFrame, arms: list[str], reference: str,
                       metrics: tuple[str, ...] = TESTED_METRICS,
                       min_wilcoxon: int = WILCOXON_MIN_PAIRS) -> pd.DataFrame:
    """arm − reference over matching seeds, per metric, with paired tests and Holm-adjusted p-values."""
    rows = []
    for metric in metrics:
        block = []
        for arm in arms:
            if arm == reference:
                continue
            pairs = _pairs(done, arm, reference, metric)
            x = pairs[f"{metric}_arm"].astype(float).to_numpy()
            y = pairs[f"{metric}_ref"].astype(float).to_numpy()
            diff = mean_ci(x - y)
            test = paired_test(x, y, min_wilcoxon)
            block.append({"arm": arm, "reference": reference, "metric": metric, "n_pairs": test.n,
                          "seeds": " ".join(str(int(s)) for s in pairs["seed"]),
                          "mean_diff": diff.mean, "ci_low": diff.ci_low, "ci_high": diff.ci_high,
                          "test": test.test, "statistic": test.statistic, "p_value": test.p_value,
                          "note": test.note})
        adjusted = holm([r["p_value"] for r in block])
        for r, p in zip(block, adjusted):
            r["p_holm"] = float(p)
        rows += block
    columns = ["arm", "reference", "metric", "n_pairs", "seeds", "mean_diff", "ci_low", "ci_high", "test",
               "statistic", "p_value", "p_holm", "note"]
    return pd.DataFrame(rows, columns=columns)


def learning_curves(done: pd.DataFrame, epochs: pd.DataFrame, arms: list[str], split: str = "val",
                    metric: str = "r_mean") -> pd.DataFrame:
    """Per arm and epoch: seeds seen, mean, min and max of `split`/`metric` over the arm's trials."""
    columns = ["arm", "epoch", "n", "mean", "low", "high"]
    sel = epochs[(epochs["split"] == split) & (epochs["metric"] == metric)]
    merged = sel.merge(done[["trial_id", "arm_label"]], on="trial_id")
    if merged.empty:
        return pd.DataFrame(columns=columns)
    merged = merged.assign(epoch=merged["epoch"].astype(int), value=merged["value"].astype(float))
    g = merged.groupby(["arm_label", "epoch"])["value"]
    out = pd.DataFrame({"n": g.count(), "mean": g.mean(), "low": g.min(), "high": g.max()}).reset_index()
    out = out.rename(columns={"arm_label": "arm"})
    out["arm"] = pd.Categorical(out["arm"], categories=arms, ordered=True)
    out = out.sort_values(["arm", "epoch"], kind="stable").reset_index(drop=True)
    out["arm"] = out["arm"].astype(str)
    return out[columns]


def per_seed(done: pd.DataFrame, metrics: tuple[str, ...] = SUMMARY_METRICS) -> pd.DataFrame:
    """The COMPLETE trials behind the summaries: arm, seed, trial id and every summarised metric."""
    out = done[["arm_label", "seed", "trial_id", *metrics]].rename(columns={"arm_label": "arm"})
    return out.reset_index(drop=True)
