"""Detector networks per input size (as in FCDD / EOE): CNN28 for 28×28, CNN32 for 32×32.

``bias=False`` removes every bias term and the BatchNorm affine parameters, as Deep SVDD needs
(a bias lets the network map everything onto the centre). ``head=True`` adds a linear output
unit for the BCE objectives.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(cin: int, cout: int, bias: bool) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 5, padding=2, bias=bias),
        nn.BatchNorm2d(cout, eps=1e-4, affine=bias),
        nn.LeakyReLU(0.1),
        nn.MaxPool2d(2),
    ]


class CNN28(nn.Module):
    """conv5×5 16 → BN → LeakyReLU → pool, conv5×5 32 → BN → LeakyReLU → pool,
    fc 64 → BN → LeakyReLU → fc 32 (+ linear head)."""

    rep_dim = 32
    image_size = 28

    def __init__(self, in_channels: int = 1, bias: bool = True, head: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(*_conv_block(in_channels, 16, bias), *_conv_block(16, 32, bias), nn.Flatten())
        self.fc = nn.Sequential(
            nn.Linear(32 * 7 * 7, 64, bias=bias), nn.BatchNorm1d(64, eps=1e-4, affine=bias), nn.LeakyReLU(0.1),
            nn.Linear(64, self.rep_dim, bias=bias),
        )
        self.head = nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(self.rep_dim, 1)) if head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(self.features(x))
        return self.head(z).squeeze(1) if self.head is not None else z


class CNN32(nn.Module):
    """conv 32/64/128 (5×5, BN, LeakyReLU, pool) → fc 512 → fc 256 (+ linear head)."""

    rep_dim = 256
    image_size = 32

    def __init__(self, in_channels: int = 3, bias: bool = True, head: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(in_channels, 32, bias), *_conv_block(32, 64, bias), *_conv_block(64, 128, bias), nn.Flatten()
        )
        self.fc = nn.Sequential(
            nn.Linear(128 * 4 * 4, 512, bias=bias), nn.BatchNorm1d(512, eps=1e-4, affine=bias), nn.LeakyReLU(0.1),
            nn.Linear(512, self.rep_dim, bias=bias),
        )
        self.head = nn.Sequential(nn.LeakyReLU(0.1), nn.Linear(self.rep_dim, 1)) if head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(self.features(x))
        return self.head(z).squeeze(1) if self.head is not None else z


NETWORKS = {28: CNN28, 32: CNN32}


def build_network(image_shape: tuple[int, int, int], bias: bool = True, head: bool = False) -> nn.Module:
    """The network for images of shape (C, H, W); H = W must be 28 or 32."""
    channels, height, width = image_shape
    if height != width or height not in NETWORKS:
        raise ValueError(f"no detector network for images of size {height}×{width}; supported: 28×28, 32×32")
    return NETWORKS[height](in_channels=channels, bias=bias, head=head)
