"""Disentanglement judged by ground truth: which factors each concept's counterfactuals change,
as read by the factor oracles (:mod:`.oracle`). The paper could only judge this by eye.

- :func:`factor_changes`: per concept, the share of counterfactuals whose oracle reading differs
  from the anomaly's in each factor, and the share that change exactly one factor.
- :func:`factor_changes_by`: the same per concept *and* per value of one factor of the anomaly
  (e.g. its colour): a concept may take a different route for different anomalies, e.g. turn red
  digits into 1s and recolour green ones, which a per-concept share averages away;
  :func:`factor_changes_per_value` does it for every factor of a dataset at once.
- :func:`concept_purity`: per concept, the share of counterfactuals that change exactly the
  concept's dominant factor and nothing else (1 = the concept is one factor).
- :func:`minimality`: mean L1 distance between anomaly and counterfactual per concept
  (:func:`edit_sizes`: per image).
- :func:`concept_overlap`: how alike the K concepts' edits of the same image are (needs no
  oracle, so it applies to every dataset).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..counterfactual.losses import edit_overlap
from .oracle import MIN_CONFIDENCE


def changed_factors(oracle, images: torch.Tensor, counterfactuals: torch.Tensor,
                    min_confidence: float = MIN_CONFIDENCE) -> list[dict[str, torch.Tensor]]:
    """Per concept k, factor name → bool (N,): the oracle reads a different value (or cannot read
    the counterfactual's value) than for the image. ``counterfactuals`` is (N, K, C, H, W)."""
    before = oracle.predict(images)
    out = []
    for k in range(counterfactuals.shape[1]):
        after = oracle.predict(counterfactuals[:, k], min_confidence=min_confidence)
        out.append({f: after[f] != before[f] for f in before})
    return out


def factor_changes(changes: list[dict[str, torch.Tensor]], factors: list[str] | None = None) -> list[dict[str, float]]:
    """Rows per concept: ``concept`` (1-based), ``changes <factor>`` shares, ``one factor`` (share
    changing exactly one of ``factors``), ``no factor``."""
    rows = []
    for k, per_factor in enumerate(changes):
        names = factors or list(per_factor)
        count = torch.stack([per_factor[f] for f in names]).sum(0)
        row: dict[str, float] = {"concept": k + 1}
        row |= {f"changes {f}": float(per_factor[f].float().mean()) for f in names}
        row["one factor"] = float((count == 1).float().mean())
        row["no factor"] = float((count == 0).float().mean())
        rows.append(row)
    return rows


def factor_changes_by(changes: list[dict[str, torch.Tensor]], groups: torch.Tensor, names: Sequence[str],
                      by: str = "group", values: dict[str, list[torch.Tensor]] | None = None,
                      factors: list[str] | None = None) -> list[dict[str, float | str | int]]:
    """:func:`factor_changes` per concept and per group of the images, e.g. per value of the
    anomalies' colour: ``groups`` (N,) holds each image's index into ``names``. Rows carry
    ``concept``, ``by`` (the group's name), ``n``, the ``changes <factor>`` shares, ``one factor``,
    ``no factor``, ``route`` (the factor this concept changes most often in this group, "none" if it
    changes none) and the group's mean of each of ``values`` (column name → per concept a tensor
    (N,), e.g. ``"oracle-normal"``: :func:`~.counterfactual.oracle_normal_mask` of each concept's
    counterfactuals, ``"l1"``: :func:`edit_sizes`). Empty groups are left out."""
    values = values or {}
    for column, per_concept in values.items():
        if len(per_concept) != len(changes):
            raise ValueError(f"values[{column!r}] needs one tensor per concept ({len(changes)}), got {len(per_concept)}")
    rows = []
    for k, per_factor in enumerate(changes):
        names_f = factors or list(per_factor)
        for index, name in enumerate(names):
            mask = groups == index
            if not mask.any():
                continue
            row = factor_changes([{f: per_factor[f][mask] for f in names_f}], names_f)[0]
            shares = {f: row[f"changes {f}"] for f in names_f}
            top = max(shares, key=shares.get)
            row = {"concept": k + 1, by: name, "n": int(mask.sum())} | {c: v for c, v in row.items() if c != "concept"}
            row["route"] = top if shares[top] > 0 else "none"
            row |= {column: float(per_concept[k][mask].float().mean()) for column, per_concept in values.items()}
            rows.append(row)
    return rows


def factor_changes_per_value(changes: list[dict[str, torch.Tensor]], factors: dict[str, torch.Tensor],
                             factor_values: dict[str, Sequence[str]],
                             values: dict[str, list[torch.Tensor]] | None = None) -> list[dict[str, float | str | int]]:
    """:func:`factor_changes_by` grouped by each factor of the images in turn (``factors`` and
    ``factor_values`` as an :class:`~cfx_lib.data.base.ADDataset` holds them, e.g.
    ``anomalies.factors``): the rows of every grouping, each with ``grouped by`` (the factor) and
    ``value`` (its value), the input of :func:`cfx_lib.viz.concept_routes`."""
    return [{"grouped by": f, **row}
            for f, names in factor_values.items()
            for row in factor_changes_by(changes, factors[f], names, by="value", values=values)]


def concept_purity(changes: list[dict[str, torch.Tensor]], factors: list[str] | None = None) -> tuple[list[float], list[str]]:
    """Per concept: the share of counterfactuals that change exactly its dominant factor (the factor
    it changes most often) and no other, and the name of that factor."""
    purities, dominant = [], []
    for per_factor in changes:
        names = factors or list(per_factor)
        shares = {f: float(per_factor[f].float().mean()) for f in names}
        top = max(shares, key=shares.get)
        others = torch.stack([per_factor[f] for f in names if f != top]).any(0) if len(names) > 1 else torch.zeros_like(per_factor[top])
        purities.append(float((per_factor[top] & ~others).float().mean()))
        dominant.append(top)
    return purities, dominant


def edit_sizes(images: torch.Tensor, counterfactuals: torch.Tensor) -> list[torch.Tensor]:
    """Per concept, the mean absolute pixel difference between each image and its counterfactual (N,)."""
    return [(counterfactuals[:, k] - images).abs().flatten(1).mean(1) for k in range(counterfactuals.shape[1])]


def minimality(images: torch.Tensor, counterfactuals: torch.Tensor) -> list[float]:
    """Mean absolute pixel difference between each image and its counterfactual, per concept."""
    return [float(size.mean()) for size in edit_sizes(images, counterfactuals)]


def concept_overlap(images: torch.Tensor, counterfactuals: torch.Tensor) -> float:
    """Mean over pairs of concepts j < k of the edit overlap
    (:func:`~cfx_lib.counterfactual.losses.edit_overlap`: mean over images of max(0, cos) between
    the edits ``cf_j − x`` and ``cf_k − x``).

    0: the concepts change each image in different directions; 1: they make the same change (up
    to its strength), however confidently R tells them apart. ``counterfactuals`` is
    (N, K, C, H, W) with K ≥ 2.
    """
    if counterfactuals.ndim != 5 or counterfactuals.shape[1] < 2:
        raise ValueError(f"concept overlap needs counterfactuals (N, K, C, H, W) with K >= 2, got {tuple(counterfactuals.shape)}")
    n_concepts = counterfactuals.shape[1]
    edits = counterfactuals - images[:, None]
    pairs = [(j, k) for j in range(n_concepts) for k in range(j + 1, n_concepts)]
    return sum(float(edit_overlap(edits[:, j], edits[:, k])) for j, k in pairs) / len(pairs)
