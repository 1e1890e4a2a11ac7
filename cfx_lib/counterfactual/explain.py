"""Using a trained generator: counterfactual explanations and α-traversals.

- :func:`explain` returns the K counterfactuals of each image at α = 0 with their scores.
- :func:`traverse` returns the path of one concept through target scores α.
- :class:`Explainer` bundles a detector and a generator (saved as ``explainer.pt``);
  :func:`load_explainer` loads it so that new images are explained with one call.

A counterfactual whose score stays above the detector's threshold is flagged
(``Explanation.is_normal`` False) instead of being presented as normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..detectors.detector import BaseDetector, Detector
from ..io import load_torch, save_torch
from .config import CounterfactualConfig
from .models import ConceptClassifier, Generator, build_concept_classifier, build_generator

CHECKPOINT_FORMAT = "cfx-explainer/1"
#: the score above which an image counts as anomalous (shared by all cfx detectors)
DEFAULT_THRESHOLD = 0.5


def as_batch(images: Any, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """Turn user input into a float batch (B, C, H, W) in [0, 1].

    Accepts a tensor (C, H, W) or (B, C, H, W) with values in [0, 1], a uint8 array/tensor
    (values 0..255, channels first or last), a PIL image, or a list of these. The size and the
    number of channels must already match ``image_shape``; nothing is resized silently.
    """
    c, h, w = image_shape
    if isinstance(images, (list, tuple)):
        return torch.cat([as_batch(im, image_shape) for im in images]) if images else torch.empty(0, c, h, w)
    try:
        from PIL import Image

        if isinstance(images, Image.Image):
            images = np.asarray(images.convert("RGB" if c == 3 else "L"))
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pass
    x = torch.from_numpy(np.array(images)) if not isinstance(images, torch.Tensor) else images
    uint8 = x.dtype == torch.uint8
    x = x.float() / 255.0 if uint8 else x.float()
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None] if x.shape[0] == c else x.permute(2, 0, 1)[None] if x.shape[-1] == c else x[None]
    elif x.ndim == 4 and x.shape[1] != c and x.shape[-1] == c:
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise ValueError(f"expected images with {c} channel(s) of size {h}×{w} (a tensor (B, {c}, {h}, {w}) in [0, 1], "
                         f"uint8 arrays or PIL images), got shape {tuple(np.shape(images))}; resize them first")
    if not uint8 and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"float images must lie in [0, 1], got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return x.contiguous()


@dataclass
class Explanation:
    """The K counterfactuals of N images.

    Attributes:
        images: the inputs (N, C, H, W).
        scores: φ of the inputs (N,).
        counterfactuals: (N, K, C, H, W), concept k in ``[:, k]``.
        cf_scores: φ of the counterfactuals (N, K).
        alpha: the target score they were generated for.
        threshold: scores above it count as anomalous.
    """

    images: torch.Tensor
    scores: torch.Tensor
    counterfactuals: torch.Tensor
    cf_scores: torch.Tensor
    alpha: float = 0.0
    threshold: float = DEFAULT_THRESHOLD

    @property
    def is_normal(self) -> torch.Tensor:
        """(N, K) bool: the detector finds the counterfactual normal (score ≤ threshold). Where
        False the counterfactual did not reach normality and must not be read as an explanation."""
        return self.cf_scores <= self.threshold

    @property
    def n_concepts(self) -> int:
        return self.counterfactuals.shape[1]

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> str:
        """One line per image: its score and each concept's counterfactual score, flagged when
        the counterfactual stays anomalous."""
        lines = []
        for i in range(len(self)):
            parts = [f"concept {k + 1}: {float(self.cf_scores[i, k]):.3f}"
                     + ("" if bool(self.is_normal[i, k]) else " (still anomalous: no explanation)")
                     for k in range(self.n_concepts)]
            lines.append(f"image {i}: score {float(self.scores[i]):.3f} → " + ", ".join(parts))
        return "\n".join(lines)


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def generate(generator: Generator, images: torch.Tensor, alpha: float | torch.Tensor, k: int | torch.Tensor,
             batch_size: int = 256) -> torch.Tensor:
    """G(x, α, k) for many images, in eval mode and batches; returns a CPU tensor."""
    was = generator.training
    generator.eval()
    device = _device(generator)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device)
        a = alpha[i : i + batch_size].to(device) if torch.is_tensor(alpha) and alpha.ndim else torch.full((len(x),), float(alpha), device=device)
        kk = k[i : i + batch_size].to(device) if torch.is_tensor(k) and k.ndim else torch.full((len(x),), int(k), device=device, dtype=torch.long)
        out.append(generator(x, a, kk).cpu())
    generator.train(was)
    return torch.cat(out) if out else images.new_empty((0, *images.shape[1:]))


def explain(detector: BaseDetector, generator: Generator, images: torch.Tensor, alpha: float = 0.0,
            batch_size: int = 256, threshold: float = DEFAULT_THRESHOLD) -> Explanation:
    """The K counterfactuals of each image at target score ``alpha`` (default 0: normal) with
    the detector's scores, in batches of ``batch_size``.

    Args:
        detector: φ, images in [0, 1] → scores in [0, 1].
        generator: a trained :class:`Generator` for the same image shape.
        images: (N, C, H, W) in [0, 1] (see :func:`as_batch` for other inputs).
        alpha: the target score.
        threshold: counterfactuals scored above it are flagged as still anomalous.
    """
    x = as_batch(images, generator.image_shape)
    if tuple(detector.image_shape) != tuple(generator.image_shape):
        raise ValueError(f"detector is for {detector.image_shape}, generator for {generator.image_shape}")
    cfs = torch.stack([generate(generator, x, alpha, k, batch_size) for k in range(generator.n_concepts)], dim=1)
    device = _device(generator)
    scores = detector.score_images(x, batch_size, device)
    cf_scores = detector.score_images(cfs.flatten(0, 1), batch_size, device).reshape(len(x), generator.n_concepts)
    return Explanation(x, scores, cfs, cf_scores, float(alpha), threshold)


@dataclass
class Traversal:
    """One concept's path through target scores: ``images`` (A, N, C, H, W) for the A alphas,
    ``scores`` (A, N)."""

    alphas: list[float]
    concept: int
    images: torch.Tensor
    scores: torch.Tensor


def traverse(detector: BaseDetector, generator: Generator, images: torch.Tensor, concept: int,
             alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), batch_size: int = 256) -> Traversal:
    """G(x, α, concept) for each α in ``alphas``, with the detector's scores."""
    if not 0 <= concept < generator.n_concepts:
        raise ValueError(f"concept must be in 0..{generator.n_concepts - 1}, got {concept}")
    alphas = [float(a) for a in alphas]
    if any(not 0 <= a <= 1 for a in alphas):
        raise ValueError(f"alphas must lie in [0, 1], got {alphas}")
    x = as_batch(images, generator.image_shape)
    path = torch.stack([generate(generator, x, a, concept, batch_size) for a in alphas])
    device = _device(generator)
    scores = detector.score_images(path.flatten(0, 1), batch_size, device).reshape(len(alphas), len(x))
    return Traversal(alphas, concept, path, scores)


class Explainer:
    """A detector and its trained counterfactual generator, ready to explain images."""

    def __init__(self, detector: Detector, generator: Generator, config: CounterfactualConfig,
                 threshold: float = DEFAULT_THRESHOLD, meta: dict[str, Any] | None = None,
                 concept_classifier: ConceptClassifier | None = None) -> None:
        if tuple(detector.image_shape) != tuple(generator.image_shape):
            raise ValueError(f"detector is for {detector.image_shape}, generator for {generator.image_shape}")
        self.detector = detector.eval()
        self.generator = generator.eval()
        self.config = config
        self.threshold = float(threshold)
        self.meta = dict(meta or {})
        #: R, kept for evaluation (its accuracy on held-out pairs); None when not saved
        self.concept_classifier = concept_classifier.eval() if concept_classifier is not None else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.generator.image_shape)

    @property
    def n_concepts(self) -> int:
        return self.generator.n_concepts

    def to(self, device: str | torch.device) -> "Explainer":
        for module in (self.detector, self.generator, self.concept_classifier):
            if module is not None:
                module.to(device)
        return self

    def explain(self, images: Any, alpha: float = 0.0, batch_size: int = 256) -> Explanation:
        """See :func:`explain`; ``images`` may be tensors, uint8 arrays or PIL images."""
        return explain(self.detector, self.generator, images, alpha, batch_size, self.threshold)

    def traverse(self, images: Any, concept: int, alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                 batch_size: int = 256) -> Traversal:
        """See :func:`traverse`."""
        return traverse(self.detector, self.generator, images, concept, alphas, batch_size)

    def score(self, images: Any) -> torch.Tensor:
        """The detector's scores of ``images``."""
        return self.detector.score_images(as_batch(images, self.image_shape), device=_device(self.generator))

    def save(self, path: str | Path) -> None:
        """Write detector, generator, configuration and threshold into one checkpoint (atomically)."""
        save_torch({
            "format": CHECKPOINT_FORMAT,
            "detector": self.detector.checkpoint(),
            "generator": {k: v.detach().cpu() for k, v in self.generator.state_dict().items()},
            "config": self.config.to_dict(),
            "image_shape": list(self.image_shape),
            "threshold": self.threshold,
            "meta": self.meta,
            "concept_classifier": None if self.concept_classifier is None else
            {k: v.detach().cpu() for k, v in self.concept_classifier.state_dict().items()},
        }, path)


def load_explainer(path: str | Path, device: str | torch.device = "cpu", threshold: float | None = None) -> Explainer:
    """Load an ``explainer.pt`` written by :meth:`Explainer.save` (``weights_only=True``).

    ``threshold`` overrides the saved one (the score above which a counterfactual counts as
    still anomalous).
    """
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a cfx explainer checkpoint (format {CHECKPOINT_FORMAT!r}); "
                         "notebook 03 writes one as explainer.pt")
    detector = Detector.from_checkpoint(ckpt["detector"])
    cfg = CounterfactualConfig.from_dict(ckpt["config"])
    shape = tuple(ckpt["image_shape"])
    generator = build_generator(cfg, shape)
    generator.load_state_dict(ckpt["generator"])
    concept_classifier = None
    if ckpt.get("concept_classifier") is not None:
        concept_classifier = build_concept_classifier(cfg, shape)
        concept_classifier.load_state_dict(ckpt["concept_classifier"])
    explainer = Explainer(detector, generator, cfg, ckpt["threshold"] if threshold is None else threshold, ckpt["meta"],
                          concept_classifier)
    return explainer.to(device)
