"""The generator that explains against the generator that trained: batch norm's two modes.

With batch norm (``CounterfactualConfig.g_norm="batch"``, the paper's) G normalises its features by
the statistics of the batch in training, so each counterfactual the losses saw depended on the
other images of its batch, and by running averages in eval mode, when it explains. Those averages
are updated by every training pass of G, the cycle G(x_t, s, k) and the reconstruction G(x, s, k)
as well as G(x, α, k), so they are not quite the statistics of any batch the counterfactuals were
drawn in. Two readings of a trained G tell how much this matters for a run:

- :func:`standing_statistics`: a copy of G whose running averages are recomputed as a plain average
  over batches drawn as training draws them for G(x, α, k) ("standing statistics", BigGAN's
  practice), or over every pass of a training iteration (``passes="training"``);
- :class:`InBatchGenerator`: G in training mode, each image explained inside a batch of training
  images at α and k drawn as in training, i.e. as the losses saw it.

:func:`running_stats_frozen` keeps a pass from updating the averages; the trainer uses it for the cycle
and reconstruction passes when ``CounterfactualConfig.g_running_stats="transform"``.

``benchmarks/bench_bn_modes.py`` compares these readings of a checkpoint with the running averages
(docs/experiments.md, "Session 45" and "Session 46"). A generator with ``g_norm="layer"`` computes one function in every mode.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..data.transforms import perturb
from . import losses as L
from .config import CounterfactualConfig
from .models import Generator, per_image


def _batch_norms(generator: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def running_stats_frozen(generator: nn.Module, frozen: bool = True) -> Iterator[None]:
    """Within the block, training-mode passes of ``generator`` normalise by their batch's statistics as
    always but leave the batch norms' running averages (and batch counts) as they were; nothing
    changes when ``frozen`` is False or G has no batch norm. The averages are restored to being
    updated on leaving, also after an error."""
    norms = _batch_norms(generator) if frozen else []
    tracked = [bn.track_running_stats for bn in norms]
    for bn in norms:
        bn.track_running_stats = False  # in training mode: batch statistics, running buffers not passed on
    try:
        yield
    finally:
        for bn, was in zip(norms, tracked):
            bn.track_running_stats = was


#: what :func:`standing_statistics` averages over
STANDING_PASSES = ("transform", "training")


def _training_draw(images: torch.Tensor, n: int, cfg: CounterfactualConfig, gen: torch.Generator,
                   scores: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``n`` training images with α and k drawn as the trainer draws them for G(x, α, k) (α over the whole
    range: ``alpha_range="below_score"`` would cap it at each image's score, which needs the detector),
    and their ``scores`` (None without)."""
    idx = torch.randint(len(images), (n,), generator=gen)
    alpha = L.sample_alphas(n, gen, space=cfg.score_space, eps=cfg.score_eps)  # as the trainer draws them
    k = torch.randint(cfg.n_concepts, (n,), generator=gen)
    return images[idx], alpha, k, None if scores is None else scores[idx]


def standing_statistics(generator: Generator, images: torch.Tensor, cfg: CounterfactualConfig, batches: int = 200,
                        seed: int = 0, passes: str = "transform", scores: torch.Tensor | None = None) -> Generator:
    """A copy of ``generator`` in eval mode whose batch-norm running averages are the plain average
    over ``batches`` batches of ``cfg.batch_size`` training ``images`` at α and k drawn as in training
    (seeded by ``seed``); ``generator`` itself is left as it was.

    ``passes`` says which passes of G each batch contributes. ``"transform"``: G(x, α, k) only, the
    statistics the counterfactuals were drawn with. ``"training"``: every pass of a training iteration
    in its proportions (the discriminator step's G(x, α, k), then on another batch G(x, α, k), the
    cycle G(x_t + noise, s, k) and the reconstruction G(x, s, k), with s the images' ``scores``, φ's
    scores of ``images``, which it needs): what the running averages of ``g_running_stats="all"`` (the
    default) average over, without their lag behind the changing weights."""
    if not _batch_norms(generator):
        raise ValueError("this generator has no batch norm (g_norm='layer'?): it has no running statistics to recompute")
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    if passes not in STANDING_PASSES:
        raise ValueError(f"passes must be one of {list(STANDING_PASSES)}, got {passes!r}")
    if passes == "training" and (scores is None or scores.shape != (len(images),)):
        raise ValueError("passes='training' needs the detector's scores of the images, one per image, for the cycle and "
                         "reconstruction passes G(·, s, k)")
    cfg.check_resolved()
    standing = copy.deepcopy(generator)
    momenta = [bn.momentum for bn in _batch_norms(standing)]
    for bn in _batch_norms(standing):
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative (plain) average over the batches below
    device = next(standing.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    standing.train()
    with torch.no_grad():
        for _ in range(batches):
            if passes == "training":  # the discriminator step's transform, on a batch of its own
                x, alpha, k, _ = _training_draw(images, cfg.batch_size, cfg, gen)
                standing(x.to(device), alpha.to(device), k.to(device))
            x, alpha, k, s = _training_draw(images, cfg.batch_size, cfg, gen, scores)
            x, alpha, k = x.to(device), alpha.to(device), k.to(device)
            x_t = standing(x, alpha, k)
            if passes == "training":
                s = s.to(device)
                standing(perturb(x_t, cfg.cycle_noise, 0, gen), s, k)
                standing(x, s, k)
    for bn, momentum in zip(_batch_norms(standing), momenta):
        bn.momentum = momentum  # G's own again, should anyone train the copy on
    return standing.eval()


class InBatchGenerator(nn.Module):
    """``generator`` as the training losses saw it: in training mode (batch statistics), each chunk of
    ``per_batch`` images explained inside a batch of ``cfg.batch_size`` filled up with training
    ``images`` at α and k drawn as in training (seeded by ``seed``). Works on a copy, so the
    running averages of ``generator`` are not touched. A diagnostic: an image's counterfactual depends
    on the draw of its companions, so this is no way to explain one image."""

    def __init__(self, generator: Generator, images: torch.Tensor, cfg: CounterfactualConfig, per_batch: int = 8,
                 seed: int = 0) -> None:
        super().__init__()
        if not 1 <= per_batch <= cfg.batch_size:
            raise ValueError(f"per_batch must be in 1..batch_size ({cfg.batch_size}), got {per_batch}")
        cfg.check_resolved()
        self.generator = copy.deepcopy(generator)
        self.images, self.cfg, self.per_batch = images, cfg, per_batch
        self.image_shape, self.n_concepts = generator.image_shape, generator.n_concepts
        self._gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        alpha, k = per_image(x, alpha, k)
        self.generator.train()
        fill, out = self.cfg.batch_size - self.per_batch, []
        for i in range(0, len(x), self.per_batch):
            xi, ai, ki = x[i : i + self.per_batch], alpha[i : i + self.per_batch], k[i : i + self.per_batch]
            xf, af, kf, _ = _training_draw(self.images, fill, self.cfg, self._gen)
            y = self.generator(torch.cat([xi, xf.to(x.device)]), torch.cat([ai.to(x.device), af.to(x.device)]),
                               torch.cat([ki.to(x.device), kf.to(x.device)]))
            out.append(y[: len(xi)])
        return torch.cat(out)
