"""Metrics of counterfactual explanations (issue 4's subset; see also :mod:`.oracle`).

- :func:`normality_auroc`: AuROC of φ's scores, normal test data vs counterfactuals
  (0.5: φ cannot tell them apart; the paper's Table 1).
- :func:`oracle_normal_share`: the share of counterfactuals that the oracle classifiers read as
  belonging to the normal set (independent of φ); :func:`oracle_normal_mask` says which.
- :func:`concept_accuracy`: R's accuracy at telling which concept produced a pair (Table 4).
- :func:`counterfactual_metrics`: all of them, overall and per concept, as a flat dict, with
  the concepts' edit overlap (:func:`~.disentanglement.concept_overlap`).
- :func:`route_table`: per concept and per value of each factor of the anomalies, which factors the
  counterfactuals change, how many the oracle reads as normal and how large the edit is.

Where a faint threshold is given (:func:`~.visibility.faint_threshold` of real images), both also
say how many counterfactuals are faint, and ``oracle_normal_visible`` counts only the oracle-normal
ones that are not: an oracle can read a nearly empty image as a normal digit.
"""

from __future__ import annotations

from typing import Any

import torch

from .auroc import auroc
from .disentanglement import changed_factors, concept_overlap, edit_sizes, factor_changes_per_value
from .oracle import MIN_CONFIDENCE
from .visibility import faint_mask


def normality_auroc(normal_scores: torch.Tensor, cf_scores: torch.Tensor) -> float:
    """AuROC of detector scores: normal test samples (negatives) vs counterfactuals (positives).
    0.5 = the detector finds the counterfactuals as normal as real normal data; 1 = all more
    anomalous."""
    return auroc(normal_scores.flatten(), cf_scores.flatten())


def oracle_normal_mask(oracle, setup: Any, images: torch.Tensor, min_confidence: float = MIN_CONFIDENCE) -> torch.Tensor:
    """Bool (N,): the oracle-read factors of each image make it normal under ``setup`` (a dataset
    setup with an ``is_normal(factors)`` method, e.g. :class:`ColoredMNISTSetup`). Factors read
    with less than ``min_confidence`` are unreadable and match no normal value."""
    if len(images) == 0:
        raise ValueError("no images to read")
    return setup.is_normal(oracle.predict(images, min_confidence=min_confidence))


def oracle_normal_share(oracle, setup: Any, images: torch.Tensor, min_confidence: float = MIN_CONFIDENCE) -> float:
    """Share of ``images`` that :func:`oracle_normal_mask` reads as normal."""
    return float(oracle_normal_mask(oracle, setup, images, min_confidence).float().mean())


@torch.no_grad()
def concept_accuracy(concept_classifier: torch.nn.Module, images: torch.Tensor, counterfactuals: torch.Tensor,
                     batch_size: int = 256) -> float:
    """Accuracy of R on pairs (x, G(x, α, k)): the share where argmax R = k.

    ``counterfactuals`` is (N, K, C, H, W), concept k in ``[:, k]``.
    """
    n, k_total = counterfactuals.shape[:2]
    was = concept_classifier.training
    concept_classifier.eval()
    device = next(concept_classifier.parameters()).device
    correct = 0
    for k in range(k_total):
        for i in range(0, n, batch_size):
            logits = concept_classifier(images[i : i + batch_size].to(device), counterfactuals[i : i + batch_size, k].to(device))
            correct += int((logits.argmax(1) == k).sum())
    concept_classifier.train(was)
    return correct / (n * k_total)


def counterfactual_metrics(explanation, normal_scores: torch.Tensor, oracle=None, setup: Any = None,
                           concept_classifier: torch.nn.Module | None = None,
                           faint_below: float | None = None) -> dict[str, float]:
    """Metrics of the α = 0 counterfactuals of test anomalies.

    Args:
        explanation: :class:`cfx_lib.counterfactual.Explanation` of the test anomalies.
        normal_scores: φ's scores of the normal test samples.
        oracle, setup: factor oracle and the dataset setup that decides normality from factors
            (skip the oracle figures when None).
        concept_classifier: R (skip ``concept_acc`` when None).
        faint_below: a contrast threshold (:func:`~.visibility.faint_threshold` of real test
            images; skip the faint figures when None).

    Returns ``normality_auroc``, ``median_cf_score``, ``cf_normal_share`` (φ ≤ threshold),
    ``oracle_normal``, ``concept_acc`` overall, and the first four per concept with suffix
    ``_k<k+1>``; also ``anomaly_normal_share``: the share of the anomalies themselves that φ
    already scores at or below the threshold. Where it is high, φ does not flag those anomalies,
    so a faithful counterfactual need not make them oracle-normal: it bounds how far
    ``oracle_normal`` says something about the generator rather than about φ. With K ≥ 2,
    ``concept_overlap``: how alike the concepts' edits of one anomaly are (0 different, 1 the same).
    With ``faint_below``, ``faint_share`` (the share of counterfactuals below it) and, with the oracle,
    ``oracle_normal_visible`` (oracle-normal and not faint), overall and per concept.
    """
    m: dict[str, float] = {}
    cf_scores = explanation.cf_scores
    m["normality_auroc"] = normality_auroc(normal_scores, cf_scores)
    m["median_cf_score"] = float(cf_scores.median())
    m["cf_normal_share"] = float(explanation.is_normal.float().mean())
    m["anomaly_normal_share"] = float((explanation.scores <= explanation.threshold).float().mean())
    for k in range(explanation.n_concepts):
        m[f"normality_auroc_k{k + 1}"] = normality_auroc(normal_scores, cf_scores[:, k])
        m[f"median_cf_score_k{k + 1}"] = float(cf_scores[:, k].median())
        m[f"cf_normal_share_k{k + 1}"] = float(explanation.is_normal[:, k].float().mean())
    if explanation.n_concepts > 1:
        m["concept_overlap"] = concept_overlap(explanation.images, explanation.counterfactuals)
    normal = None
    if oracle is not None and setup is not None:
        normal = [oracle_normal_mask(oracle, setup, explanation.counterfactuals[:, k]) for k in range(explanation.n_concepts)]
        per_k = [float(mask.float().mean()) for mask in normal]
        m["oracle_normal"] = sum(per_k) / len(per_k)
        for k, v in enumerate(per_k):
            m[f"oracle_normal_k{k + 1}"] = v
        m["oracle_normal_anomalies"] = oracle_normal_share(oracle, setup, explanation.images)
    if faint_below is not None:
        faint = [faint_mask(explanation.counterfactuals[:, k], faint_below) for k in range(explanation.n_concepts)]
        m["faint_share"] = float(torch.stack(faint).float().mean())
        for k, f in enumerate(faint):
            m[f"faint_share_k{k + 1}"] = float(f.float().mean())
        if normal is not None:
            visible = [mask & ~f for mask, f in zip(normal, faint)]
            m["oracle_normal_visible"] = float(torch.stack(visible).float().mean())
            for k, v in enumerate(visible):
                m[f"oracle_normal_visible_k{k + 1}"] = float(v.float().mean())
    if concept_classifier is not None:
        m["concept_acc"] = concept_accuracy(concept_classifier, explanation.images, explanation.counterfactuals)
    return m


def route_table(oracle, setup: Any, anomalies, counterfactuals: torch.Tensor,
                changes: list[dict[str, torch.Tensor]] | None = None,
                faint_below: float | None = None) -> list[dict[str, float | str | int]]:
    """What each concept does to the anomalies of each value of each factor (e.g. red digits, green
    ones, ...): the rows of :func:`~.disentanglement.factor_changes_per_value` with ``oracle-normal``
    (:func:`oracle_normal_mask`) and ``l1`` (:func:`~.disentanglement.edit_sizes`, the mean absolute
    pixel change) per group. ``anomalies`` is the :class:`~cfx_lib.data.base.ADDataset` explained,
    ``counterfactuals`` (N, K, C, H, W); ``changes`` (:func:`~.disentanglement.changed_factors`) is
    computed when not given; with ``faint_below`` (a contrast threshold, :func:`~.visibility.faint_threshold`)
    also ``faint`` per group, the share of counterfactuals below it. The input of
    :func:`cfx_lib.viz.concept_routes`."""
    if not anomalies.factors:
        raise ValueError(f"{anomalies.name} has no ground-truth factors to break the counterfactuals down by")
    if changes is None:
        changes = changed_factors(oracle, anomalies.images, counterfactuals)
    values = {"oracle-normal": [oracle_normal_mask(oracle, setup, counterfactuals[:, k])
                                for k in range(counterfactuals.shape[1])],
              "l1": edit_sizes(anomalies.images, counterfactuals)}
    if faint_below is not None:
        values["faint"] = [faint_mask(counterfactuals[:, k], faint_below) for k in range(counterfactuals.shape[1])]
    return factor_changes_per_value(changes, anomalies.factors, anomalies.factor_values, values)
