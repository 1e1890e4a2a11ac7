"""AuROC computed once over all scores with scikit-learn."""

from __future__ import annotations

import numpy as np
import torch


def auroc(scores_normal: torch.Tensor | np.ndarray, scores_anomalous: torch.Tensor | np.ndarray) -> float:
    """AuROC of separating anomalous (positive) from normal (negative) samples by their score.

    0.5 = indistinguishable, 1 = every anomalous score above every normal one. Refuses sets with
    only one class.
    """
    from sklearn.metrics import roc_auc_score

    neg = np.asarray(torch.as_tensor(scores_normal).detach().cpu().double()).ravel()
    pos = np.asarray(torch.as_tensor(scores_anomalous).detach().cpu().double()).ravel()
    if len(neg) == 0 or len(pos) == 0:
        raise ValueError(f"AuROC needs both classes: got {len(neg)} normal and {len(pos)} anomalous scores")
    if not (np.isfinite(neg).all() and np.isfinite(pos).all()):
        raise ValueError("AuROC got non-finite scores")
    y = np.concatenate([np.zeros(len(neg)), np.ones(len(pos))])
    return float(roc_auc_score(y, np.concatenate([neg, pos])))
