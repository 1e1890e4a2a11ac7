"""Training objectives and score maps of the detectors (as in the authors' EOE / FCDD code).

Each objective turns the network output into a loss (given which samples are OE / labelled
anomalies) and into an anomaly score in [0, 1] (higher = more anomalous).

- ``bce`` / ``supervised_bce``: normal label 0, outlier label 1, BCE with logits; score = sigmoid.
- ``hsc``: d = sqrt(‖f(x)‖² + 1) − 1; loss d for normal, −log(1 − exp(−d)) for OE; score 1 − exp(−d).
- ``dsvdd``: d = ‖f(x) − c‖² (normal data only); score = 1 − 2^(−d / q), where q is the 95th
  percentile of d over the normal training data. The map is monotone, so AuROC is unchanged; it
  puts 95% of normal training data below 0.5 (the decision threshold shared by all detectors)
  and keeps gradients alive for far-away anomalies (a sigmoid of d would saturate).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def hsc_distance(features: torch.Tensor) -> torch.Tensor:
    """Pseudo-Huber distance of HSC: sqrt(‖f‖² + 1) − 1."""
    return torch.sqrt(features.pow(2).sum(dim=1) + 1.0) - 1.0


def dsvdd_distance(features: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Squared distance to the DSVDD centre."""
    return (features - center).pow(2).sum(dim=1)


def loss(kind: str, output: torch.Tensor, is_outlier: torch.Tensor, center: torch.Tensor | None = None) -> torch.Tensor:
    """Mean training loss of objective ``kind`` on a batch of network outputs."""
    is_outlier = is_outlier.float()
    if kind in ("bce", "supervised_bce"):
        return F.binary_cross_entropy_with_logits(output, is_outlier)
    if kind == "hsc":
        d = hsc_distance(output)
        # -log(1 - exp(-d)) = -log(-expm1(-d)), clamped for d -> 0
        outlier_loss = -torch.log(-torch.expm1(-d).clamp(max=-1e-6))
        return torch.where(is_outlier.bool(), outlier_loss, d).mean()
    if kind == "dsvdd":
        if center is None:
            raise ValueError("dsvdd needs its centre")
        return dsvdd_distance(output, center).mean()
    raise ValueError(f"unknown objective {kind!r}")


def score(kind: str, output: torch.Tensor, center: torch.Tensor | None = None, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Map network outputs to anomaly scores in [0, 1]."""
    if kind in ("bce", "supervised_bce"):
        return torch.sigmoid(output)
    if kind == "hsc":
        return -torch.expm1(-hsc_distance(output))
    if kind == "dsvdd":
        if center is None or scale is None:
            raise ValueError("dsvdd needs its centre and calibration scale")
        return -torch.expm1(-math.log(2.0) * dsvdd_distance(output, center) / scale)
    raise ValueError(f"unknown objective {kind!r}")


def score_logit(kind: str, output: torch.Tensor, center: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
    """logit(score) computed without saturation: sigmoid of it is :func:`score`. Losses on this
    keep their gradient where the score has reached exactly 0 or 1 in float32."""
    if kind in ("bce", "supervised_bce"):
        return output
    if kind == "hsc":
        u = hsc_distance(output)
    elif kind == "dsvdd":
        if center is None or scale is None:
            raise ValueError("dsvdd needs its centre and calibration scale")
        u = math.log(2.0) * dsvdd_distance(output, center) / scale
    else:
        raise ValueError(f"unknown objective {kind!r}")
    # score = 1 - exp(-u)  =>  logit = log(1 - exp(-u)) + u
    u = u.clamp_min(1e-6)
    return torch.log(-torch.expm1(-u)) + u
