import pytest
import torch

from cfx_lib.data.colored_mnist import COLOR_NAMES, PALETTE
from cfx_lib.detectors import as_detector
from cfx_lib.metrics import route_reading, single_factor_routes
from cfx_lib.metrics.reading import OTHER

NORMAL = {"digit": [1], "color": [COLOR_NAMES.index("cyan")]}


class CornerOracle:
    """Reads the digit from the top-left pixel's brightness (digit d at d / 9) and the colour from the
    pixel at (5, 5); a digit read from a pixel between two steps is unsure (probability 0.5)."""

    def predict(self, images, min_confidence=0.0):
        level = images[:, :, 0, 0].amax(1) * 9
        digit = level.round().long()
        digit[((level - level.round()).abs() > 0.25) & (min_confidence > 0.5)] = -1
        palette = torch.tensor(list(PALETTE.values()))
        color = (images[:, :, 5, 5][:, None, :] - palette[None]).abs().sum(-1).argmin(1)
        return {"digit": digit, "color": color}


def drawn(color: str, digit: int | float) -> torch.Tensor:
    image = torch.tensor(PALETTE[color])[:, None, None].expand(3, 28, 28).clone()
    image[:, 0, 0] = digit / 9
    return image


def test_single_factor_routes_name_the_one_factor_changed_to_a_normal_value():
    images = torch.stack([drawn("red", 7)] * 6)
    counterfactuals = torch.stack([
        drawn("cyan", 7),    # recoloured to the normal colour, digit kept
        drawn("red", 1),     # redrawn as the normal digit, colour kept
        drawn("cyan", 1),    # both: normal, but not one factor
        drawn("green", 7),   # one factor, to a colour that is not normal
        drawn("red", 7),     # unchanged
        drawn("red", 1.5),   # the digit unreadable at the oracle's confidence
    ])
    oracle = CornerOracle()
    assert single_factor_routes(oracle, images, counterfactuals, NORMAL) == ["color", "digit", OTHER, OTHER, OTHER, OTHER]
    # without a confidence floor the half-step reads as the nearest digit (1.5 rounds to 2): not normal either
    assert single_factor_routes(oracle, images, counterfactuals, NORMAL, min_confidence=0.0)[5] == OTHER
    assert single_factor_routes(oracle, images, counterfactuals, {"color": NORMAL["color"]})[1] == OTHER
    with pytest.raises(ValueError, match="does not read"):
        single_factor_routes(oracle, images, counterfactuals, {"shape": [0]})
    with pytest.raises(ValueError, match="same shape"):
        single_factor_routes(oracle, images, counterfactuals[:2], NORMAL)


def test_route_reading_scores_each_route_as_is_through_the_loss_reading_and_along_the_way():
    images = torch.stack([drawn("red", 7)] * 4)
    counterfactuals = torch.stack([drawn("cyan", 7), drawn("cyan", 7), drawn("red", 1), drawn("red", 1)])
    routes = ["color", "color", "digit", "digit"]
    detectors = {"red": as_detector(lambda x: x[:, 0].mean(dim=(1, 2)).clamp(0, 1), (3, 28, 28)),
                 "never": as_detector(lambda x: torch.zeros(len(x)), (3, 28, 28))}
    rows = route_reading(detectors, images, counterfactuals, routes, shift=0, noise=0.0, blend=(0.25, 0.75))
    assert [(r["route"], r["detector"], r["n"]) for r in rows] == [
        ("color", "red", 2), ("color", "never", 2), ("digit", "red", 2), ("digit", "never", 2)]
    by = {(r["route"], r["detector"]): r for r in rows}
    # the red detector refuses red 1s and accepts cyan 7s; the blends cross its threshold between
    assert by["digit", "red"]["refused"] == 1.0 and by["color", "red"]["refused"] == 0.0
    assert by["color", "red"]["refused_at_0.25"] == 1.0 and by["color", "red"]["refused_at_0.75"] == 0.0
    assert by["digit", "red"]["refused_at_0.75"] == 1.0
    assert by["color", "red"]["median_score"] < 0.01  # only the corner pixel that carries the digit is red
    assert all(r["refused"] == r["refused_read"] and r["median_score"] == r["median_score_read"] for r in rows)
    assert all(r["refused"] == r["refused_at_0.25"] == 0.0 for r in rows if r["detector"] == "never")
    # moved by up to 4 pixels (zero padding) a solid red image loses red at its border: the loss's reading
    moved = route_reading(detectors, images, counterfactuals, routes, shift=4, noise=0.0, seed=3)
    assert all(r["median_score_read"] <= r["median_score"] for r in moved)
    assert any(r["median_score_read"] < r["median_score"] for r in moved if (r["route"], r["detector"]) == ("digit", "red"))
    # turned by up to 30° about the centre, the solid red image loses red at its corners too
    turned = route_reading(detectors, images, counterfactuals, routes, shift=0, noise=0.0, seed=3, rotate=30)
    red_digits = [r for r in turned if (r["route"], r["detector"]) == ("digit", "red")]
    assert any(r["median_score_read"] < r["median_score"] for r in red_digits)
    with pytest.raises(ValueError, match="one route per image"):
        route_reading(detectors, images, counterfactuals, routes[:3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        route_reading(detectors, images, counterfactuals, routes, blend=(1.5,))
