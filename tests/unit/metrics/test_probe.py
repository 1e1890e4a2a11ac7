import pytest
import torch

from cfx_lib.detectors import as_detector
from cfx_lib.metrics import (
    PatchProbe, describe_reading, paste_patch, patch_probe, recolor, recolor_probe, redraw, shift_probe,
)


def _images(n=6):
    x = torch.zeros(n, 3, 28, 28)
    x[:, 0, 8:20, 12:16] = 1.0  # a red stroke in the middle
    return x


def test_paste_patch_colours_and_errors():
    x = _images(2)
    y = paste_patch(x, 1, 24, 5, 2)
    assert torch.equal(y[:, :, 1:6, 24:26], torch.tensor([1.0, 0, 0])[None, :, None, None].expand(2, 3, 5, 2))
    assert torch.equal(y[:, :, 8:20], x[:, :, 8:20]) and torch.equal(x, _images(2))  # a copy
    z = paste_patch(x, 0, 0, 2, 2, color=(0.0, 1.0, 1.0))
    assert torch.equal(z[0, :, 0, 0], torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="does not fit"):
        paste_patch(x, 25, 24, 5, 2)
    with pytest.raises(ValueError, match="one value per channel"):
        paste_patch(x, 0, 0, 2, 2, color=(1.0,))


def test_patch_probe_finds_a_corner_shortcut_and_not_a_robust_detector():
    # anomalous unless the top-right corner is lit: a detector with a shortcut
    shortcut = as_detector(lambda x: 1 - x[:, :, :6, 22:].amax(dim=(1, 2, 3)), (3, 28, 28))
    found = patch_probe(shortcut, _images())
    assert found.normal_share_before == 0 and found.normal_share_after == 1 and found.flipped == 1
    # anomalous when the image is red in its middle: the corner does not matter
    robust = as_detector(lambda x: x[:, 0, 8:20, 12:16].mean(dim=(1, 2)), (3, 28, 28))
    kept = patch_probe(robust, _images())
    assert kept.flipped == 0 and kept.median_after == pytest.approx(1.0)


def test_recolor_keeps_the_stroke_and_refuses_bad_input():
    x = _images(2) * 0.5  # a half-bright red stroke
    y = recolor(x, (0.0, 1.0, 0.25))
    assert torch.allclose(y[:, :, 8:20, 12:16], torch.tensor([0.0, 0.5, 0.125])[None, :, None, None].expand(2, 3, 12, 4))
    assert float(y[:, :, :8].abs().sum()) == 0 and torch.equal(x, _images(2) * 0.5)  # background kept, input untouched
    with pytest.raises(ValueError, match="RGB images"):
        recolor(torch.zeros(2, 1, 28, 28), (0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="three values"):
        recolor(x, (0.0, 1.0))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        recolor(x, (0.0, 2.0, 1.0))


def test_redraw_draws_the_other_shape_in_the_image_colour_and_refuses_bad_input():
    x = _images(2) * 0.5
    x[1] = x[1][[1, 0, 2]]  # the second image's stroke is half-bright green
    shapes = torch.zeros(2, 3, 28, 28)
    shapes[:, 2, 2:5, 3:25] = 0.8  # a blue horizontal bar
    shapes[1, 0, 2:5, 3:25] = 0.4  # a dimmer second channel does not change the brightness
    y = redraw(x, shapes)
    assert torch.allclose(y[0, :, 3, 10], torch.tensor([0.4, 0.0, 0.0]))  # the bar in the first image's red
    assert torch.allclose(y[1, :, 3, 10], torch.tensor([0.0, 0.4, 0.0]))  # and in the second's green
    assert float(y[:, :, 8:20, 12:16].abs().sum()) == 0  # the old stroke is gone
    with pytest.raises(ValueError, match="of one shape"):
        redraw(x, shapes[:1])


def test_recolor_probe_finds_where_a_colour_detector_draws_its_boundary():
    # normal when the stroke's blue is at least half its red + green: cyan (0, 1, 1) is normal, green is not
    blue = as_detector(lambda x: (x[:, 2].amax(dim=(1, 2)) < x[:, :2].amax(dim=(2, 3)).sum(1) / 2).float(), (3, 28, 28))
    assert recolor_probe(blue, _images(), (0.0, 1.0, 0.25)).normal_share_after == 0
    found = recolor_probe(blue, _images(), (0.0, 1.0, 0.75))
    assert found.normal_share_before == 0 and found.flipped == 1 and found.median_after == 0


def test_shift_probe_finds_a_detector_that_reads_position_and_not_one_that_reads_colour():
    x = _images(32)  # normal images: a red stroke in the middle
    # normal only where the stroke stands: every pixel of rows 8-19, columns 12-15 lit
    placed = as_detector(lambda x: 1 - x[:, 0, 8:20, 12:16].amin(dim=(1, 2)), (3, 28, 28))
    moved = shift_probe(placed, x, shift=3)
    assert moved.normal_share_before == 1 and moved.normal_share_after < 0.5 and moved.flipped < -0.5
    # normal when anything is red, wherever it stands
    red = as_detector(lambda x: 1 - x[:, 0].amax(dim=(1, 2)), (3, 28, 28))
    kept = shift_probe(red, x, shift=3, noise=0.0)
    assert kept.flipped == 0
    assert shift_probe(placed, x, shift=0).flipped == 0  # no shift, no change


def test_describe_reading_warns_only_when_the_reading_loses_normal_images():
    lost = describe_reading(PatchProbe(1.0, 0.4, 0.001, 0.7), shift=4, noise=0.05)
    assert "100%" in lost and "40%" in lost and "Warning: 60%" in lost and "shift_augment" in lost
    kept = describe_reading(PatchProbe(1.0, 0.95, 0.001, 0.002), shift=2, noise=0.05)
    assert "95%" in kept and "Warning" not in kept
    assert "as it is" in describe_reading(PatchProbe(1.0, 1.0, 0.001, 0.001), shift=0, noise=0.0)
    turned = describe_reading(PatchProbe(1.0, 0.9, 0.001, 0.01), shift=0, noise=0.05, rotate=10, scale=0.1)
    assert "rotations of up to 10°, scalings of up to 10%, noise 0.05" in turned and "shifts" not in turned
    assert "as it is" not in describe_reading(PatchProbe(1.0, 1.0, 0.001, 0.001), shift=0, noise=0.0, rotate=5)


def test_shift_probe_reads_through_rotation_a_detector_that_wants_an_upright_stroke():
    x = _images(64)  # a vertical red stroke, rows 8-19, columns 12-15
    upright = as_detector(lambda x: 1 - x[:, 0, 8:20, 12:16].amin(dim=(1, 2)), (3, 28, 28))
    turned = shift_probe(upright, x, shift=0, rotate=30)
    assert turned.normal_share_before == 1 and turned.flipped < -0.5  # a stroke turned by up to 30° leaves the box
    assert shift_probe(upright, x, shift=0, rotate=30, scale=0.0).flipped == turned.flipped  # seeded
    red = as_detector(lambda x: 1 - x[:, 0].amax(dim=(1, 2)), (3, 28, 28))
    assert shift_probe(red, x, shift=0, rotate=30, scale=0.1).flipped == 0  # still red anywhere
