import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from cfx_lib.data import DatasetUnavailable, load_dataset


def make_fake_cifar(root, n=10):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batch = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "labels": list(np.arange(n) % 10)}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    return batch


def test_cifar10_from_fake_pickles(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    batch = make_fake_cifar(tmp_path)
    import torchvision.datasets.cifar as cifar

    # fake files have other md5s than the real ones
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    data = load_dataset("cifar10", "test", tmp_path, normal_classes=[2])
    assert data.images.shape == (10, 3, 32, 32)
    expected = torch.from_numpy(batch["data"][0].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(data.images[0], expected)
    assert data.is_anomaly.tolist() == [label != 2 for label in batch["labels"]]


def test_cifar10_offline_says_where_to_put_the_files(tmp_path):
    with pytest.raises(DatasetUnavailable, match="cifar-10-batches-py"):
        load_dataset("cifar10", "train", tmp_path, download=False)


def test_gtsrb_from_a_fake_training_folder(tmp_path):
    for cls in range(43):  # torchvision numbers the classes by their sorted folders
        folder = tmp_path / "gtsrb" / "GTSRB" / "Training" / f"{cls:05d}"
        folder.mkdir(parents=True)
        Image.fromarray(np.full((40, 37, 3), 5 * cls, np.uint8)).save(folder / "0.ppm")
    data = load_dataset("gtsrb", "train", tmp_path, download=False)
    assert data.images.shape == (43, 3, 32, 32)
    assert data.labels.tolist() == list(range(43))
    # speed limits 0-8 are normal, except 6 ("end of speed limit 80")
    assert [c for c in range(43) if not data.is_anomaly[c]] == [0, 1, 2, 3, 4, 5, 7, 8]


def test_gtsrb_offline_error_names_the_layout(tmp_path):
    with pytest.raises(DatasetUnavailable, match="Final_Test"):
        load_dataset("gtsrb", "test", tmp_path, download=False)


def test_imagefolder(tmp_path):
    for cls, value in (("good", 200), ("bad", 30)):
        folder = tmp_path / "train" / cls
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((50, 50, 3), value, np.uint8)).save(folder / f"{i}.png")
    data = load_dataset("imagefolder", "train", tmp_path, normal_classes=["good"], image_size=28, channels=1)
    assert data.images.shape == (4, 1, 28, 28)
    good = data.labels == data.class_names.index("good")
    assert torch.equal(data.is_anomaly, ~good)
    assert torch.allclose(data.images[good].mean(), torch.tensor(200 / 255), atol=1e-3)
    with pytest.raises(ValueError, match="not found"):
        load_dataset("imagefolder", "train", tmp_path, normal_classes=["great"])
    with pytest.raises(DatasetUnavailable, match="no folder"):
        load_dataset("imagefolder", "test", tmp_path, normal_classes=["good"])
