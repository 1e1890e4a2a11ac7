"""The loss terms of counterfactual training, each a small function of tensors.

With s = φ(x), x_t = G(x, α, k), x_cyc = G(x_t, s, k) and x_rec = G(x, s, k):

- :func:`d_hinge` / :func:`g_hinge`: the GAN hinge loss (D on real (x, s) vs fake (x_t, α)).
- :func:`score_loss`: continuous BCE between a target score and φ's score (on logits).
- :func:`l1`: the reconstruction and cycle terms.
- :func:`concept_loss`: sigmoid cross-entropy of R's logits against one-hot(k), or against zeros
  for pairs in which no concept should be visible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean relu(1 − D(real)) + mean relu(1 + D(fake)); 0 when real
    logits are ≥ 1 and fake ones ≤ −1."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: −mean D(fake)."""
    return -fake_logits.mean()


def score_loss(score_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Continuous binary cross-entropy between detector scores, given as logits (see
    :meth:`BaseDetector.score_logits`), and target scores in [0, 1]. Minimal (equal to the
    targets' entropy) where sigmoid(logits) equals the targets; working on logits keeps the
    gradient alive where a score has saturated at exactly 0 or 1."""
    return F.binary_cross_entropy_with_logits(score_logits, targets.to(score_logits.dtype))


def score_loss_excess(score_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`score_loss` minus its minimum (the targets' entropy): 0 where scores equal targets;
    for logging."""
    t = targets.to(score_logits.dtype).clamp(EPS, 1 - EPS)
    entropy = -(t * t.log() + (1 - t) * (1 - t).log()).mean()
    return score_loss(score_logits, targets) - entropy


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference."""
    return (x - y).abs().mean()


def concept_loss(logits: torch.Tensor, k: torch.Tensor | None) -> torch.Tensor:
    """Sigmoid cross-entropy of R's logits (B, K) against one-hot(k), or all zeros when ``k`` is
    None (a pair that should show no concept)."""
    if k is None:
        target = torch.zeros_like(logits)
    else:
        target = F.one_hot(k.long(), logits.shape[1]).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, target)
