import pytest
import torch

from cfx_lib.data.transforms import channel_gain, random_shift


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


def test_channel_gain_scales_each_channel_of_each_image_within_its_bound():
    x = torch.full((256, 3, 4, 4), 0.5)
    x[:, 0] = 0.0  # a channel that is off stays off: the hue family survives
    y = channel_gain(x, 0.4, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.equal(y[:, 0], x[:, 0])
    gains = y[:, 1:, 0, 0] / 0.5  # one gain per image and channel, uniform over the whole image
    assert torch.allclose(y[:, 1:], gains[:, :, None, None] * 0.5)
    assert gains.min() >= 0.6 - 1e-6 and gains.max() <= 1.4 + 1e-6
    assert gains.min() < 0.65 and gains.max() > 1.35  # the range is used, not a constant
    assert not torch.allclose(gains[:, 0], gains[:, 1])  # channels drawn apart


def test_channel_gain_is_seeded_clamped_identity_at_zero_and_refuses_bad_strengths():
    x = torch.rand(5, 3, 8, 8)
    assert channel_gain(x, 0.0, torch.Generator()) is x
    a = channel_gain(x, 0.9, torch.Generator().manual_seed(1))
    assert torch.equal(a, channel_gain(x, 0.9, torch.Generator().manual_seed(1)))
    assert a.min() >= 0 and a.max() <= 1
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="jitter must be in"):
            channel_gain(x, bad, torch.Generator())
