"""Plotting helpers (matplotlib / seaborn); every function returns the figure."""

from .counterfactuals import cf_loss_curves, concept_routes, explanation_grid, metric_curve, traversal_grid
from .plots import (
    factor_distribution, image_grid, loss_curve, save_figure, sample_grid, score_histograms, to_numpy_image,
)

__all__ = ["cf_loss_curves", "concept_routes", "explanation_grid", "metric_curve", "traversal_grid", "factor_distribution",
           "image_grid", "loss_curve", "save_figure", "sample_grid", "score_histograms", "to_numpy_image"]
