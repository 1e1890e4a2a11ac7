import random
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST" / "raw"


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same seeds (random, numpy, torch) with deterministic kernels."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an idx file (the MNIST format)."""
    dims = array.shape
    magic = (0x08 << 8) | len(dims)
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_toy_explainer(results_root: Path, profile: str = "smoke", run: str = "colored_mnist-default-bce-s0",
                        normal: dict | None = None) -> Path:
    """An ``explainer.pt`` for 3×28×28 colored_mnist images where notebook 03 would write it,
    with an untrained detector and a generator whose weights are jittered so that its output
    depends on α and k (an untrained generator starts as nearly the same map for every
    condition). For tests of what reads explainers (notebook 07's explorer), not of quality."""
    from cfx_lib.counterfactual import CounterfactualConfig, Explainer
    from cfx_lib.counterfactual.models import build_generator
    from cfx_lib.detectors import Detector

    torch.manual_seed(0)
    cfg = CounterfactualConfig(g_widths=(8, 16), g_res_blocks=1, d_widths=(8, 16, 16), r_widths=(8, 16), cond_dim=16)
    gen = build_generator(cfg, (3, 28, 28))
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(0.3 * torch.randn_like(p))
    path = results_root / profile / "runs" / run / "03_counterfactual" / "explainer.pt"
    meta = {"dataset": "colored_mnist", "normal": normal or {}, "detector": "bce", "seed": 0, "profile": profile}
    path.parent.mkdir(parents=True, exist_ok=True)
    Explainer(Detector("bce", (3, 28, 28)), gen, cfg, meta=meta).save(path)
    return path


@pytest.fixture
def toy_explainer():
    """:func:`write_toy_explainer`, for tests that need an ``explainer.pt`` in a results tree."""
    return write_toy_explainer
