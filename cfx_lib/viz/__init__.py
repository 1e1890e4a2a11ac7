"""Plotting helpers (matplotlib / seaborn); every function returns the figure."""

from .plots import (
    factor_distribution, image_grid, loss_curve, save_figure, sample_grid, score_histograms, to_numpy_image,
)

__all__ = ["factor_distribution", "image_grid", "loss_curve", "save_figure", "sample_grid", "score_histograms",
           "to_numpy_image"]
