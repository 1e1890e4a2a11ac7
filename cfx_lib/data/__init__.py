"""Anomaly-detection datasets with an offline default, and outlier-exposure sources.

Entry points: :func:`load_dataset` and :func:`load_outliers`. Every dataset gives images as
float32 tensors (N, C, H, W) with values in [0, 1].
"""

from .base import ADDataset, Batch, VALUE_RANGE
from .colored_mnist import COLOR_NAMES, PALETTE, ColoredMNISTSetup
from .mnist import MNISTSetup, read_mnist
from .outliers import OE_SOURCES, load_outliers
from .registry import DATASETS, load_dataset, make_setup, oe_options
from .signs import FACTOR_VALUES as SIGN_FACTOR_VALUES, NORMAL_SIGN, SignsSetup, render_sign
from .torchvision_sets import CIFAR10Setup, DatasetUnavailable, GTSRBSetup, ImageFolderSetup

__all__ = [
    "ADDataset", "Batch", "VALUE_RANGE", "COLOR_NAMES", "PALETTE", "ColoredMNISTSetup", "MNISTSetup",
    "read_mnist", "OE_SOURCES", "load_outliers", "DATASETS", "load_dataset", "make_setup", "oe_options",
    "SIGN_FACTOR_VALUES", "NORMAL_SIGN", "SignsSetup", "render_sign", "CIFAR10Setup",
    "DatasetUnavailable", "GTSRBSetup", "ImageFolderSetup",
]
