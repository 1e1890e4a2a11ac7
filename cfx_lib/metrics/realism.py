"""Realism of counterfactuals: FID and FIDN (the paper's Table 2), computed by torchmetrics.

Inception weights cannot be downloaded offline, so the default features are those of the
project's factor oracle (a classifier trained on the dataset's own factors,
:class:`~cfx_lib.metrics.oracle.FactorOracle`): every table must say which features it used.
With Inception weights available (torch-fidelity's cache), pass ``features="inception"``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class OracleFeatures(nn.Module):
    """The penultimate features of a factor oracle as an FID feature extractor (inputs in [0, 1])."""

    def __init__(self, oracle) -> None:
        super().__init__()
        # a copy: torchmetrics casts its feature module to float64 in place
        self.oracle = copy.deepcopy(oracle).eval()
        self.num_features = int(oracle.heads[next(iter(oracle.heads))].in_features)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = next(self.oracle.parameters()).dtype  # torchmetrics may cast the module to float64
        return self.oracle.features(x.to(dtype) * 2 - 1).double()


def fid(real: torch.Tensor, fake: torch.Tensor, features: nn.Module | str, batch_size: int = 256) -> float:
    """Fréchet distance between the feature distributions of two image sets in [0, 1]
    (torchmetrics' :class:`FrechetInceptionDistance`).

    ``features``: an ``nn.Module`` mapping images to (N, d) features (e.g. :class:`OracleFeatures`),
    or ``"inception"`` for the standard Inception-v3 features (needs their weights; offline they
    cannot be downloaded and a RuntimeError says so).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} and {len(fake)}")
    if features == "inception":
        try:
            metric = FrechetInceptionDistance(feature=2048, normalize=True)
        except Exception as err:  # noqa: BLE001 - torchmetrics raises several kinds here
            raise RuntimeError("Inception-v3 FID features are unavailable (torch-fidelity and its weights are needed; "
                               f"offline they cannot be downloaded): {err}. Use the oracle features instead.") from err
        to3 = (lambda x: x.expand(-1, 3, -1, -1)) if real.shape[1] == 1 else (lambda x: x)
    else:
        metric = FrechetInceptionDistance(feature=features, normalize=True, input_img_size=tuple(real.shape[1:]))
        to3 = lambda x: x  # noqa: E731
    metric.set_dtype(torch.float64)
    for i in range(0, len(real), batch_size):
        metric.update(to3(real[i : i + batch_size]), real=True)
    for i in range(0, len(fake), batch_size):
        metric.update(to3(fake[i : i + batch_size]), real=False)
    return float(metric.compute())


def fidn(fid_counterfactuals: float, fid_anomalies: float) -> float:
    """FIDN = FID(counterfactuals, normal) / FID(anomalies, normal) × 100: 100 means as realistic
    (relative to normal data) as the anomalies themselves; lower is closer to normal data."""
    if fid_anomalies <= 0:
        raise ValueError(f"FID(anomalies, normal) must be positive to normalise by it, got {fid_anomalies}")
    return 100.0 * fid_counterfactuals / fid_anomalies
