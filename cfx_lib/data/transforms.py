"""Batch image transforms shared by detector training and the counterfactual score loss."""

from __future__ import annotations

import math

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


def random_affine(x: torch.Tensor, degrees: float, scale: float, gen: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) with each image rotated about its centre by its own random angle of up to
    ``degrees`` either way and scaled by its own random factor in [1 − ``scale``, 1 + ``scale``]
    (bilinear, filling with zeros); ``x`` itself when both are 0, and then nothing is drawn from ``gen``.
    The image's centre stays where it is, so a centred digit stays centred: the variation of slant
    and size that handwriting has, where a shift moves the digit off the centre that MNIST's digits
    all share. Angles and factors come from ``gen`` (two draws of N numbers), so a seeded run repeats.
    Differentiable in ``x``.

    torchvision's ``RandomAffine`` draws one angle and factor per call from the global RNG; here every
    image of a batch gets its own, from the caller's generator, in one batched ``affine_grid``.
    """
    if not 0 <= degrees <= 180:
        raise ValueError(f"degrees must be in [0, 180], got {degrees}")
    if not 0 <= scale < 1:
        raise ValueError(f"scale must be in [0, 1) (a factor of 1 ± scale), got {scale}")
    if degrees == 0 and scale == 0:
        return x
    n = x.shape[0]
    angle = (2 * torch.rand(n, generator=gen) - 1) * math.radians(degrees)
    factor = 1 + (2 * torch.rand(n, generator=gen) - 1) * scale
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor  # output → input coordinates
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def perturb(x: torch.Tensor, noise: float, shift: int, gen: torch.Generator, rotate: float = 0.0,
            scale: float = 0.0) -> torch.Tensor:
    """x with a random shift of up to ``shift`` pixels per image (zero padding), then a random rotation
    of up to ``rotate`` degrees and scaling by up to ``scale`` about the centre (:func:`random_affine`),
    then Gaussian noise of std ``noise``, clamped to [0, 1]; x itself when all are 0. Differentiable in x."""
    x = random_affine(random_shift(x, shift, gen), rotate, scale, gen)
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
