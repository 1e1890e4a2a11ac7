"""How detectors read the routes to normality that counterfactuals take.

A counterfactual of an anomaly takes a *single-factor route* when an oracle reads exactly one factor
changed, to one of that factor's normal values (on ``colored_mnist``: "redrawn as a 1 in its own
colour" is the ``digit`` route, "recoloured to cyan with its digit kept" the ``color`` route).
:func:`single_factor_routes` labels each counterfactual so; :func:`route_reading` then asks how
several detectors score the counterfactuals of each route: as they are, as the counterfactual score
loss reads them (through shifts and pixel noise, :func:`cfx_lib.data.transforms.perturb`), and along
the straight line from the anomaly to its counterfactual. It separates two reasons why a generator
trained on one detector never takes a route: the detector refuses where the route ends, or the
route's end is accepted but the way there is not downhill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..data.transforms import perturb
from ..detectors.detector import BaseDetector
from .oracle import MIN_CONFIDENCE

OTHER = "other"  # no factor, several factors, or one factor to an anomalous value


def single_factor_routes(oracle, images: torch.Tensor, counterfactuals: torch.Tensor,
                         normal_values: Mapping[str, Sequence[int]],
                         min_confidence: float = MIN_CONFIDENCE) -> list[str]:
    """Per counterfactual (``counterfactuals[i]`` of ``images[i]``, both (N, C, H, W)), the name of
    the one factor the oracle reads changed when its new value is among ``normal_values[factor]``
    (:func:`~.oracle_detector.normal_values_of` gives them for ``colored_mnist``), else
    :data:`OTHER`. A factor read below ``min_confidence`` counts as changed and never as normal."""
    if images.shape != counterfactuals.shape:
        raise ValueError(f"images and counterfactuals must be the same shape, got {tuple(images.shape)} and "
                         f"{tuple(counterfactuals.shape)}")
    before = oracle.predict(images)
    after = oracle.predict(counterfactuals, min_confidence=min_confidence)
    unknown = sorted(set(normal_values) - set(before))
    if unknown:
        raise ValueError(f"normal_values names factors the oracle does not read: {unknown}; it reads {sorted(before)}")
    changed = {f: after[f] != before[f] for f in before}
    n_changed = torch.stack(list(changed.values())).sum(0)
    routes = [OTHER] * len(images)
    for factor, values in normal_values.items():
        to_normal = torch.isin(after[factor], torch.as_tensor(list(values), dtype=after[factor].dtype))
        for i in torch.nonzero(changed[factor] & to_normal & (n_changed == 1)).flatten().tolist():
            routes[i] = factor
    return routes


def route_reading(detectors: Mapping[str, BaseDetector], images: torch.Tensor, counterfactuals: torch.Tensor,
                  routes: Sequence[str], shift: int = 4, noise: float = 0.05, threshold: float = 0.5,
                  blend: Sequence[float] = (0.25, 0.5, 0.75), seed: int = 0, rotate: float = 0.0,
                  scale: float = 0.0) -> list[dict[str, float | int | str]]:
    """One row per route (of :func:`single_factor_routes`) and detector: ``n`` counterfactuals,
    ``median_score`` and ``refused`` (the share scored above ``threshold``) as they are,
    ``median_score_read`` and ``refused_read`` as the score loss reads them (moved by up to ``shift``
    pixels, turned by up to ``rotate`` degrees and scaled by up to ``scale`` about the centre, with pixel
    noise ``noise``; one seeded draw, the same for every detector), and
    ``refused_at_<t>`` for each ``t`` in ``blend``: the share of the blends (1 − t)·x + t·x̄ that the
    detector refuses (t = 0 is the anomaly, t = 1 the counterfactual). Routes in sorted order."""
    if len(routes) != len(images) or images.shape != counterfactuals.shape:
        raise ValueError(f"need one route per image and counterfactuals shaped like the images, got {len(routes)} "
                         f"routes, images {tuple(images.shape)}, counterfactuals {tuple(counterfactuals.shape)}")
    if not all(0.0 <= t <= 1.0 for t in blend):
        raise ValueError(f"blend weights must lie in [0, 1], got {list(blend)}")
    read = perturb(counterfactuals, noise, shift, torch.Generator().manual_seed(seed), rotate, scale)
    rows: list[dict[str, float | int | str]] = []
    for route in sorted(set(routes)):
        mask = torch.tensor([r == route for r in routes])
        x, cf, cf_read = images[mask], counterfactuals[mask], read[mask]
        for name, detector in detectors.items():
            clean, moved = detector.score_images(cf), detector.score_images(cf_read)
            row: dict[str, float | int | str] = {
                "route": route, "detector": name, "n": int(mask.sum()),
                "median_score": float(clean.median()), "refused": float((clean > threshold).float().mean()),
                "median_score_read": float(moved.median()), "refused_read": float((moved > threshold).float().mean())}
            for t in blend:
                mixed = detector.score_images((1 - t) * x + t * cf)
                row[f"refused_at_{t:g}"] = float((mixed > threshold).float().mean())
            rows.append(row)
    return rows
