import pytest
import torch

import math

from cfx_lib.data.transforms import channel_gain, perturb, random_affine, random_shift


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


def test_random_affine_rotates_and_scales_each_image_about_its_centre_within_the_bound():
    x = torch.zeros(256, 1, 33, 33)
    x[:, :, 16, 16:] = 1.0  # a bar from the centre to the right edge
    y = random_affine(x, 30, 0.0, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.allclose(y[:, 0, 16, 16], torch.ones(256), atol=0.05)  # the centre stays
    ys, xs = torch.meshgrid(torch.arange(33.0) - 16, torch.arange(33.0) - 16, indexing="ij")
    mass = y[:, 0].flatten(1).sum(1)
    angle = torch.atan2((y[:, 0] * ys).flatten(1).sum(1) / mass, (y[:, 0] * xs).flatten(1).sum(1) / mass)
    assert angle.abs().max() <= math.radians(30) + 0.05  # each bar turned by at most 30°, either way
    assert angle.min() < -math.radians(20) and angle.max() > math.radians(20)  # the range is used, both ways
    short = torch.zeros(256, 1, 33, 33)
    short[:, :, 16, 16:27] = 1.0  # 11 pixels from the centre
    length = random_affine(short, 0, 0.2, torch.Generator().manual_seed(0))[:, 0, 16].sum(1)
    assert length.min() < 10 and length.max() > 12  # shrunk and grown, both ways
    assert length.min() >= 0.8 * 11 - 1 and length.max() <= 1.2 * 11 + 1  # by at most 20%


def test_random_affine_is_seeded_identity_at_zero_refuses_bad_ranges_and_perturb_applies_it():
    x = torch.rand(5, 3, 8, 8)
    gen = torch.Generator().manual_seed(3)
    assert random_affine(x, 0, 0.0, gen) is x  # and nothing drawn:
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(3).get_state())
    a = random_affine(x, 15, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(a, random_affine(x, 15, 0.1, torch.Generator().manual_seed(1))) and not torch.equal(a, x)
    for degrees, scale in ((-1, 0.0), (181, 0.0), (0, -0.1), (0, 1.0)):
        with pytest.raises(ValueError, match="must be in"):
            random_affine(x, degrees, scale, torch.Generator())
    # perturb: without rotation or scaling it draws as it always did (older runs repeat), with them it turns too
    assert torch.equal(perturb(x, 0.1, 2, torch.Generator().manual_seed(4)),
                       perturb(x, 0.1, 2, torch.Generator().manual_seed(4), rotate=0.0, scale=0.0))
    assert not torch.equal(perturb(x, 0.0, 0, torch.Generator().manual_seed(4), rotate=20.0), x)
