import pytest
import torch

from cfx_lib.data import COLOR_NAMES, DATASETS, PALETTE, DatasetUnavailable, load_dataset, load_outliers, oe_options


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (3, 32, 32), (1, 32, 32)])
def test_synthetic_oe_shapes_ranges_determinism(shape):
    a = load_outliers("synthetic", 12, shape, seed=5)
    b = load_outliers("synthetic", 12, shape, seed=5)
    assert a.shape == (12, *shape) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.05
    assert torch.equal(a, b)
    assert not torch.equal(a, load_outliers("synthetic", 12, shape, seed=6))



def _colours_of(images):
    """The palette colour of each single-colour image: its per-channel maximum."""
    rgb = images.amax(dim=(2, 3)).round()
    palette = torch.tensor(list(PALETTE.values()))
    return [COLOR_NAMES[int((palette == c).all(dim=1).nonzero())] for c in rgb]


def test_oe_colours():
    every = _colours_of(load_outliers("synthetic", 300, (3, 28, 28), seed=2))
    assert set(every) == set(COLOR_NAMES)
    assert torch.equal(load_outliers("synthetic", 30, (3, 28, 28), seed=2, colors=None),
                       load_outliers("synthetic", 30, (3, 28, 28), seed=2))
    some = _colours_of(load_outliers("synthetic", 300, (3, 28, 28), seed=2, colors=["red", "blue"]))
    assert set(some) == {"red", "blue"}
    # the same letters, only recoloured
    gray = load_outliers("synthetic", 30, (1, 28, 28), seed=2)
    assert torch.allclose(load_outliers("synthetic", 30, (3, 28, 28), seed=2, colors=["green"]).amax(dim=1, keepdim=True), gray)
    with pytest.raises(ValueError, match="unknown OE colour 'pink'"):
        load_outliers("synthetic", 4, (3, 28, 28), colors=["pink"])
    with pytest.raises(ValueError, match="at least one palette colour"):
        load_outliers("synthetic", 4, (3, 28, 28), colors=[])
    # colored_mnist draws OE in the colours that are not normal; other datasets in all
    assert oe_options("colored_mnist") == {"colors": ["red", "green", "blue", "yellow", "magenta"], "strokes": 0.5}
    assert oe_options("colored_mnist", normal_colors=["red", "green"])["colors"] == ["blue", "yellow", "cyan", "magenta"]
    assert oe_options("colored_mnist", normal_colors=COLOR_NAMES)["colors"] is None
    assert oe_options("mnist") == {"colors": None, "strokes": 0.5}
    assert oe_options("signs") == {"colors": None, "strokes": 0.0}


def test_oe_strokes():
    from cfx_lib.data.outliers import add_strokes

    plain = load_outliers("synthetic", 200, (3, 28, 28), seed=3, colors=["red"])
    marked = load_outliers("synthetic", 200, (3, 28, 28), seed=3, colors=["red"], strokes=0.5)
    changed = (marked != plain).flatten(1).any(dim=1)
    assert 0.35 < changed.float().mean() < 0.65  # about half of them carry a stroke
    diff = (marked != plain)[changed]
    assert (diff[:, 1:].sum() == 0) and diff.flatten(1).sum(1).max() <= 16  # red only, at most 2×8 pixels
    assert torch.equal(marked, load_outliers("synthetic", 200, (3, 28, 28), seed=3, colors=["red"], strokes=0.5))
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(add_strokes(plain, 0.0, gen), plain)
    assert (add_strokes(plain, 1.0, gen) != plain).flatten(1).any(dim=1).float().mean() > 0.9
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        add_strokes(plain, 1.5, gen)

def test_oe_marks():
    from cfx_lib.data.outliers import add_marks

    plain = load_outliers("synthetic", 400, (3, 28, 28), seed=3, colors=["red"], strokes=0.5)
    marked = load_outliers("synthetic", 400, (3, 28, 28), seed=3, colors=["red"], strokes=0.5, marks=0.5)
    changed = (marked != plain).flatten(1).any(dim=1)
    assert 0.35 < changed.float().mean() < 0.65  # about half of them carry a mark
    # a solid blob of 2–4 × 2–4 pixels: every changed pixel lies in one box of at most 4×4 and has one colour
    for before, after in zip(plain[changed], marked[changed]):
        rows, cols = (after != before).any(dim=0).nonzero(as_tuple=True)
        assert rows.max() - rows.min() < 4 and cols.max() - cols.min() < 4
        blob = after[:, rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
        assert (blob == blob[:, :1, :1]).all()
    # half in the letter's own red, the others in another palette colour or white
    fills = {tuple(a[:, r, c].tolist()) for a, b in zip(marked[changed], plain[changed])
             for r, c in [(a != b).any(dim=0).nonzero()[0].tolist()]}
    assert (1.0, 0.0, 0.0) in fills and len(fills) >= 4 and fills <= {*PALETTE.values(), (1.0, 1.0, 1.0)}
    # drawn after the strokes: without marks the draw is the one from before the option existed
    assert torch.equal(load_outliers("synthetic", 400, (3, 28, 28), seed=3, colors=["red"], strokes=0.5, marks=0.0), plain)
    gray = load_outliers("synthetic", 50, (1, 28, 28), seed=3)
    gen = torch.Generator().manual_seed(0)
    one = add_marks(gray, 1.0, gen)
    assert one.shape == gray.shape and one.max() <= 1 and (one != gray).flatten(1).any(dim=1).all()
    assert torch.equal(add_marks(gray, 0.0, gen), gray)
    with pytest.raises(ValueError, match=r"marks must be in \[0, 1\]"):
        add_marks(gray, -0.1, gen)


def test_downloadable_oe_offline_points_to_the_synthetic_stand_in(tmp_path):
    with pytest.raises(DatasetUnavailable, match="synthetic_letters"):
        load_outliers("emnist_letters", 4, (1, 28, 28), root=tmp_path, download=False)
    with pytest.raises(DatasetUnavailable, match="synthetic_shapes"):
        load_outliers("cifar100", 4, (3, 32, 32), root=tmp_path, download=False)


def test_unknown_oe_source_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*synthetic"):
        load_outliers("imagenet", 4, (3, 32, 32))


@pytest.mark.parametrize("call, match", [
    (lambda: load_dataset("mnits"), "unknown dataset 'mnits'; valid: .*colored_mnist"),
    (lambda: load_dataset("mnist", "val"), "unknown split 'val'"),
    (lambda: load_dataset("mnist", normal_digits=[1]), r"unknown parameter\(s\) \['normal_digits'\] for dataset 'mnist'; valid: \['normal_classes'\]"),
    (lambda: load_dataset("mnist", max_samples=0), "max_samples"),
    (lambda: load_dataset("mnist", seed=-1), "seed"),
])
def test_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_every_registered_dataset_documents_itself():
    for name, spec in DATASETS.items():
        assert spec.description and spec.setup.__doc__, name


def test_max_samples_and_views(tmp_path):
    data = load_dataset("colored_mnist", "test", tmp_path, max_samples=100)
    assert len(data) == 100
    assert len(data.normal) + len(data.anomalous) == 100
    assert not data.normal.is_anomaly.any()
    blue = data.factor_mask({"color": ["blue"]})
    assert (data.factors["color"][blue] == 2).all()
    with pytest.raises(ValueError, match="valid"):
        data.factor_mask({"color": ["purple"]})
    counts = data.counts()
    assert list(counts.columns) == ["label", "class", "normal", "anomalous", "total"] and counts["total"].sum() == 100
    batches = list(data.batches(32))
    assert [len(b.images) for b in batches] == [32, 32, 32, 4]


def test_spread_covers_every_value_of_a_factor_in_turn():
    import torch

    from cfx_lib.data.base import ADDataset

    color = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    data = ADDataset("toy", "test", torch.arange(7.0).view(7, 1, 1, 1), color, torch.ones(7, dtype=torch.bool),
                     ["a", "b", "c"], {"color": color}, {"color": ["red", "blue", "green"]})
    picked = data.spread(5, "color", seed=None)
    assert picked.factors["color"].tolist() == [0, 1, 2, 0, 2]
    assert picked.images.flatten().tolist() == [0.0, 4.0, 5.0, 1.0, 6.0]
    shuffled = data.spread(5, "color", seed=3)
    assert shuffled.factors["color"].tolist() == [0, 1, 2, 0, 2]
    assert torch.equal(shuffled.images, data.spread(5, "color", seed=3).images)
    assert len(data.spread(3)) == 3 and len(data.spread(100, "color")) == 7
    with pytest.raises(ValueError, match="no factor 'digit'"):
        data.spread(3, "digit")


def test_display_factor_prefers_the_asked_factor_else_the_one_with_fewest_values():
    import torch

    from cfx_lib.data.base import ADDataset

    digit, color = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0])
    data = ADDataset("toy", "test", torch.zeros(3, 1, 1, 1), digit, torch.ones(3, dtype=torch.bool), ["0", "1", "2"],
                     {"digit": digit, "color": color}, {"digit": [str(d) for d in range(10)], "color": ["red", "blue"]})
    assert data.display_factor() == "color" and data.display_factor("digit") == "digit"
    assert data.display_factor("shape") == "color"  # a factor the dataset lacks falls back
    plain = ADDataset("toy", "test", torch.zeros(3, 1, 1, 1), digit, torch.ones(3, dtype=torch.bool), ["0", "1", "2"])
    assert plain.display_factor() is None and plain.display_factor("color") is None
    assert data.examples(2).factors["color"].tolist() == [0, 1]  # one of each colour, not digits 0 and 1 by order
    assert data.examples(3, "digit", seed=None).factors["digit"].tolist() == [0, 1, 2]
    assert len(plain.examples(2)) == 2
