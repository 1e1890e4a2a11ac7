"""Datasets read through torchvision: CIFAR-10, GTSRB (standing in for GTSDB) and user image
folders. They keep torchvision's real download path; offline, a missing dataset raises an
error that says which files to put where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..paths import offline
from .base import ADDataset, check_values

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: GTSRB classes 0-8 are the speed-limit signs; 6 ("end of speed limit 80") is not a limit.
GTSRB_SPEED_LIMITS = (0, 1, 2, 3, 4, 5, 7, 8)


class DatasetUnavailable(FileNotFoundError):
    """A dataset is not on disk and could not be downloaded."""


def _to_float_images(pil_images: list, size: int) -> torch.Tensor:
    from PIL import Image

    arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)) for im in pil_images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255.0).contiguous()


@dataclass(frozen=True)
class CIFAR10Setup:
    """One-vs-rest (or multi-class) normal set of CIFAR-10 class indices 0-9."""

    normal_classes: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal_classes", tuple(check_values("CIFAR-10 normal class", self.normal_classes, list(range(10)))))
        if not self.normal_classes:
            raise ValueError("normal_classes must name at least one CIFAR-10 class 0-9")


def load_cifar10(split: str, root: Path, seed: int, download: bool | None, setup: CIFAR10Setup) -> ADDataset:
    from torchvision.datasets import CIFAR10

    download = (not offline()) if download is None else download
    try:
        ds = CIFAR10(str(root), train=(split == "train"), download=download)
    except Exception as err:
        raise DatasetUnavailable(
            f"CIFAR-10 is not under {root} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Put the extracted folder 'cifar-10-batches-py' (from cifar-10-python.tar.gz, "
            f"https://www.cs.toronto.edu/~kriz/cifar.html) at {root / 'cifar-10-batches-py'}."
        ) from err
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div(255.0).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    normal = torch.isin(labels, torch.as_tensor(setup.normal_classes))
    return ADDataset(
        name="cifar10", split=split, images=images, labels=labels, is_anomaly=~normal,
        class_names=CIFAR10_CLASSES,
        normal_description="class in " + str([CIFAR10_CLASSES[c] for c in setup.normal_classes]),
        source="torchvision CIFAR-10",
    )


@dataclass(frozen=True)
class GTSRBSetup:
    """GTSRB resized to ``image_size``; normal = the speed-limit classes by default."""

    normal_classes: tuple[int, ...] = GTSRB_SPEED_LIMITS
    image_size: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal_classes", tuple(check_values("GTSRB normal class", self.normal_classes, list(range(43)))))
        if not self.normal_classes:
            raise ValueError("normal_classes must name at least one GTSRB class 0-42")
        if self.image_size not in (28, 32):
            raise ValueError(f"GTSRB image_size must be 28 or 32 (the detector networks' sizes), got {self.image_size}")


def load_gtsrb(split: str, root: Path, seed: int, download: bool | None, setup: GTSRBSetup) -> ADDataset:
    from PIL import Image
    from torchvision.datasets import GTSRB

    download = (not offline()) if download is None else download
    try:
        ds = GTSRB(str(root), split=split, download=download)
    except Exception as err:
        folder = "GTSRB/Training/<class>/*.ppm" if split == "train" else "GTSRB/Final_Test/Images/*.ppm (and gtsrb/GT-final_test.csv)"
        raise DatasetUnavailable(
            f"GTSRB ({split}) is not under {root} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Put the extracted archive at {root / 'gtsrb'} so that {root / 'gtsrb' / folder} exists "
            f"(the layout torchvision.datasets.GTSRB expects)."
        ) from err
    paths, targets = zip(*ds._samples) if len(ds._samples) else ((), ())
    images = _to_float_images([Image.open(p) for p in paths], setup.image_size)
    labels = torch.as_tensor(targets, dtype=torch.long)
    normal = torch.isin(labels, torch.as_tensor(setup.normal_classes))
    return ADDataset(
        name="gtsrb", split=split, images=images, labels=labels, is_anomaly=~normal,
        class_names=[str(c) for c in range(43)],
        normal_description=f"GTSRB class in {list(setup.normal_classes)} (speed limits by default)",
        source="torchvision GTSRB",
    )


@dataclass(frozen=True)
class ImageFolderSetup:
    """User images in ``<root>/<split>/<class name>/*.png|jpg`` (torchvision ImageFolder layout).

    ``normal_classes``: the class folder names that are normal. ``image_size``: 28 or 32.
    ``channels``: 1 (grayscale) or 3 (RGB). ``folder`` overrides ``<root>/<split>``.
    """

    normal_classes: tuple[str, ...] = ()
    image_size: int = 32
    channels: int = 3
    folder: str | None = None

    def __post_init__(self) -> None:
        classes = (self.normal_classes,) if isinstance(self.normal_classes, str) else tuple(self.normal_classes)
        if not classes:
            raise ValueError("imagefolder needs normal_classes: the names of the class folders that are normal")
        object.__setattr__(self, "normal_classes", classes)
        if self.image_size not in (28, 32):
            raise ValueError(f"imagefolder image_size must be 28 or 32, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"imagefolder channels must be 1 or 3, got {self.channels}")


def load_imagefolder(split: str, root: Path, seed: int, download: bool | None, setup: ImageFolderSetup) -> ADDataset:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    folder = Path(setup.folder) if setup.folder else root / split
    if not folder.is_dir():
        raise DatasetUnavailable(
            f"imagefolder: no folder {folder}. Put images as {folder}/<class name>/<image>.png "
            f"(one sub-folder per class), or pass folder=..."
        )
    ds = ImageFolder(str(folder))
    unknown = set(setup.normal_classes) - set(ds.classes)
    if unknown:
        raise ValueError(f"imagefolder: normal class(es) {sorted(unknown)} not found in {folder}; classes there: {ds.classes}")
    images = _to_float_images([Image.open(p) for p, _ in ds.samples], setup.image_size)
    if setup.channels == 1:
        images = images.mean(dim=1, keepdim=True)
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    normal_idx = torch.as_tensor([ds.class_to_idx[c] for c in setup.normal_classes])
    return ADDataset(
        name="imagefolder", split=split, images=images, labels=labels,
        is_anomaly=~torch.isin(labels, normal_idx), class_names=list(ds.classes),
        normal_description=f"class folder in {list(setup.normal_classes)}", source=f"image folder {folder}",
    )
