"""Figures for the notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..io import atomic_path


def _plt():
    import matplotlib.pyplot as plt

    return plt


def to_numpy_image(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] → (H, W) or (H, W, 3) numpy for ``imshow``."""
    img = img.detach().cpu().clamp(0, 1)
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()


def image_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None, scale: float = 1.0):
    """A figure showing images (N, C, H, W) in [0, 1] in a grid of ``nrow`` columns."""
    from torchvision.utils import make_grid

    plt = _plt()
    grid = make_grid(images.detach().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    rows = int(np.ceil(len(images) / nrow))
    fig, ax = plt.subplots(figsize=(scale * nrow * 0.6 + 0.5, scale * rows * 0.6 + (0.6 if title else 0.2)))
    ax.imshow(to_numpy_image(grid), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def sample_grid(dataset, n: int = 16, seed: int = 0):
    """Normal samples (top) and anomalous samples (bottom) of an :class:`ADDataset`."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(0.6 * n + 0.5, 2.0))
    gen = torch.Generator().manual_seed(seed)
    for ax, part, name in ((axes[0], dataset.normal, "normal"), (axes[1], dataset.anomalous, "anomalous")):
        from torchvision.utils import make_grid

        ax.axis("off")
        if len(part) == 0:
            ax.set_title(f"{name}: none")
            continue
        idx = torch.randperm(len(part), generator=gen)[:n]
        ax.imshow(to_numpy_image(make_grid(part.images[idx], nrow=n, padding=2, pad_value=1.0)), cmap="gray",
                  interpolation="nearest")
        ax.set_title(f"{name} ({len(part)} samples)", fontsize=10)
    fig.tight_layout()
    return fig


def factor_distribution(factor_table):
    """Bar plots of each ground-truth factor's values, normal vs anomalous (seaborn)."""
    import seaborn as sns

    plt = _plt()
    long = factor_table.melt(id_vars=["factor", "value"], value_vars=["normal", "anomalous"], var_name="set", value_name="count")
    factors = list(dict.fromkeys(long["factor"]))
    fig, axes = plt.subplots(1, len(factors), figsize=(3.2 * len(factors), 3.0), squeeze=False)
    for ax, factor in zip(axes[0], factors):
        sns.barplot(data=long[long["factor"] == factor], x="value", y="count", hue="set", ax=ax)
        ax.set_title(factor)
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=60)
        if ax is not axes[0][0]:
            ax.get_legend().remove() if ax.get_legend() else None
    fig.tight_layout()
    return fig


def loss_curve(history: Sequence[dict], key: str = "loss", x: str = "epoch", title: str = "training loss"):
    """Line plot of a training history (a list of dicts)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h[x] for h in history], [h[key] for h in history], marker="." if len(history) < 50 else None)
    ax.set_xlabel(x)
    ax.set_ylabel(key)
    ax.set_yscale("log" if all(h[key] > 0 for h in history) else "linear")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def score_histograms(scores_normal: torch.Tensor, scores_anomalous: torch.Tensor, title: str = "anomaly scores",
                     labels: tuple[str, str] = ("normal", "anomalous")):
    """Overlaid histograms of the scores of two sets."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    bins = np.linspace(0, 1, 41)
    ax.hist(np.asarray(scores_normal), bins=bins, alpha=0.6, label=f"{labels[0]} (n={len(scores_normal)})", density=True)
    ax.hist(np.asarray(scores_anomalous), bins=bins, alpha=0.6, label=f"{labels[1]} (n={len(scores_anomalous)})", density=True)
    ax.set_xlabel("score φ(x)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return path
