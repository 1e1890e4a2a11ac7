import pytest
import torch

from cfx_lib.data import DATASETS, DatasetUnavailable, load_dataset, load_outliers


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (3, 32, 32), (1, 32, 32)])
def test_synthetic_oe_shapes_ranges_determinism(shape):
    a = load_outliers("synthetic", 12, shape, seed=5)
    b = load_outliers("synthetic", 12, shape, seed=5)
    assert a.shape == (12, *shape) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0.05
    assert torch.equal(a, b)
    assert not torch.equal(a, load_outliers("synthetic", 12, shape, seed=6))


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
