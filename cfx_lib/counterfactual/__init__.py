"""Counterfactual explanations of anomaly detectors: the generator G(x, α, k), discriminator D,
concept classifier R, their trainer and the user-facing :func:`explain` / :func:`traverse` /
:func:`load_explainer`."""

from .batchnorm import InBatchGenerator, running_stats_frozen, standing_statistics
from .config import CounterfactualConfig, LossWeights
from .explain import (
    DEFAULT_THRESHOLD, Explainer, Explanation, Traversal, as_batch, explain, generate, load_explainer, traverse,
)
from .models import ConceptClassifier, Discriminator, Generator
from .trainer import (
    CounterfactualModels, CounterfactualTrainResult, calibrate_score_eps, counterfactual_grid, load_training_checkpoint,
    train_counterfactual, warm_start,
)

__all__ = [
    "CounterfactualConfig", "LossWeights", "DEFAULT_THRESHOLD", "Explainer", "Explanation", "Traversal", "as_batch",
    "explain", "generate", "load_explainer", "traverse", "ConceptClassifier", "Discriminator", "Generator",
    "CounterfactualModels", "CounterfactualTrainResult", "calibrate_score_eps", "counterfactual_grid",
    "load_training_checkpoint", "train_counterfactual", "warm_start", "InBatchGenerator", "running_stats_frozen",
    "standing_statistics",
]
