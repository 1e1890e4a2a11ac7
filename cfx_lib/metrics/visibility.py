"""Faint counterfactuals: images with less contrast than almost any real image of the dataset.

A factor oracle trained on real digits has never seen a nearly empty image, and it may read one
confidently as a normal value anyway: on ``colored_mnist`` a generator that erased most of a 0, or
all of it, was read as a confident "1" (docs/experiments.md, "Session 22"). Such a counterfactual
counts toward the oracle-normal share while it explains nothing. These functions measure it, so
that the figures can say how much of a share such images make up:

- :func:`contrast`: per image, the standard deviation over pixels of the per-pixel maximum over
  channels (0 for a uniform image, whatever its colour; a digit or a sign on its background has
  a clearly positive one);
- :func:`faint_threshold`: a low quantile of the contrast of real images (:data:`FAINT_QUANTILE`);
- :func:`faint_mask`: which images fall below it.

The threshold comes from the dataset's own real images, so a real test image is faint with
probability about :data:`FAINT_QUANTILE` by construction.
"""

from __future__ import annotations

import torch

#: the quantile of real images' contrast below which an image counts as faint: 1 in 100 real
#: test images is, by construction
FAINT_QUANTILE = 0.01


def contrast(images: torch.Tensor) -> torch.Tensor:
    """(N,) the standard deviation over pixels of max_c x, for images (N, C, H, W)."""
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    return images.amax(dim=1).flatten(1).float().std(dim=1)


def faint_threshold(real_images: torch.Tensor, quantile: float = FAINT_QUANTILE) -> float:
    """The ``quantile`` of :func:`contrast` over real images (e.g. a dataset's test split)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if len(real_images) < 2:
        raise ValueError("a faint threshold needs at least two real images")
    return float(contrast(real_images).quantile(quantile))


def faint_mask(images: torch.Tensor, threshold: float) -> torch.Tensor:
    """Bool (N,): the images whose :func:`contrast` is below ``threshold`` (:func:`faint_threshold`)."""
    return contrast(images) < threshold
