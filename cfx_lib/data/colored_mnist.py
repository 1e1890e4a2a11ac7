"""Coloured MNIST: each digit drawn in one colour of a fixed palette.

Normal = (a digit in ``normal_digits``, any colour) ∪ (any digit in a colour of
``normal_colors``). The default follows the paper: digit 1 in any colour, or any digit in cyan.
Digit and colour are the ground-truth factors. Colours are drawn uniformly, deterministically
given the seed (the split is mixed into the seed, so train and test differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .base import ADDataset, check_values
from .mnist import MNIST_CLASSES, read_mnist

#: The palette (RGB in [0, 1]); index = colour factor value.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
}
COLOR_NAMES = list(PALETTE)
_SPLIT_OFFSET = {"train": 0, "test": 1_000_003}


@dataclass(frozen=True)
class ColoredMNISTSetup:
    """Normal set of coloured MNIST: a set of digits in any colour ∪ a set of colours for any digit."""

    normal_digits: tuple[int, ...] = (1,)
    normal_colors: tuple[str, ...] = ("cyan",)

    def __post_init__(self) -> None:
        digits = tuple(check_values("colored_mnist normal digit", self.normal_digits, list(range(10))))
        colors = tuple(check_values("colored_mnist normal colour", self.normal_colors, COLOR_NAMES))
        if not digits and not colors:
            raise ValueError("colored_mnist needs at least one normal digit or normal colour")
        object.__setattr__(self, "normal_digits", digits)
        object.__setattr__(self, "normal_colors", colors)

    def oe_colors(self) -> list[str] | None:
        """The palette colours that are not normal, in which outlier exposure is drawn (see
        :mod:`cfx_lib.data.outliers`); None (all colours) when every colour is normal."""
        return [c for c in COLOR_NAMES if c not in self.normal_colors] or None

    def is_normal(self, factors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Whether images with these factor values (``digit``, ``color`` index tensors) are normal."""
        digit, color = torch.as_tensor(factors["digit"]), torch.as_tensor(factors["color"])
        color_idx = torch.as_tensor([COLOR_NAMES.index(c) for c in self.normal_colors], dtype=torch.long)
        return torch.isin(digit, torch.as_tensor(self.normal_digits, dtype=torch.long)) | torch.isin(color, color_idx)


def colorize(gray: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """Colour (N, H, W) grayscale images in [0, 1] with palette indices (N,) → (N, 3, H, W)."""
    rgb = torch.tensor(list(PALETTE.values()), dtype=torch.float32)[colors]  # (N, 3)
    return gray.unsqueeze(1) * rgb[:, :, None, None]


def load_colored_mnist(split: str, root: Path, seed: int, download: bool | None, setup: ColoredMNISTSetup) -> ADDataset:
    images, digits, source = read_mnist(split, root, download)
    gen = torch.Generator().manual_seed(seed + _SPLIT_OFFSET[split])
    colors = torch.randint(len(PALETTE), (len(digits),), generator=gen)
    normal = setup.is_normal({"digit": digits, "color": colors})
    desc_parts = []
    if setup.normal_digits:
        desc_parts.append(f"digit in {list(setup.normal_digits)} (any colour)")
    if setup.normal_colors:
        desc_parts.append(f"colour in {list(setup.normal_colors)} (any digit)")
    return ADDataset(
        name="colored_mnist",
        split=split,
        images=colorize(images.float() / 255.0, colors),
        labels=digits,
        is_anomaly=~normal,
        class_names=MNIST_CLASSES,
        factors={"digit": digits.clone(), "color": colors},
        factor_values={"digit": MNIST_CLASSES, "color": COLOR_NAMES},
        normal_description=" or ".join(desc_parts),
        source=f"{source}, coloured (seed {seed})",
    )
