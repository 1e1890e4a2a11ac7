"""An anomaly detector built from an oracle of the ground-truth factors: a diagnostic, not a detector
of the study.

The study's detectors learn "normal" from data and bring their own preferences: on
``colored_mnist`` the BCE-OE detector, read through the score loss's shifts, accepts "turn it cyan"
robustly and "turn it into a 1" hardly at all (docs/experiments.md, session 18).
:class:`OracleDetector` scores an image by what a factor oracle reads in it: the probability that
none of its factors takes a normal value. Explained by the study's generator, it separates two
causes of a missing concept: if the paper's losses give one concept per factor for a detector that
treats every route to normal alike, the study's detectors are what stands in the way; if they do
not, the objective is.

It puts an oracle *into training*, which the study's figures never do, so judge its counterfactuals
with another oracle (trained with another seed) and never report them as explanations of a detector.

An oracle reads a nearly empty image confidently as some digit, often a "1", so a generator can
reach "normal" under such a detector by fading or erasing the anomaly (docs/experiments.md,
"Session 22": a quarter of its counterfactuals). With ``min_contrast`` (e.g.
:func:`~.visibility.faint_threshold` of real training images) the detector gates that route: an
image with less contrast counts as anomalous, as a detector of real data would have it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from ..detectors.detector import BaseDetector
from .oracle import FactorOracle
from .visibility import contrast

#: the name the benchmark scripts take for this detector (``--detector oracle``)
ORACLE_DETECTOR = "oracle"


class OracleDetector(BaseDetector):
    """φ(x) = P(no factor of x takes a normal value) = Π_f (1 − P_f(normal values of f)), read by a
    :class:`~cfx_lib.metrics.FactorOracle`, for normal sets that are a union over factors ("digit 1
    in any colour, or any digit in cyan"). Differentiable; :meth:`score_logits` is computed in log
    space, so it does not saturate for clear anomalies or clear normal images.

    Args:
        oracle: the factor oracle (its weights are frozen here).
        normal_values: factor name → the value indices that make an image normal (see
            :func:`normal_values_of`); at least one factor, each one the oracle reads.
        min_contrast: None (no gate), or a :func:`~.visibility.contrast` below which an image counts
            as anomalous whatever the oracle reads: P(normal) is multiplied by the soft gate
            σ((contrast(x) − min_contrast) / contrast_width).
        contrast_width: the gate's width, ``min_contrast`` / 10 by default.
    """

    def __init__(self, oracle: FactorOracle, normal_values: Mapping[str, Sequence[int]],
                 min_contrast: float | None = None, contrast_width: float | None = None) -> None:
        super().__init__(oracle.image_shape)
        if min_contrast is not None and not min_contrast > 0:
            raise ValueError(f"min_contrast must be positive (or None for no gate), got {min_contrast}")
        if contrast_width is not None and (min_contrast is None or not contrast_width > 0):
            raise ValueError("contrast_width must be positive and needs a min_contrast")
        self.min_contrast = self.contrast_width = None
        if min_contrast is not None:
            self.min_contrast = float(min_contrast)
            self.contrast_width = float(contrast_width) if contrast_width is not None else self.min_contrast / 10
        if not normal_values:
            raise ValueError("an oracle detector needs at least one factor with normal values")
        unknown = sorted(set(normal_values) - set(oracle.factor_sizes))
        if unknown:
            raise ValueError(f"the oracle reads the factors {sorted(oracle.factor_sizes)}, not {unknown}")
        self.normal_values: dict[str, list[int]] = {}
        for name, values in normal_values.items():
            values = sorted({int(v) for v in values})
            size = oracle.factor_sizes[name]
            if not values or values[0] < 0 or values[-1] >= size:
                raise ValueError(f"normal values of factor {name!r} must be indices in [0, {size}), got {values}")
            self.normal_values[name] = values
        self.oracle = oracle.eval()
        for p in self.oracle.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> "OracleDetector":
        super().train(mode)
        self.oracle.eval()  # its batch norms keep their statistics, whatever a caller sets
        return self

    def _log_probs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log φ(x), log(1 − φ(x))), each (B,), both in log space: P(normal) accumulates factor by
        factor as r ← r + (1 − r)·q_f, so neither is taken as 1 minus a number near 1."""
        logits = self.oracle(x)
        log_anomalous = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        log_normal = torch.full_like(log_anomalous, -torch.inf)
        for name, values in self.normal_values.items():
            out = logits[name].to(x.dtype)
            normal = torch.zeros(out.shape[1], dtype=torch.bool, device=out.device)
            normal[values] = True
            log_all = torch.logsumexp(out, dim=1)
            log_q = torch.logsumexp(out[:, normal], dim=1) - log_all
            log_not_q = (torch.logsumexp(out[:, ~normal], dim=1) - log_all if (~normal).any()
                         else torch.full_like(log_all, -torch.inf))  # every value normal: every image is
            log_normal = torch.logaddexp(log_normal, log_anomalous + log_q)
            log_anomalous = log_anomalous + log_not_q
        if self.min_contrast is not None:  # P(normal) · g and P(anomalous) + (1 − g) · P(normal), in log space
            z = (contrast(x).to(x.dtype) - self.min_contrast) / self.contrast_width
            log_anomalous = torch.logaddexp(log_anomalous, torch.nn.functional.logsigmoid(-z) + log_normal)
            log_normal = log_normal + torch.nn.functional.logsigmoid(z)
        return log_anomalous, log_normal

    def log_anomalous(self, x: torch.Tensor) -> torch.Tensor:
        """log φ(x), (B,): the sum over factors of log P_f(a value that is not normal)."""
        return self._log_probs(x)[0]

    def score_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        log_anomalous, log_normal = self._log_probs(x)
        return log_anomalous - log_normal

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_anomalous(x).exp()


def normal_values_of(setup: Any) -> dict[str, list[int]]:
    """The ``normal_values`` of :class:`OracleDetector` for a dataset setup whose normal set is a
    union over factors (``colored_mnist``: ``normal_digits`` and ``normal_colors``)."""
    from ..data.colored_mnist import COLOR_NAMES, ColoredMNISTSetup

    if isinstance(setup, ColoredMNISTSetup):
        values = {"digit": list(setup.normal_digits), "color": [COLOR_NAMES.index(c) for c in setup.normal_colors]}
        return {name: v for name, v in values.items() if v}
    raise ValueError(f"an oracle detector is built for colored_mnist's normal sets (a union over factors), "
                     f"not for {type(setup).__name__}")
