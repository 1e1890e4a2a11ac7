import pytest
import torch
from torch import nn

from cfx_lib.metrics import (
    concept_overlap, concept_purity, edit_sizes, factor_changes, factor_changes_by, factor_changes_per_value, fid, fidn,
    minimality,
)


class MeanColour(nn.Module):
    """Features: the mean of each channel and of its square (enough to tell colours apart)."""

    num_features = 6

    def forward(self, x):
        return torch.cat([x.mean(dim=(2, 3)), x.pow(2).mean(dim=(2, 3))], 1).double()


def test_fid_zero_for_identical_sets_and_large_for_different_ones():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(200, 3, 8, 8, generator=gen)
    assert fid(a, a, MeanColour()) == pytest.approx(0.0, abs=1e-6)
    shifted = (a * 0.5).clamp(0, 1)
    assert fid(a, shifted, MeanColour()) > 0.01
    with pytest.raises(ValueError, match="at least 2 images"):
        fid(a[:1], a, MeanColour())


def test_fidn():
    assert fidn(5.0, 10.0) == 50.0
    with pytest.raises(ValueError):
        fidn(1.0, 0.0)


def test_purity_of_a_colour_only_concept_is_one():
    n = 10
    # concept 1 changes only the colour of every image; concept 2 changes digit and colour of half
    changes = [
        {"digit": torch.zeros(n, dtype=torch.bool), "color": torch.ones(n, dtype=torch.bool)},
        {"digit": torch.ones(n, dtype=torch.bool), "color": torch.arange(n) < 5},
    ]
    purity, dominant = concept_purity(changes)
    assert purity == [1.0, 0.5] and dominant == ["color", "digit"]
    rows = factor_changes(changes)
    assert rows[0]["changes color"] == 1.0 and rows[0]["one factor"] == 1.0
    assert rows[1]["one factor"] == 0.5 and rows[1]["no factor"] == 0.0


def test_factor_changes_by_group_shows_a_route_per_anomaly_colour():
    # one concept that turns red anomalies into another digit (colour kept) and recolours green ones:
    # over all anomalies each factor changes half the time, per colour each group has one route
    colour = torch.tensor([0, 0, 0, 1, 1, 1])  # red, red, red, green, green, green
    red = colour == 0
    changes = [{"digit": red.clone(), "color": ~red}]
    assert factor_changes(changes)[0]["changes digit"] == 0.5
    values = {"oracle-normal": [torch.tensor([True, True, False, True, True, True])],
              "l1": [torch.tensor([0.3, 0.3, 0.3, 0.1, 0.1, 0.1])]}
    rows = factor_changes_by(changes, colour, ["red", "green", "blue"], by="colour", values=values)
    assert [(r["colour"], r["n"], r["route"]) for r in rows] == [("red", 3, "digit"), ("green", 3, "color")]  # no blue
    assert rows[0]["changes digit"] == 1.0 and rows[0]["changes color"] == 0.0 and rows[0]["one factor"] == 1.0
    assert rows[0]["oracle-normal"] == pytest.approx(2 / 3) and rows[1]["oracle-normal"] == 1.0
    assert rows[0]["l1"] == pytest.approx(0.3) and rows[1]["l1"] == pytest.approx(0.1)
    unchanged = [{"digit": torch.zeros(6, dtype=torch.bool), "color": torch.zeros(6, dtype=torch.bool)}]
    assert {r["route"] for r in factor_changes_by(unchanged, colour, ["red", "green"])} == {"none"}
    assert "oracle-normal" not in factor_changes_by(unchanged, colour, ["red", "green"])[0]
    with pytest.raises(ValueError, match="one tensor per concept"):
        factor_changes_by(changes, colour, ["red", "green"], values={"l1": values["l1"] * 2})
    digit = torch.tensor([3, 3, 3, 3, 3, 5])
    per_value = factor_changes_per_value(changes, {"digit": digit, "colour": colour},
                                         {"digit": [str(d) for d in range(10)], "colour": ["red", "green"]})
    assert [(r["grouped by"], r["value"], r["n"]) for r in per_value] == [
        ("digit", "3", 5), ("digit", "5", 1), ("colour", "red", 3), ("colour", "green", 3)]
    assert per_value[2]["route"] == "digit" and per_value[3]["route"] == "color"


def test_minimality():
    x = torch.zeros(4, 1, 2, 2)
    cfs = torch.stack([x, x + 0.5], 1)
    assert minimality(x, cfs) == [0.0, 0.5]
    cfs[1, 1] = 1.0  # one image edited more
    assert edit_sizes(x, cfs)[1].tolist() == [0.5, 1.0, 0.5, 0.5] and edit_sizes(x, cfs)[0].tolist() == [0.0] * 4


def test_concept_overlap_tells_the_same_edit_from_different_ones():
    x = torch.zeros(3, 3, 8, 8)
    x[:, 0, 2:6, 3:5] = 1  # a red stroke
    recolour = x.roll(2, dims=1)  # the same stroke in blue
    moved = x.roll(3, dims=3)  # the red stroke elsewhere
    assert concept_overlap(x, torch.stack([recolour, recolour], 1)) == pytest.approx(1.0)
    assert concept_overlap(x, torch.stack([recolour, 0.5 * x + 0.5 * recolour], 1)) == pytest.approx(1.0)
    assert concept_overlap(x, torch.stack([recolour, x.roll(1, dims=1)], 1)) == pytest.approx(0.5)
    # a colour edit and a shape edit that share pixels overlap partly; no edit counts as orthogonal
    three = concept_overlap(x, torch.stack([recolour, moved, x], 1))
    assert 0 < three < 1 / 3
    with pytest.raises(ValueError, match="K >= 2"):
        concept_overlap(x, recolour[:, None])
    with pytest.raises(ValueError, match="K >= 2"):
        concept_overlap(x, recolour)  # one counterfactual per image, without the concept axis


def test_fid_with_oracle_features():
    from cfx_lib.metrics import FactorOracle, OracleFeatures

    oracle = FactorOracle((3, 8, 8), {"color": 6}, width=4)
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(64, 3, 8, 8, generator=gen)
    assert fid(a, a, OracleFeatures(oracle)) == pytest.approx(0.0, abs=1e-4)
    assert fid(a, a * 0.2, OracleFeatures(oracle)) > 0
    assert oracle.predict(a)["color"].shape == (64,)  # the oracle itself stays float32
