import math

import numpy as np
import pytest
import torch

from cfx_lib.data import NORMAL_SIGN, SIGN_FACTOR_VALUES, SignsSetup, load_dataset, render_sign
from cfx_lib.data.signs import RADIUS, SHAPES


def mask_of(shape, size=64):
    _, mask = render_sign(shape, "red", "white", "bar", size=size)
    return mask


def test_a_rendered_circle_is_round():
    mask = mask_of("circle") > 0.5
    ys, xs = np.nonzero(mask)
    area_ratio = mask.sum() / (math.pi * RADIUS**2)
    assert 0.95 < area_ratio < 1.05
    # boundary pixels all lie at the radius from the centre
    edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
    ey, ex = np.nonzero(edge)
    r = np.hypot(ey + 0.5 - 32, ex + 0.5 - 32)
    assert r.std() < 0.6 and abs(r.mean() - RADIUS) < 1.0
    # as wide as it is high
    assert abs((ys.max() - ys.min()) - (xs.max() - xs.min())) <= 1


@pytest.mark.parametrize("shape, area", [
    ("square", 2.0), ("diamond", 2.0), ("triangle", 3 * math.sqrt(3) / 4),
    ("inverted_triangle", 3 * math.sqrt(3) / 4), ("octagon", 2 * math.sqrt(2)),
])
def test_polygon_areas_match_their_geometry(shape, area):
    mask = mask_of(shape)
    # Pillow fills boundary pixels too, so small polygons come out up to ~10% larger
    assert 0.97 < mask.sum() / (area * RADIUS**2) < 1.12


def test_triangles_point_the_right_way():
    up, down = mask_of("triangle") > 0.5, mask_of("inverted_triangle") > 0.5
    assert up[:32].sum() < up[32:].sum()  # wide base at the bottom
    assert down[:32].sum() > down[32:].sum()
    assert (mask_of("square") > 0.5).sum() > 0 and (mask_of("diamond") > 0.5)[32, 8:56].all()


def test_rim_and_fill_colours():
    rgb, _ = render_sign("circle", "blue", "yellow", "bar", "night", size=64)
    rim = rgb[32, 6].astype(int)  # on the rim, left of centre
    fill = rgb[20, 32].astype(int)  # inside, above the bar
    assert rim[2] > 150 and rim[0] < 60
    assert fill[0] > 200 and fill[1] > 150 and fill[2] < 80


def test_factors_labels_and_normal_flag_agree():
    data = load_dataset("signs", "test", n=400)
    assert data.images.shape == (400, 3, 32, 32)
    normal = torch.ones(400, dtype=torch.bool)
    for key, value in NORMAL_SIGN.items():
        normal &= data.factors[key] == SIGN_FACTOR_VALUES[key].index(value)
    assert torch.equal(data.is_anomaly, ~normal)
    assert 0.35 < (~data.is_anomaly).float().mean() < 0.65
    names = [data.class_names[label] for label in data.labels[:20].tolist()]
    for i, name in enumerate(names):
        shape = name.split("/")[0]
        assert shape == SHAPES[data.factors["shape"][i]]


def test_near_misses_differ_in_one_factor():
    data = load_dataset("signs", "train", n=600, near_miss_fraction=1.0, normal_fraction=0.0)
    diffs = sum((data.factors[k] != SIGN_FACTOR_VALUES[k].index(v)).long() for k, v in NORMAL_SIGN.items())
    assert (diffs == 1).all()


def test_deterministic_given_a_seed():
    a = load_dataset("signs", "train", n=50, seed=1)
    b = load_dataset("signs", "train", n=50, seed=1)
    c = load_dataset("signs", "train", n=50, seed=2)
    test = load_dataset("signs", "test", n=50, seed=1)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images) and not torch.equal(a.images, test.images)


@pytest.mark.parametrize("setup, match", [
    ({"n": 0}, "positive"), ({"normal_fraction": 1.5}, r"\[0, 1\]"),
    ({"normal": {"shape": "star", "rim": "red", "fill": "white", "glyph": "number"}}, "star"),
])
def test_bad_setups_are_refused(setup, match):
    with pytest.raises(ValueError, match=match):
        SignsSetup(**setup)


def test_unknown_factor_value_in_render():
    with pytest.raises(ValueError, match="unknown shape"):
        render_sign("hexagon", "red", "white", "number")
