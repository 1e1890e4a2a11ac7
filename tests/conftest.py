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
