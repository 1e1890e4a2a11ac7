"""The study's tables: our figures (collected from every run's ``metrics.json``) side by side
with the values the paper published.

Each table has a ``data`` column naming which data and profile produced our figures (the
offline defaults differ from the paper's downloads), and mean ± std over seeds and normal sets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

#: the paper's Table 1 (normality AuROC × 100 of φ, normal test data vs counterfactuals; 50 is ideal)
PAPER_NORMALITY = {
    ("colored_mnist", "bce"): 55.6, ("colored_mnist", "hsc"): 55.8, ("colored_mnist", "dsvdd"): 61.5,
    ("cifar10", "bce"): 47.5, ("cifar10", "hsc"): 49.9, ("cifar10", "dsvdd"): 54.6,
    ("mnist", "bce"): 72.0, ("mnist", "hsc"): 80.8, ("mnist", "dsvdd"): 75.2,
    ("gtsrb", "bce"): 50.2, ("gtsrb", "hsc"): 48.6, ("gtsrb", "dsvdd"): 53.1,  # the paper's GTSDB
}
#: the paper's Table 2 (FIDN; 100 = as far from normal data as the anomalies)
PAPER_FIDN = {
    ("colored_mnist", "bce"): 56.0, ("colored_mnist", "hsc"): 95.0, ("colored_mnist", "dsvdd"): 83.0,
    ("gtsrb", "bce"): 110.0, ("gtsrb", "hsc"): 95.0, ("gtsrb", "dsvdd"): 131.0,
}
NOTEBOOK = "03_counterfactual"


def run_files(notebook: str = NOTEBOOK) -> tuple[str, str]:
    """The files :func:`collect_runs` reads, as globs under ``results/<profile>``: each run's
    ``metrics.json`` and the ``params.json`` beside it."""
    return f"runs/*/{notebook}/metrics.json", f"runs/*/{notebook}/params.json"


def collect_runs(results_root: str | Path, profile: str, notebook: str = NOTEBOOK) -> pd.DataFrame:
    """One row per run of ``notebook`` under ``results/<profile>/runs``: its parameters (dataset,
    normal set, detector, seed) and every metric of its ``metrics.json``."""
    rows = []
    for metrics_path in sorted(Path(results_root, profile).glob(run_files(notebook)[0])):
        params_path = metrics_path.with_name("params.json")
        params = json.loads(params_path.read_text()) if params_path.is_file() else {}
        row = {"run": metrics_path.parent.parent.name, "profile": profile,
               "dataset": params.get("DATASET"), "normal": json.dumps(params.get("NORMAL", {}), sort_keys=True),
               "detector": params.get("DETECTOR"), "seed": params.get("SEED")}
        row.update(json.loads(metrics_path.read_text()))
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series, scale: float = 1.0) -> str:
    values = values.dropna() * scale
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def oracle_note(runs: pd.DataFrame) -> str:
    """Which oracle training recipe (:data:`cfx_lib.metrics.oracle.ORACLE_RECIPE`, a run's
    ``oracle_recipe``) read these runs' oracle figures, saying so when runs were read by different
    recipes or did not record theirs (runs written before session 36): such figures are not
    comparable, and rerunning notebook 03 reads the older runs again without retraining them."""
    recorded = runs.get("oracle_recipe", pd.Series(dtype=float)).dropna().astype(int)
    recipes = sorted(set(recorded))
    unrecorded = len(runs) - len(recorded)
    if not recipes:
        return "oracle recipe not recorded"
    note = f"oracle recipe {recipes[0]}" if len(recipes) == 1 else \
        f"oracle recipes {', '.join(map(str, recipes))} MIXED (not comparable)"
    return note + (f", {unrecorded} run(s) unrecorded" if unrecorded else "")


def _grouped(runs: pd.DataFrame, columns: dict[str, tuple[str, float]], paper: dict | None, paper_name: str,
             data_note: str, oracle: bool = False) -> pd.DataFrame:
    """Group runs by dataset and detector; ``columns``: output name → (metric, scale). With
    ``oracle`` (a table with figures read by the factor oracles) the data column also names the
    oracle recipe (:func:`oracle_note`)."""
    if runs.empty:
        return pd.DataFrame(columns=["dataset", "detector", *columns, *([paper_name] if paper else []), "runs", "data"])
    rows = []
    for (dataset, detector), group in runs.groupby(["dataset", "detector"], sort=True):
        row = {"dataset": dataset, "detector": detector}
        for name, (metric, scale) in columns.items():
            row[name] = _mean_std(group[metric], scale) if metric in group else "n/a"
        if paper is not None:
            row[paper_name] = paper.get((dataset, detector), float("nan"))
        row["runs"] = len(group)
        row["data"] = f"{group['profile'].iloc[0]} profile; {data_note}" + (f"; {oracle_note(group)}" if oracle else "")
        rows.append(row)
    return pd.DataFrame(rows)


def normality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1: φ's normality AuROC × 100 (ours and the paper's) with our oracle-normal share × 100
    beside it (the paper judged normality only by the detector it explains), the part of that share
    that is not faint (:mod:`.visibility`; n/a for runs written before it was measured), and the share
    of test anomalies that φ itself already scores normal (where that is high, faithful
    counterfactuals need not be oracle-normal)."""
    return _grouped(runs, {"normality AuROC (ours)": ("normality_auroc", 100), "oracle-normal % (ours)": ("oracle_normal", 100),
                           "oracle-normal, not faint %": ("oracle_normal_visible", 100),
                           "median φ of CFs ×100": ("median_cf_score", 100),
                           "anomalies φ finds normal %": ("anomaly_normal_share", 100)},
                    PAPER_NORMALITY, "normality AuROC (paper)", "offline data (see README)", oracle=True)


def fidn_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2: FIDN (ours, on oracle features, and the paper's, on Inception features) with
    the real-vs-real FID baseline."""
    return _grouped(runs, {"FIDN (ours)": ("fidn", 1), "FID CF–normal": ("fid", 1), "FID baseline": ("fid_baseline", 1)},
                    PAPER_FIDN, "FIDN (paper)", "FID on the oracle's features, not Inception", oracle=True)


def disentanglement_table(runs: pd.DataFrame) -> pd.DataFrame:
    """R's accuracy (the paper's Table 4), ground-truth purity, the concepts' edit overlap and
    minimality (ours only). R tells the concepts apart; the overlap says whether they are different
    changes (a run written before the overlap was measured shows n/a)."""
    return _grouped(runs, {"R accuracy %": ("concept_acc", 100), "purity %": ("purity", 100),
                           "edit overlap %": ("concept_overlap", 100), "L1 ×100": ("l1", 100)},
                    None, "", "purity read by oracle classifiers", oracle=True)


def retraining_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The retraining test (the paper's Table 2a): test AuROC × 100 of the original detector and of
    one retrained with counterfactuals of training anomalies added as normal data, and the control:
    one retrained with as many raw training anomalies added as normal data."""
    return _grouped(runs, {"AuROC original": ("detector_auroc", 100), "AuROC retrained with CFs": ("retrain_auroc", 100),
                           "AuROC retrained with anomalies (control)": ("retrain_auroc_control", 100)},
                    None, "", "retrained with the detector's own schedule")


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table (no extra dependency)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in table.iterrows():
        cells = [("n/a" if isinstance(v, float) and v != v else (f"{v:.1f}" if isinstance(v, float) else str(v))) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
