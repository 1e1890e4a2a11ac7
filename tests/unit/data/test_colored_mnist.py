import pytest
import torch

from cfx_lib.data import COLOR_NAMES, PALETTE, load_dataset
from cfx_lib.data.colored_mnist import colorize


def test_colorize_puts_the_digit_in_the_palette_colour():
    gray = torch.rand(2, 28, 28)
    out = colorize(gray, torch.tensor([COLOR_NAMES.index("red"), COLOR_NAMES.index("cyan")]))
    assert out.shape == (2, 3, 28, 28)
    assert torch.allclose(out[0, 0], gray[0]) and out[0, 1:].abs().max() == 0
    assert out[1, 0].abs().max() == 0 and torch.allclose(out[1, 1], gray[1]) and torch.allclose(out[1, 2], gray[1])


def test_default_normal_set_follows_the_paper(tmp_path):
    data = load_dataset("colored_mnist", "test", tmp_path)
    digit, color = data.factors["digit"], data.factors["color"]
    normal = (digit == 1) | (color == COLOR_NAMES.index("cyan"))
    assert torch.equal(data.is_anomaly, ~normal)
    assert set(color.unique().tolist()) == set(range(len(PALETTE)))
    assert len(PALETTE) >= 6 and {"red", "green", "blue", "yellow", "cyan", "magenta"} <= set(PALETTE)


def test_deterministic_given_a_seed(tmp_path):
    a = load_dataset("colored_mnist", "train", tmp_path, seed=3)
    b = load_dataset("colored_mnist", "train", tmp_path, seed=3)
    c = load_dataset("colored_mnist", "train", tmp_path, seed=4)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.factors["color"], c.factors["color"])


def test_custom_normal_set(tmp_path):
    data = load_dataset("colored_mnist", "test", tmp_path, normal_digits=[2, 3], normal_colors=[])
    assert torch.equal(data.is_anomaly, ~torch.isin(data.factors["digit"], torch.tensor([2, 3])))


@pytest.mark.parametrize("setup, match", [
    ({"normal_colors": ["purple"]}, "colour 'purple'"),
    ({"normal_digits": [10]}, "digit 10"),
    ({"normal_digits": [], "normal_colors": []}, "at least one"),
])
def test_bad_normal_sets_are_refused(tmp_path, setup, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("colored_mnist", "test", tmp_path, **setup)
