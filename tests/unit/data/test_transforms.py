import pytest
import torch

from cfx_lib.data.transforms import random_shift


def test_random_shift_moves_each_image_by_its_own_offset_within_the_bound():
    x = torch.zeros(64, 1, 12, 12)
    x[:, :, 6, 6] = 1.0  # one bright pixel in the middle of each image
    y = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    rows, cols = y[:, 0].flatten(1).argmax(1).div(12, rounding_mode="floor"), y[:, 0].flatten(1).argmax(1) % 12
    assert y.flatten(1).sum(1).eq(1).all()  # nothing lost inside ±2 pixels of the centre
    assert ((rows - 6).abs() <= 2).all() and ((cols - 6).abs() <= 2).all()
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # offsets differ between images


def test_random_shift_is_seeded_identity_at_zero_and_refuses_negative():
    x = torch.rand(5, 3, 8, 8)
    assert random_shift(x, 0, torch.Generator()) is x
    a = random_shift(x, 3, torch.Generator().manual_seed(1))
    b = random_shift(x, 3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    # zeros come in from the border: a shifted image never holds more than the original
    assert (a.flatten(1).sum(1) <= x.flatten(1).sum(1) + 1e-5).all()
    with pytest.raises(ValueError, match="shift must be >= 0"):
        random_shift(x, -1, torch.Generator())
