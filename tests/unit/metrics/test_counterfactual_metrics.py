import pytest
import torch

from cfx_lib.counterfactual import Explanation
from cfx_lib.data.base import ADDataset
from cfx_lib.data.colored_mnist import COLOR_NAMES, PALETTE, ColoredMNISTSetup
from cfx_lib.data.registry import make_setup
from cfx_lib.metrics.oracle import ORACLE_RECIPE
from cfx_lib.metrics import (
    FactorOracle, concept_accuracy, counterfactual_metrics, load_or_train_oracle, normality_auroc,
    oracle_accuracy, oracle_normal_share, route_table, train_oracle,
)


class FakeOracle:
    """Reads the colour from the brightest channel pattern and the digit from a fixed table."""

    def __init__(self, digit=1):
        self.digit = digit

    def predict(self, images, min_confidence=0.0):
        rgb = images.amax(dim=(2, 3)).round()
        palette = torch.tensor(list(PALETTE.values()))
        color = (rgb[:, None, :] == palette[None]).all(-1).float().argmax(1)
        return {"digit": torch.full((len(images),), self.digit), "color": color}


def solid(color: str, n: int = 4) -> torch.Tensor:
    return torch.tensor(PALETTE[color])[None, :, None, None].expand(n, 3, 28, 28).clone()


def test_setups_decide_normality_from_factors():
    setup = ColoredMNISTSetup()
    digit = torch.tensor([1, 7, 7, 3])
    color = torch.tensor([COLOR_NAMES.index(c) for c in ("red", "cyan", "red", "blue")])
    assert setup.is_normal({"digit": digit, "color": color}).tolist() == [True, True, False, False]
    # an unreadable factor (-1) matches no normal value
    assert setup.is_normal({"digit": torch.tensor([-1]), "color": torch.tensor([-1])}).tolist() == [False]
    signs = make_setup("signs")
    normal = {k: torch.tensor([0, 1]) for k in ("shape", "rim", "fill", "glyph")}
    assert signs.is_normal(normal).tolist() == [True, False]


def test_oracle_normal_share_counts_only_normal_readings():
    setup = ColoredMNISTSetup()
    images = torch.cat([solid("cyan", 3), solid("red", 1)])
    assert oracle_normal_share(FakeOracle(digit=7), setup, images) == 0.75
    assert oracle_normal_share(FakeOracle(digit=1), setup, images) == 1.0
    with pytest.raises(ValueError, match="no images"):
        oracle_normal_share(FakeOracle(), setup, images[:0])


def test_route_table_breaks_a_recolouring_down_by_the_anomaly_colour():
    # red and blue 7s; concept 1 recolours every anomaly to cyan, concept 2 leaves them as they are
    images = torch.cat([solid("red", 2), solid("blue", 2)])
    colors = torch.tensor([COLOR_NAMES.index("red")] * 2 + [COLOR_NAMES.index("blue")] * 2)
    anomalies = ADDataset("toy", "test", images, torch.full((4,), 7), torch.ones(4, dtype=torch.bool),
                          [str(d) for d in range(10)], {"digit": torch.full((4,), 7), "color": colors},
                          {"digit": [str(d) for d in range(10)], "color": list(COLOR_NAMES)})
    counterfactuals = torch.stack([solid("cyan", 4), images], 1)
    rows = route_table(FakeOracle(digit=7), ColoredMNISTSetup(), anomalies, counterfactuals)
    by_colour = {(r["concept"], r["value"]): r for r in rows if r["grouped by"] == "color"}
    assert set(by_colour) == {(1, "red"), (1, "blue"), (2, "red"), (2, "blue")}  # colours without anomalies left out
    assert by_colour[1, "red"]["route"] == "color" and by_colour[1, "red"]["oracle-normal"] == 1.0
    assert by_colour[1, "red"]["l1"] == pytest.approx(1.0)  # red → cyan changes all three channels
    assert by_colour[1, "blue"]["l1"] == pytest.approx(1 / 3)  # blue → cyan only the green one
    assert by_colour[2, "red"]["route"] == "none" and by_colour[2, "red"]["oracle-normal"] == 0.0
    assert [r["n"] for r in rows if r["grouped by"] == "digit"] == [4, 4]
    plain = ADDataset("toy", "test", images, torch.zeros(4), torch.ones(4, dtype=torch.bool), ["0"])
    with pytest.raises(ValueError, match="no ground-truth factors"):
        route_table(FakeOracle(), ColoredMNISTSetup(), plain, counterfactuals)


def test_normality_auroc_known_answers():
    same = torch.linspace(0, 1, 50)
    assert normality_auroc(same, same) == pytest.approx(0.5)
    assert normality_auroc(torch.zeros(10), torch.ones(10)) == 1.0
    with pytest.raises(ValueError):
        normality_auroc(torch.zeros(0), torch.ones(3))


class PerfectR(torch.nn.Module):
    """Says concept 0 when the pair differs in the red channel, else concept 1."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, y):
        red = (x[:, 0] - y[:, 0]).abs().mean(dim=(1, 2)) > 0
        return torch.stack([red.float(), (~red).float()], 1) * 10 - 5


def test_concept_accuracy_and_all_metrics():
    x = solid("red", 4)
    cf0 = solid("cyan", 4)  # concept 0 changes the colour (red channel differs)
    cf1 = x.clone()  # concept 1 leaves the image (and its red channel) alone
    cfs = torch.stack([cf0, cf1], 1)
    assert concept_accuracy(PerfectR(), x, cfs) == 1.0
    swapped = torch.stack([cf1, cf0], 1)
    assert concept_accuracy(PerfectR(), x, swapped) == 0.0
    ex = Explanation(x, torch.ones(4), cfs, torch.tensor([[0.1, 0.9]] * 4))
    m = counterfactual_metrics(ex, torch.full((4,), 0.1), FakeOracle(digit=7), ColoredMNISTSetup(), PerfectR())
    assert m["oracle_normal_k1"] == 1.0 and m["oracle_normal_k2"] == 0.0 and m["oracle_normal"] == 0.5
    assert m["cf_normal_share_k1"] == 1.0 and m["cf_normal_share_k2"] == 0.0
    assert m["normality_auroc_k1"] == pytest.approx(0.5) and m["normality_auroc_k2"] == 1.0
    assert m["concept_acc"] == 1.0 and m["oracle_normal_anomalies"] == 0.0
    assert m["anomaly_normal_share"] == 0.0  # every anomaly scored 1.0, above the threshold
    assert m["concept_overlap"] == 0.0  # concept 2 does not edit at all
    half = Explanation(x, torch.tensor([0.2, 0.9, 0.3, 0.8]), cfs, ex.cf_scores)
    assert counterfactual_metrics(half, torch.full((4,), 0.1))["anomaly_normal_share"] == 0.5


def colour_dataset(n: int, seed: int) -> ADDataset:
    """Solid squares of a random palette colour at random places: the colour factor is learnable."""
    gen = torch.Generator().manual_seed(seed)
    color = torch.randint(len(COLOR_NAMES), (n,), generator=gen)
    images = torch.zeros(n, 3, 28, 28)
    for i in range(n):
        r, c = torch.randint(0, 18, (2,), generator=gen).tolist()
        images[i, :, r : r + 10, c : c + 10] = torch.tensor(PALETTE[COLOR_NAMES[int(color[i])]])[:, None, None]
    return ADDataset("toy", "train", images, color, color != 4, COLOR_NAMES, {"color": color}, {"color": COLOR_NAMES})


def test_oracle_learns_a_factor_caches_and_refuses_low_confidence(tmp_path, capsys):
    train, test = colour_dataset(300, 0), colour_dataset(100, 1)
    report = train_oracle(train, test, epochs=10, seed=0, device="cpu", progress=False)
    assert report.accuracy["color"] > 0.95
    assert report.confident["color"] <= report.accuracy["color"]
    # a reading below the confidence asked for counts as wrong
    assert oracle_accuracy(report.oracle, test, min_confidence=1.01) == {"color": 0.0}
    path = tmp_path / "oracle.pt"
    first = load_or_train_oracle(path, train, test, epochs=3, seed=0, device="cpu", progress=False)
    again = load_or_train_oracle(path, train, test, epochs=3, seed=0, device="cpu", progress=False)
    assert again.train_seconds == 0.0 and again.accuracy == first.accuracy  # loaded, not retrained
    assert again.confident == first.confident and set(first.confident) == {"color"}
    assert first.recipe == again.recipe == ORACLE_RECIPE  # the instrument, recorded beside the figures
    x = test.images[:5]
    assert torch.equal(first.oracle.predict(x)["color"], again.oracle.predict(x)["color"])
    assert (first.oracle.predict(x, min_confidence=1.01)["color"] == -1).all()
    # a cache trained by an earlier recipe is retrained (and replaced), not loaded
    ckpt = torch.load(path, weights_only=True)
    ckpt["meta"]["recipe"] = ORACLE_RECIPE - 1
    torch.save(ckpt, path)
    redone = load_or_train_oracle(path, train, test, epochs=3, seed=0, device="cpu", progress=False)
    assert redone.train_seconds > 0 and torch.load(path, weights_only=True)["meta"]["recipe"] == ORACLE_RECIPE
    assert "retraining the oracle" in capsys.readouterr().err
    with pytest.raises(ValueError, match="oracle expects images"):
        first.oracle(torch.rand(1, 1, 28, 28))


def test_oracle_needs_factors():
    data = colour_dataset(10, 0)
    data.factors, data.factor_values = {}, {}
    with pytest.raises(ValueError, match="no ground-truth factors"):
        train_oracle(data, epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least one factor"):
        FactorOracle((3, 28, 28), {})


def test_oracle_recipes_are_seeded_and_differ_and_unknown_ones_are_refused():
    data = colour_dataset(40, 0)
    weights = {}
    for recipe in (1, 2, 2):
        report = train_oracle(data, epochs=1, seed=3, device="cpu", progress=False, recipe=recipe)
        assert report.recipe == recipe
        oracle = report.oracle
        weights.setdefault(recipe, []).append(oracle.heads["color"].weight.detach().clone())
    assert torch.equal(weights[2][0], weights[2][1])  # seeded
    assert not torch.equal(weights[1][0], weights[2][0])  # the augmentation and schedule differ
    with pytest.raises(ValueError, match="recipe must be 1"):
        train_oracle(data, epochs=1, progress=False, recipe=3)


def test_profiles_train_oracles_for_the_oracle_default():
    from cfx_lib.config import PROFILES
    from cfx_lib.metrics.oracle import ORACLE_EPOCHS

    assert PROFILES["quick"].oracle_epochs == PROFILES["paper"].oracle_epochs == ORACLE_EPOCHS
