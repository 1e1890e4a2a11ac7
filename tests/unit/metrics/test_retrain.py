import pytest
import torch

from cfx_lib.config import DetectorConfig
from cfx_lib.metrics import retrain_auroc


def _data():
    gen = torch.Generator().manual_seed(0)
    dark = lambda n: torch.rand(n, 1, 28, 28, generator=gen) * 0.3  # noqa: E731
    bright = lambda n: 0.7 + torch.rand(n, 1, 28, 28, generator=gen) * 0.3  # noqa: E731
    return dark, bright


def test_adding_normal_like_images_keeps_auroc_adding_anomalies_breaks_it():
    dark, bright = _data()
    cfg = DetectorConfig(kind="dsvdd", epochs=3, milestones=(), batch_size=32, lr=1e-3)
    normal, test_normal, test_anomalous = dark(128), dark(64), bright(64)
    good = retrain_auroc(cfg, normal, dark(128), None, test_normal, test_anomalous)
    bad = retrain_auroc(cfg, normal, bright(512), None, test_normal, test_anomalous)
    assert good.n_added == 128 and good.auroc > 0.9
    assert bad.auroc < good.auroc - 0.2  # anomalies taught as normal: φ no longer separates them


def test_retrain_caps_and_checks_the_added_images():
    dark, _ = _data()
    cfg = DetectorConfig(kind="dsvdd", epochs=1, milestones=(), batch_size=32)
    # (M, K, C, H, W) counterfactuals are flattened, then capped at max_added
    result = retrain_auroc(cfg, dark(64), dark(40).view(20, 2, 1, 28, 28), None, dark(16), dark(16) + 0.5, max_added=10)
    assert result.n_added == 10
    with pytest.raises(ValueError, match="shape"):
        retrain_auroc(cfg, dark(64), torch.rand(4, 3, 28, 28), None, dark(8), dark(8))
