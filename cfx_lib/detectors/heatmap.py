"""Gradient-based heatmaps of a detector's score: the explanation baseline the paper argues
against. A heatmap says *where* φ is sensitive, one value per pixel; it cannot say *what* would
have to change (a colour, a shape), which the counterfactuals show.

The attributions come from Captum (``Saliency``: |∂φ/∂x|; ``IntegratedGradients`` from a black
image), taken on φ's score logit, which does not saturate for confident anomalies the way the
score itself does. Channels are summed to one map per image.
"""

from __future__ import annotations

import torch

from .detector import BaseDetector

METHODS = ("saliency", "integrated_gradients")


def gradient_heatmap(detector: BaseDetector, images: torch.Tensor, method: str = "saliency",
                     batch_size: int = 128, n_steps: int = 32) -> torch.Tensor:
    """Per-pixel attribution of φ's anomaly score for each image.

    Args:
        detector: any :class:`BaseDetector` (gradients flow to the input).
        images: (B, C, H, W) in [0, 1], the detector's image shape.
        method: ``"saliency"`` (absolute input gradient) or ``"integrated_gradients"`` (absolute
            attribution along the path from a black image, ``n_steps`` steps).

    Returns:
        (B, H, W) non-negative maps on the CPU, each scaled so its maximum is 1 (all-zero maps
        stay zero).
    """
    from captum.attr import IntegratedGradients, Saliency

    if method not in METHODS:
        raise ValueError(f"unknown heatmap method {method!r}; valid: {list(METHODS)}")
    detector.check_input(images)
    device = next(detector.parameters(), torch.empty(0)).device
    was_training = detector.training
    detector.eval()
    explainer = Saliency(detector.score_logits) if method == "saliency" else IntegratedGradients(detector.score_logits)
    maps = []
    try:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device).requires_grad_(True)
            if method == "saliency":
                attr = explainer.attribute(x, abs=True)
            else:
                attr = explainer.attribute(x, baselines=torch.zeros_like(x), n_steps=n_steps).abs()
            maps.append(attr.detach().sum(dim=1).cpu())
    finally:
        detector.train(was_training)
    out = torch.cat(maps)
    peak = out.flatten(1).amax(dim=1).clamp_min(1e-12)
    return out / peak[:, None, None]
