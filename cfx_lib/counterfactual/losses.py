"""The loss terms of counterfactual training, each a small function of tensors.

With s = φ(x), x_t = G(x, α, k), x_cyc = G(x_t, s, k) and x_rec = G(x, s, k):

- :func:`d_hinge` / :func:`g_hinge`: the GAN hinge loss (D on real (x, s) vs fake (x_t, α)).
- :func:`score_loss`: continuous BCE between a target score and φ's score (on logits), or, in
  ``"logit"`` score space, a Huber distance between φ's logit and the target's logit.
- :func:`l1`: the reconstruction and cycle terms.
- :func:`concept_loss`: sigmoid cross-entropy of R's logits against one-hot(k), or against zeros
  for pairs in which no concept should be visible.
- :func:`edit_overlap`: how much two edits of the same images point the same way (our addition,
  not in the paper; ``LossWeights.distinct``).
- :func:`edit_rank`: how far an edit is from one spatial pattern in one colour direction (our
  addition, not in the paper; ``LossWeights.edit_rank``).
- :func:`faint_shortfall`: how far images fall below a floor of contrast, an erasure guard (our
  addition, not in the paper; ``LossWeights.faint``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-6
#: The default clip of the logit score space (``CounterfactualConfig.score_eps``).
DEFAULT_SCORE_EPS = 1e-3


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean relu(1 − D(real)) + mean relu(1 + D(fake)); 0 when real
    logits are ≥ 1 and fake ones ≤ −1."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: −mean D(fake)."""
    return -fake_logits.mean()


SCORE_SPACES = ("probability", "logit")


def _check_space(space: str) -> None:
    if space not in SCORE_SPACES:
        raise ValueError(f"unknown score space {space!r}; valid: {list(SCORE_SPACES)}")


def logit_bound(eps: float) -> float:
    """logit(1 − eps): the logit space spans [−bound, bound]."""
    return math.log((1 - eps) / eps)


def score_loss(score_logits: torch.Tensor, targets: torch.Tensor, space: str = "probability",
               eps: float = DEFAULT_SCORE_EPS) -> torch.Tensor:
    """The distance between detector scores, given as logits (see
    :meth:`BaseDetector.score_logits`), and target scores in [0, 1].

    ``"probability"`` (the paper's): continuous binary cross-entropy, minimal (the targets'
    entropy) where sigmoid(logits) equals the targets. Its gradient on a logit is score − target,
    so it hardly tells a score of 0.03 from one of 0.0005 although a detector trained with OE may
    rank them as far apart as an anomaly and a normal image.

    ``"logit"``: a Huber (smooth-L1) distance between the logits and logit(target), the targets
    clipped to [eps, 1 − eps]; a target at a clip edge is one-sided (a target of 0 asks for a score
    of at most eps, not exactly eps). Its gradient does not vanish near 0 or 1; 0 where scores meet
    the targets.
    """
    _check_space(space)
    if space == "probability":
        return F.binary_cross_entropy_with_logits(score_logits, targets.to(score_logits.dtype))
    t = targets.to(score_logits.dtype)
    diff = score_logits - torch.logit(t.clamp(eps, 1 - eps))
    diff = torch.where(t <= eps, diff.clamp(min=0), diff)
    diff = torch.where(t >= 1 - eps, diff.clamp(max=0), diff)
    return F.smooth_l1_loss(diff, torch.zeros_like(diff))


def score_loss_excess(score_logits: torch.Tensor, targets: torch.Tensor, space: str = "probability",
                      eps: float = DEFAULT_SCORE_EPS) -> torch.Tensor:
    """:func:`score_loss` minus its minimum (for ``"probability"`` the targets' entropy): 0 where
    scores equal targets; for logging."""
    if space != "probability":
        return score_loss(score_logits, targets, space, eps)
    t = targets.to(score_logits.dtype).clamp(EPS, 1 - EPS)
    entropy = -(t * t.log() + (1 - t) * (1 - t).log()).mean()
    return score_loss(score_logits, targets) - entropy


def sample_alphas(n: int, generator: torch.Generator, space: str = "probability", eps: float = DEFAULT_SCORE_EPS,
                  upper: torch.Tensor | None = None) -> torch.Tensor:
    """Target scores α for one batch: uniform in [0, 1] (``"probability"``, the paper's), or
    uniform in logit between logit(eps) and logit(1 − eps) (``"logit"``), which draws scores as
    normal as the normal data (and as anomalous as the anomalies) as often as middling ones.

    ``upper`` (n,), if given, caps each image's α at its own score: α is drawn from the same
    uniform number as above but mapped onto [0, upper] (in logit space onto [logit(eps),
    logit(upper)], ``upper`` clipped to [eps, 1 − eps]). So α only ever asks for an image at least
    as normal as it is (``CounterfactualConfig.alpha_range="below_score"``); the random stream is the
    same as without ``upper``.
    """
    _check_space(space)
    u = torch.rand(n, generator=generator)
    if upper is not None:
        upper = upper.detach().flatten().to(u.dtype).cpu()
        if upper.shape != (n,):
            raise ValueError(f"upper must hold one score per image ({n}), got shape {tuple(upper.shape)}")
    if space == "probability":
        return u if upper is None else u * upper.clamp(0, 1)
    bound = logit_bound(eps)
    if upper is None:
        return torch.sigmoid((2 * u - 1) * bound)
    top = torch.logit(upper.clamp(eps, 1 - eps))
    return torch.sigmoid(-bound + u * (top + bound))


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


def edit_overlap(edit_a: torch.Tensor, edit_b: torch.Tensor) -> torch.Tensor:
    """Mean over images of max(0, cos(edit_a, edit_b)), each edit (B, C, H, W) flattened per image:
    0 where two edits of the same image are orthogonal or opposed, 1 where they are the same
    change (up to its strength). An edit that is (nearly) zero counts as orthogonal.

    Used on x_t − x for two concepts of one image (``LossWeights.distinct``), against a failure of
    the paper's concept loss alone: both concepts make the same change to a given anomaly (e.g.
    both recolour it) and differ only in details that R still tells apart.
    """
    if edit_a.shape != edit_b.shape:
        raise ValueError(f"edits must have the same shape, got {tuple(edit_a.shape)} and {tuple(edit_b.shape)}")
    cos = F.cosine_similarity(edit_a.flatten(1), edit_b.flatten(1), dim=1, eps=1e-8)
    return cos.clamp(min=0).mean()


def edit_rank(edit: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over images of the root-mean-square residual of each edit (B, C, H, W) after its best
    rank-1 approximation as a (pixels × channels) matrix, i.e. sqrt((‖E‖²_F − σ₁²) / (H·W)).

    An edit that changes one spatial pattern along one colour direction is rank 1 and scores 0:
    recolouring a stroke (every pixel moves by its intensity times the same colour difference), or
    redrawing a shape in its own colour (new minus old intensities, times that colour). An edit
    that does both, or paints the output in varying shades, does not. With one channel every edit
    is rank 1 and the term is 0. The gradient is bounded (it is the norm of the residual) and small
    edits have small residuals, so a near-identity is not pushed around.

    Used on x_t − x (``LossWeights.edit_rank``, our addition): the paper's objective has nothing that
    prefers an edit of one factor over an edit of two (docs/experiments.md, "Session 22").
    """
    if edit.ndim != 4:
        raise ValueError(f"edit must be (B, C, H, W), got shape {tuple(edit.shape)}")
    e = edit.flatten(2).double()  # (B, C, H·W)
    gram = e @ e.transpose(1, 2)  # (B, C, C), eigenvalues σ_i²
    top = torch.linalg.eigvalsh(gram)[:, -1]
    rest = (gram.diagonal(dim1=1, dim2=2).sum(-1) - top).clamp(min=0)
    return (rest / e.shape[2] + eps).sqrt().mean().to(edit.dtype)


def faint_shortfall(contrast: torch.Tensor, floor: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over images of max(0, floor − contrast) / floor, for the per-image contrasts (N,) of
    :func:`cfx_lib.metrics.visibility.contrast`: 0 for every image at least as contrasted as the
    floor, 1 for a uniform (erased) image, linear in between.

    ``weights`` (N,), non-negative, make it the weighted mean Σ wᵢ·shortfallᵢ / Σ wᵢ (0 where every
    weight is 0): ``CounterfactualConfig.faint_focus="descent"`` weighs each counterfactual by how
    far its target α lies below its image's own score, so the guard is the mean shortfall of the
    edits that make anomalies normal, not of every edit at every α.

    Used on the counterfactuals x_t with the floor :func:`~cfx_lib.metrics.visibility.faint_threshold`
    of the real training images (``LossWeights.faint``, our addition): an erasure guard. Erasing a
    digit is a cheap way to lower a detector's score and a rank-1 edit (:func:`edit_rank` does not
    object to it), and an oracle trained on real digits may read the near-empty result as a normal
    one (docs/experiments.md, "Session 22"). Real images of the dataset cost nothing, save the
    faintest 1 in 100 by a little. A floor of 0 (data of uniform images) puts no image below it: 0.
    """
    if contrast.ndim != 1:
        raise ValueError(f"contrast must hold one value per image (N,), got shape {tuple(contrast.shape)}")
    if not floor >= 0:
        raise ValueError(f"the contrast floor must be non-negative, got {floor}")
    short = (floor - contrast).clamp(min=0) / floor if floor > 0 else torch.zeros_like(contrast)
    if weights is None:
        return short.mean()
    if weights.shape != contrast.shape or not bool((weights >= 0).all()):
        raise ValueError(f"weights must be non-negative, one per image {tuple(contrast.shape)}, got "
                         f"shape {tuple(weights.shape)}")
    weights = weights.detach().to(short.dtype)
    return (weights * short).sum() / weights.sum().clamp(min=torch.finfo(short.dtype).tiny)
