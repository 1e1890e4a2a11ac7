"""Comparing training settings over generator seeds.

On a small budget the generator's seed moves the counterfactuals' figures more than most settings
do (docs/experiments.md, "Seed noise dominates these figures"), so a setting is judged by runs of the
same seeds on the same detector, paired seed by seed:

- :func:`seed_summary`: mean and standard deviation of each metric over seeds, per iteration count.
- :func:`paired_gain`: the differences trial − baseline of one metric, seed by seed, their mean and
  standard error, and the rule the study has used since session 13 to adopt a setting: the mean gain
  exceeds the standard error of the paired differences (a paired t of more than 1: a lenient rule,
  meant to pick settings worth more seeds, not to claim significance).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

#: the figures of :mod:`benchmarks/bench_cf_curve.py` summarised by default
SEED_METRICS = ("oracle_normal", "oracle_normal_visible", "faint_share", "purity", "normality_auroc", "concept_acc", "median_cf_score", "train_minutes")


def seed_summary(rows: pd.DataFrame, metrics: Sequence[str] = SEED_METRICS, by: str = "iterations") -> pd.DataFrame:
    """One row per value of ``by`` (the iteration count): the number of seeds, then ``<metric> mean``
    and ``<metric> std`` (over seeds, ddof 1; NaN for a single seed) for each of ``metrics`` in ``rows``."""
    missing = [m for m in (by, *metrics) if m not in rows.columns]
    if missing:
        raise ValueError(f"rows lack the column(s) {missing}; they have {list(rows.columns)}")
    out = []
    for key, group in rows.groupby(by, sort=True):
        row: dict[str, float] = {by: key, "seeds": len(group)}
        for m in metrics:
            row[f"{m} mean"] = float(group[m].mean())
            row[f"{m} std"] = float(group[m].std(ddof=1)) if len(group) > 1 else math.nan
        out.append(row)
    return pd.DataFrame(out)


@dataclass(frozen=True)
class PairedGain:
    """Trial − baseline of one metric over the seeds both ran (see :func:`paired_gain`)."""

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    standard_error: float

    @property
    def adopt(self) -> bool:
        """The study's rule: the mean gain exceeds the standard error of the paired differences."""
        return self.mean > self.standard_error

    def describe(self, metric: str = "oracle_normal") -> str:
        diffs = ", ".join(f"{d:+.3f}" for d in self.differences)
        verdict = "adopt" if self.adopt else "do not adopt"
        return (f"{metric}, trial − baseline over seeds {list(self.seeds)}: {diffs}; mean {self.mean:+.3f}, "
                f"standard error {self.standard_error:.3f} → {verdict} (rule: mean gain > standard error)")


def paired_gain(baseline: Mapping[int, float], trial: Mapping[int, float]) -> PairedGain:
    """The paired differences trial[s] − baseline[s] over the seeds s in both (seed → value)."""
    seeds = tuple(sorted(set(baseline) & set(trial)))
    if len(seeds) < 2:
        raise ValueError(f"a paired comparison needs at least two seeds run by both settings; baseline has "
                         f"{sorted(baseline)}, trial {sorted(trial)}")
    diffs = tuple(float(trial[s]) - float(baseline[s]) for s in seeds)
    mean = sum(diffs) / len(diffs)
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return PairedGain(seeds, diffs, mean, std / math.sqrt(len(diffs)))
