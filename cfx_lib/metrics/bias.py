"""Where a detector's notion of "anomalous" is biased: its AuROC per value of a ground-truth
factor (e.g. per colour of ``colored_mnist``: normal test data vs the anomalies of that colour)."""

from __future__ import annotations

import pandas as pd
import torch

from .auroc import auroc


def auroc_by_factor(scores: torch.Tensor, data, factor: str) -> pd.DataFrame:
    """Rows per value of ``factor`` among the anomalies of ``data`` (an :class:`ADDataset`):
    ``value``, ``n_anomalies``, ``auroc`` (normal test data vs those anomalies), ``median_score``."""
    if factor not in data.factors:
        raise ValueError(f"dataset {data.name!r} has no factor {factor!r}; factors: {list(data.factors)}")
    normal = scores[~data.is_anomaly]
    rows = []
    for index, name in enumerate(data.factor_values[factor]):
        mask = data.is_anomaly & (data.factors[factor] == index)
        if int(mask.sum()) == 0:
            continue
        rows.append({"value": name, "n_anomalies": int(mask.sum()), "auroc": auroc(normal, scores[mask]),
                     "median_score": float(scores[mask].median())})
    return pd.DataFrame(rows)
