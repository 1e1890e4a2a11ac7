"""Batch image transforms shared by detector training and the counterfactual score loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) with each image moved by its own random offset of up to ``shift``
    pixels in each direction, filling with zeros (the background of the digit and sign datasets);
    ``x`` itself when ``shift`` is 0. Offsets are drawn from ``gen`` (two draws of N ints), so a
    seeded run repeats. Differentiable in ``x``.

    torchvision's ``RandomAffine``/``RandomCrop`` draw one offset per call from the global RNG;
    here every image of a batch gets its own, from the caller's generator.
    """
    if shift < 0:
        raise ValueError(f"shift must be >= 0 pixels, got {shift}")
    if shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen).tolist()
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def perturb(x: torch.Tensor, noise: float, shift: int, gen: torch.Generator) -> torch.Tensor:
    """x with a random shift of up to ``shift`` pixels per image (zero padding) and Gaussian
    noise of std ``noise``, clamped to [0, 1]; x itself when both are 0. Differentiable in x."""
    x = random_shift(x, shift, gen)
    if noise > 0:
        x = (x + noise * torch.randn(x.shape, generator=gen).to(x.device)).clamp(0, 1)
    return x


def channel_gain(x: torch.Tensor, jitter: float, gen: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) with every channel of every image multiplied by its own gain drawn
    uniformly from [1 − ``jitter``, 1 + ``jitter``], clamped to [0, 1]; ``x`` itself when
    ``jitter`` is 0. A colour's *shade* becomes unreadable (cyan (0, 0.8, 1) and (0, 1, 0.9) fall
    into each other's range), its *hue family* does not (a channel at 0 stays at 0, so red never
    reads as cyan). Gains come from ``gen`` (one draw of N·C numbers), so a seeded run repeats.
    Differentiable in ``x``.

    torchvision's ``ColorJitter`` draws one factor per call from the global RNG and scales
    brightness, not channels one by one; here every image gets its own gains from the caller's
    generator.
    """
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1) (a gain of 1 ± jitter per channel), got {jitter}")
    if jitter == 0:
        return x
    gains = 1 + jitter * (2 * torch.rand(x.shape[:2], generator=gen) - 1)
    return (x * gains.to(x.device, x.dtype)[:, :, None, None]).clamp(0, 1)
