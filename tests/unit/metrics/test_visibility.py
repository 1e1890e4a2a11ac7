import pytest
import torch

from cfx_lib.counterfactual import Explanation
from cfx_lib.data.base import ADDataset
from cfx_lib.data.colored_mnist import COLOR_NAMES, PALETTE, ColoredMNISTSetup
from cfx_lib.metrics import FAINT_QUANTILE, contrast, counterfactual_metrics, faint_mask, faint_threshold, route_table



class OnesOracle:
    """Reads every image as a confident red 1: every counterfactual is oracle-normal."""

    def predict(self, images, min_confidence=0.0):
        return {"digit": torch.ones(len(images), dtype=torch.long), "color": torch.zeros(len(images), dtype=torch.long)}


def strokes(n: int, color: str = "cyan", seed: int = 0, strength: float = 1.0) -> torch.Tensor:
    """Black images with one vertical bar of a palette colour each, of random width and place."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 3, 28, 28)
    rgb = torch.tensor(PALETTE[color])[:, None, None] * strength
    for i in range(n):
        left, width = torch.randint(4, 18, (), generator=gen).item(), torch.randint(2, 7, (), generator=gen).item()
        images[i, :, 4:24, left : left + width] = rgb
    return images


def test_contrast_is_zero_for_uniform_images_of_any_colour_and_grows_with_the_stroke():
    uniform = torch.stack([torch.tensor(PALETTE[c])[:, None, None].expand(3, 28, 28) for c in COLOR_NAMES])
    assert torch.allclose(contrast(uniform), torch.zeros(len(COLOR_NAMES)))
    bar = strokes(1)
    assert contrast(bar * 0.1).item() == pytest.approx(0.1 * contrast(bar).item(), rel=1e-5)
    # the maximum over channels: a red bar and a cyan bar of the same shape have the same contrast
    assert contrast(strokes(1, "red")).item() == pytest.approx(contrast(strokes(1, "cyan")).item())
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        contrast(torch.zeros(3, 28, 28))


def test_faint_threshold_flags_about_its_quantile_of_real_images_and_every_faded_one():
    real = strokes(400, seed=1)
    threshold = faint_threshold(real)
    share = faint_mask(strokes(400, seed=2), threshold).float().mean().item()
    assert share <= 4 * FAINT_QUANTILE + 0.02  # held-out real images: about the quantile, not more
    assert faint_mask(real * 0.2, threshold).all()  # faded to a fifth: every one is faint
    assert faint_mask(torch.zeros(5, 3, 28, 28), threshold).all()
    with pytest.raises(ValueError, match="quantile"):
        faint_threshold(real, quantile=1.0)
    with pytest.raises(ValueError, match="two real images"):
        faint_threshold(real[:1])


def test_metrics_and_routes_separate_faint_oracle_normal_counterfactuals():
    # an oracle that reads every image as a 1, so every counterfactual is oracle-normal; concept 2's
    # are faded to near emptiness and must not count as visible
    x = strokes(4, "red", seed=3)
    cfs = torch.stack([strokes(4, "cyan", seed=4), strokes(4, "cyan", seed=4, strength=0.05)], 1)
    threshold = faint_threshold(strokes(200, seed=5))
    ex = Explanation(x, torch.ones(4), cfs, torch.full((4, 2), 0.1))
    m = counterfactual_metrics(ex, torch.full((4,), 0.1), OnesOracle(), ColoredMNISTSetup(), faint_below=threshold)
    assert m["oracle_normal_k1"] == 1.0 and m["oracle_normal_k2"] == 1.0
    assert m["faint_share_k1"] == 0.0 and m["faint_share_k2"] == 1.0 and m["faint_share"] == 0.5
    assert m["oracle_normal_visible_k1"] == 1.0 and m["oracle_normal_visible_k2"] == 0.0
    assert m["oracle_normal_visible"] == 0.5
    assert "faint_share" not in counterfactual_metrics(ex, torch.full((4,), 0.1), OnesOracle(), ColoredMNISTSetup())
    red = torch.full((4,), COLOR_NAMES.index("red"))
    anomalies = ADDataset("toy", "test", x, torch.full((4,), 7), torch.ones(4, dtype=torch.bool),
                          [str(d) for d in range(10)], {"digit": torch.full((4,), 7), "color": red},
                          {"digit": [str(d) for d in range(10)], "color": list(COLOR_NAMES)})
    rows = route_table(OnesOracle(), ColoredMNISTSetup(), anomalies, cfs, faint_below=threshold)
    faint = {r["concept"]: r["faint"] for r in rows if r["grouped by"] == "color"}
    assert faint == {1: 0.0, 2: 1.0}
    assert "faint" not in route_table(OnesOracle(), ColoredMNISTSetup(), anomalies, cfs)[0]
