"""The retraining test (the paper's Table 2a): retrain the detector with counterfactuals added
to its normal training data and measure its AuROC on the original test set.

Counterfactuals that are truly normal teach the detector nothing wrong, so its AuROC stays near
the original detector's. Counterfactuals that keep the anomaly's features (or are adversarial
perturbations of anomalies) teach it that those features are normal, and its AuROC falls. The
counterfactuals should be those of *training* anomalies, so that no test image leaks into
training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .auroc import auroc


@dataclass(frozen=True)
class RetrainResult:
    """AuROC on the original test set of the retrained detector, and the training it took."""

    auroc: float
    n_added: int
    train_seconds: float


def retrain_auroc(detector_config, normal: torch.Tensor, added: torch.Tensor, outliers: torch.Tensor | None,
                  test_normal: torch.Tensor, test_anomalous: torch.Tensor, max_added: int | None = None,
                  seed: int = 0, progress: bool = False) -> RetrainResult:
    """Train a fresh detector with ``detector_config`` on ``normal`` plus ``added`` (both as
    normal data; ``outliers`` as OE where the objective uses it) and return its AuROC on the
    test split (``test_normal`` vs ``test_anomalous``).

    Args:
        detector_config: a :class:`cfx_lib.config.DetectorConfig`, normally the one of the
            detector being explained (same objective, schedule and seed).
        normal: the original normal training images (N, C, H, W) in [0, 1].
        added: images to add as normal, e.g. counterfactuals (M, C, H, W) or (M, K, C, H, W).
        outliers: OE images for ``bce``/``hsc``; None for ``dsvdd``.
        max_added: add at most this many of ``added`` (a seeded random subset), so that they do
            not outnumber the real normal data; None adds all.
    """
    from ..detectors import train_detector

    if added.ndim == 5:
        added = added.flatten(0, 1)
    if added.shape[1:] != normal.shape[1:]:
        raise ValueError(f"added images have shape {tuple(added.shape[1:])}, normal data {tuple(normal.shape[1:])}")
    if len(added) == 0:
        raise ValueError("no images to add to the normal training data")
    if max_added is not None and len(added) > max_added:
        pick = torch.randperm(len(added), generator=torch.Generator().manual_seed(seed))[:max_added]
        added = added[pick.sort().values]
    result = train_detector(detector_config, torch.cat([normal, added.to(normal.dtype).cpu()]), outliers,
                            out_dir=None, progress=progress)
    det = result.detector
    value = auroc(det.score_images(test_normal), det.score_images(test_anomalous))
    return RetrainResult(value, len(added), result.train_seconds)
