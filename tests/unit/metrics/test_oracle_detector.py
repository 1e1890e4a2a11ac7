import math

import pytest
import torch
from torch import nn

from cfx_lib.data.colored_mnist import COLOR_NAMES, ColoredMNISTSetup
from cfx_lib.metrics import FactorOracle, OracleDetector, contrast, normal_values_of


class FixedOracle(nn.Module):
    """An oracle stub that reads the same factor probabilities in every image."""

    def __init__(self, probs: dict[str, list[float]]) -> None:
        super().__init__()
        self.image_shape = (3, 28, 28)
        self.factor_sizes = {k: len(v) for k, v in probs.items()}
        self.logits = {k: torch.tensor(v, dtype=torch.float64).log() for k, v in probs.items()}
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return {k: v.to(x.dtype).expand(len(x), -1) for k, v in self.logits.items()}


def test_score_is_the_probability_that_no_factor_is_normal():
    digit = [0.7 / 9] * 10
    digit[1] = 0.3
    color = [0.8 / 5] * 6
    color[COLOR_NAMES.index("cyan")] = 0.2
    det = OracleDetector(FixedOracle({"digit": digit, "color": color}), {"digit": [1], "color": [COLOR_NAMES.index("cyan")]})
    x = torch.rand(3, 3, 28, 28, dtype=torch.float64)
    assert torch.allclose(det(x), torch.full((3,), 0.7 * 0.8, dtype=torch.float64))
    assert torch.allclose(det.score_logits(x), torch.full((3,), math.log(0.56 / 0.44), dtype=torch.float64))
    # only the digit counts: φ = P(digit is not 1)
    only_digit = OracleDetector(FixedOracle({"digit": digit, "color": color}), {"digit": [1]})
    assert torch.allclose(only_digit(x), torch.full((3,), 0.7, dtype=torch.float64))


def test_score_logits_do_not_saturate():
    # a clear anomaly (normal values at 1e-30) and a clear normal image (non-normal values at 1e-30)
    for p_normal, sign in ((1e-30, 1), (1 - 1e-12, -1)):
        det = OracleDetector(FixedOracle({"digit": [1 - p_normal, p_normal]}), {"digit": [1]})
        logit = det.score_logits(torch.rand(2, 3, 28, 28, dtype=torch.float64))
        assert torch.isfinite(logit).all() and (sign * logit > 20).all()


def test_gradients_reach_the_image_and_not_the_oracle():
    torch.manual_seed(0)
    oracle = FactorOracle((3, 28, 28), {"digit": 10, "color": 6})
    det = OracleDetector(oracle, normal_values_of(ColoredMNISTSetup()))
    det.train()
    assert not oracle.training  # its batch norms keep their statistics
    x = torch.rand(4, 3, 28, 28, requires_grad=True)
    det.score_logits(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in oracle.parameters())
    scores = det.score_images(torch.rand(5, 3, 28, 28))
    assert scores.shape == (5,) and ((scores > 0) & (scores < 1)).all()


def test_normal_values_and_bad_input():
    cyan = COLOR_NAMES.index("cyan")
    assert normal_values_of(ColoredMNISTSetup()) == {"digit": [1], "color": [cyan]}
    two_colours = normal_values_of(ColoredMNISTSetup(normal_digits=(), normal_colors=("cyan", "red")))
    assert set(two_colours) == {"color"} and sorted(two_colours["color"]) == sorted([cyan, COLOR_NAMES.index("red")])
    assert normal_values_of(ColoredMNISTSetup(normal_digits=(3,), normal_colors=())) == {"digit": [3]}
    with pytest.raises(ValueError, match="union over factors"):
        normal_values_of(object())
    oracle = FactorOracle((3, 28, 28), {"digit": 10})
    with pytest.raises(ValueError, match="not \\['color'\\]"):
        OracleDetector(oracle, {"color": [0]})
    with pytest.raises(ValueError, match=r"indices in \[0, 10\)"):
        OracleDetector(oracle, {"digit": [10]})
    with pytest.raises(ValueError, match="at least one factor"):
        OracleDetector(oracle, {})
    with pytest.raises(ValueError, match=r"\(B, 3, 28, 28\)"):
        OracleDetector(oracle, {"digit": [1]}).score_logits(torch.rand(2, 1, 28, 28))


def test_a_contrast_gate_makes_faint_images_anomalous_and_leaves_clear_ones_alone():
    # the oracle reads every image as a sure 1, so only the gate can make one anomalous
    oracle = FixedOracle({"digit": [1e-6, 1 - 1e-6]})
    clear = torch.zeros(2, 3, 28, 28, dtype=torch.float64)
    clear[:, :, 4:24, 12:16] = 1.0
    threshold = float(contrast(clear)[0]) / 2
    gated = OracleDetector(oracle, {"digit": [1]}, min_contrast=threshold)
    plain = OracleDetector(oracle, {"digit": [1]})
    assert gated.contrast_width == pytest.approx(threshold / 10)
    assert torch.allclose(gated(clear), plain(clear), atol=1e-4)  # twice the threshold: the gate is open
    faint = clear * 0.1
    assert (plain(faint) < 1e-5).all() and (gated(faint) > 0.999).all()
    at = clear * 0.5  # exactly at the threshold: half gated, φ = 1 − 0.5 · P(normal)
    assert torch.allclose(gated(at), torch.full((2,), 1 - 0.5 * (1 - 1e-6), dtype=torch.float64), atol=1e-6)
    logits = gated.score_logits(faint)
    assert torch.isfinite(logits).all() and (logits > 5).all()
    x = (clear * 0.5).requires_grad_(True)  # the gate passes gradients to the image: more contrast, more normal
    gated.score_logits(x).sum().backward()
    assert x.grad[:, :, 4:24, 12:16].sum() < 0
    with pytest.raises(ValueError, match="min_contrast"):
        OracleDetector(oracle, {"digit": [1]}, min_contrast=0.0)
    with pytest.raises(ValueError, match="contrast_width"):
        OracleDetector(oracle, {"digit": [1]}, contrast_width=0.1)
