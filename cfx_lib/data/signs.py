"""A procedural traffic-sign dataset at 32×32 RGB with known ground-truth factors.

Every image is a sign drawn with Pillow on a 64×64 canvas (then box-downsampled to 32×32)
from independent factors:

=========== ===========================================================================
factor      values
=========== ===========================================================================
shape       circle, triangle, inverted_triangle, square, diamond, octagon
rim         red, blue, black, yellow  (colour of the outer band)
fill        white, yellow, blue, red  (colour inside the rim)
glyph       number (a two-digit speed), arrow, exclamation, bar, cross
background  sky, grass, urban, night  (gradient + noise)
=========== ===========================================================================

plus a small pose jitter (rotation ±10°, scale 0.85–1, shift ±1.5 px at 32×32) that is not a
class factor. The glyph is black on light fills and white on dark fills.

Normal = round, red-rimmed, white-filled signs with a number (speed-limit-like), as in the
paper's GTSDB setup. A share ``normal_fraction`` of the samples is normal; of the anomalies, a
share ``near_miss_fraction`` differs from the normal sign in exactly one of shape, rim, fill,
glyph (so that the true explanation is a single factor); the rest draw shape, rim, fill and
glyph uniformly (never the normal combination). Deterministic given the seed; the split is
mixed into the seed so train and test differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .base import ADDataset, check_values

SHAPES = ["circle", "triangle", "inverted_triangle", "square", "diamond", "octagon"]
RIMS = ["red", "blue", "black", "yellow"]
FILLS = ["white", "yellow", "blue", "red"]
GLYPHS = ["number", "arrow", "exclamation", "bar", "cross"]
BACKGROUNDS = ["sky", "grass", "urban", "night"]
#: the class factors (the class label is the sign type: their combination)
SIGN_FACTORS = {"shape": SHAPES, "rim": RIMS, "fill": FILLS, "glyph": GLYPHS}
FACTOR_VALUES = {**SIGN_FACTORS, "background": BACKGROUNDS}
NORMAL_SIGN = {"shape": "circle", "rim": "red", "fill": "white", "glyph": "number"}

COLORS = {
    "red": (200, 25, 30),
    "blue": (20, 70, 190),
    "black": (20, 20, 20),
    "yellow": (245, 200, 20),
    "white": (245, 245, 245),
}
_BACKGROUND_RGB = {  # (top colour, bottom colour, noise std)
    "sky": ((120, 170, 230), (190, 215, 240), 6.0),
    "grass": ((70, 120, 50), (40, 90, 30), 14.0),
    "urban": ((140, 140, 135), (95, 95, 100), 10.0),
    "night": ((15, 20, 45), (35, 35, 60), 6.0),
}
_DARK_FILLS = {"blue", "red"}
_NUMBERS = ["20", "30", "40", "50", "60", "70", "80"]
#: polygon vertex angles (degrees, image coordinates: y points down) and inradius/circumradius
_POLYGONS = {
    "triangle": ([-90, 30, 150], math.cos(math.pi / 3)),
    "inverted_triangle": ([90, 210, 330], math.cos(math.pi / 3)),
    "square": ([45, 135, 225, 315], math.cos(math.pi / 4)),
    "diamond": ([0, 90, 180, 270], math.cos(math.pi / 4)),
    "octagon": ([22.5 + 45 * i for i in range(8)], math.cos(math.pi / 8)),
}
CANVAS = 64
SIZE = 32
RADIUS = 27.0  # circumradius of the sign on the canvas at scale 1
RIM_WIDTH = 0.2  # rim width as a share of the radius


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _vertices(shape: str, radius: float, c: float = CANVAS / 2) -> list[tuple[float, float]]:
    angles, _ = _POLYGONS[shape]
    return [(c + radius * math.cos(math.radians(a)), c + radius * math.sin(math.radians(a))) for a in angles]


def _inradius_ratio(shape: str) -> float:
    return 1.0 if shape == "circle" else _POLYGONS[shape][1]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, radius: float, color: tuple[int, int, int]) -> None:
    c = CANVAS / 2
    if shape == "circle":
        draw.ellipse([c - radius, c - radius, c + radius, c + radius], fill=color + (255,))
    else:
        draw.polygon(_vertices(shape, radius), fill=color + (255,))


def _draw_glyph(draw: ImageDraw.ImageDraw, glyph: str, size: float, color: tuple[int, int, int], number: str) -> None:
    """Draw ``glyph`` centred on the canvas inside a disc of radius ``size``."""
    c = CANVAS / 2
    fill = color + (255,)
    s = size
    if glyph == "number":
        font = _font(max(6, int(round(1.15 * s))))
        draw.text((c, c), number, fill=fill, font=font, anchor="mm")
    elif glyph == "arrow":
        w = 0.22 * s
        draw.rectangle([c - w, c - 0.1 * s, c + w, c + 0.8 * s], fill=fill)
        draw.polygon([(c, c - 0.85 * s), (c - 0.6 * s, c), (c + 0.6 * s, c)], fill=fill)
    elif glyph == "exclamation":
        w = 0.17 * s
        draw.rectangle([c - w, c - 0.8 * s, c + w, c + 0.3 * s], fill=fill)
        draw.ellipse([c - 1.2 * w, c + 0.5 * s, c + 1.2 * w, c + 0.5 * s + 2.4 * w], fill=fill)
    elif glyph == "bar":
        draw.rectangle([c - 0.75 * s, c - 0.22 * s, c + 0.75 * s, c + 0.22 * s], fill=fill)
    elif glyph == "cross":
        k = 0.6 * s
        width = max(2, int(round(0.3 * s)))
        draw.line([(c - k, c - k), (c + k, c + k)], fill=fill, width=width)
        draw.line([(c - k, c + k), (c + k, c - k)], fill=fill, width=width)
    else:  # pragma: no cover - guarded by the factor lists
        raise ValueError(f"unknown glyph {glyph!r}")


def _background(kind: str, rng: np.random.Generator) -> np.ndarray:
    top, bottom, noise = _BACKGROUND_RGB[kind]
    t = np.linspace(0.0, 1.0, CANVAS, dtype=np.float32)[:, None, None]
    grad = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    img = np.broadcast_to(grad, (CANVAS, CANVAS, 3)) + rng.normal(0.0, noise, (CANVAS, CANVAS, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_sign(
    shape: str, rim: str, fill: str, glyph: str, background: str = "sky", *,
    angle: float = 0.0, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
    number: str = "50", rng: np.random.Generator | None = None, size: int = SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one sign. Returns ``(rgb uint8 (size, size, 3), mask float32 (size, size))`` where
    the mask is the sign's coverage in [0, 1] (its alpha). ``shift`` is in output pixels."""
    for key, value in (("shape", shape), ("rim", rim), ("fill", fill), ("glyph", glyph), ("background", background)):
        if value not in FACTOR_VALUES[key]:
            raise ValueError(f"unknown {key} {value!r}; valid: {FACTOR_VALUES[key]}")
    rng = rng if rng is not None else np.random.default_rng(0)
    layer = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    radius = RADIUS * scale
    rim_w = RIM_WIDTH * radius
    inner = radius - rim_w / _inradius_ratio(shape)
    _draw_shape(draw, shape, radius, COLORS[rim])
    _draw_shape(draw, shape, inner, COLORS[fill])
    glyph_color = COLORS["white"] if fill in _DARK_FILLS else COLORS["black"]
    _draw_glyph(draw, glyph, 0.75 * inner * _inradius_ratio(shape), glyph_color, number)
    factor = CANVAS / size
    if angle or shift != (0.0, 0.0):
        layer = layer.rotate(angle, resample=Image.BILINEAR, center=(CANVAS / 2, CANVAS / 2),
                             translate=(shift[0] * factor, shift[1] * factor))
    canvas = Image.fromarray(_background(background, rng), "RGB")
    canvas.paste(layer, (0, 0), layer)
    rgb = np.asarray(canvas.resize((size, size), Image.BOX))
    mask = np.asarray(layer.getchannel("A").resize((size, size), Image.BOX), dtype=np.float32) / 255.0
    return rgb, mask


@dataclass(frozen=True)
class SignsSetup:
    """Size and normal/anomalous mix of the synthetic signs.

    ``n``: number of images (``None``: 10,000 for train, 2,000 for test).
    ``normal_fraction``: share of normal (speed-limit-like) signs.
    ``near_miss_fraction``: share of anomalies that differ from the normal sign in one factor.
    ``normal``: the normal sign, factor -> value (default: circle, red rim, white fill, number).
    """

    n: int | None = None
    normal_fraction: float = 0.5
    near_miss_fraction: float = 0.25
    normal: tuple[tuple[str, str], ...] = tuple(NORMAL_SIGN.items())

    def __post_init__(self) -> None:
        if self.n is not None and (not isinstance(self.n, int) or self.n < 1):
            raise ValueError(f"signs: n must be a positive int, got {self.n!r}")
        for key in ("normal_fraction", "near_miss_fraction"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"signs: {key} must lie in [0, 1], got {value!r}")
        normal = dict(self.normal.items() if isinstance(self.normal, dict) else self.normal)
        for key, value in normal.items():
            if key not in SIGN_FACTORS:
                raise ValueError(f"signs: unknown factor {key!r} in normal; valid: {list(SIGN_FACTORS)}")
            check_values(f"signs {key}", [value], SIGN_FACTORS[key])
        if set(normal) != set(SIGN_FACTORS):
            raise ValueError(f"signs: normal must give a value for each of {list(SIGN_FACTORS)}, got {normal}")
        object.__setattr__(self, "normal", tuple((k, normal[k]) for k in SIGN_FACTORS))

    def is_normal(self, factors: dict[str, Any]) -> Any:
        """Whether signs with these factor indices (tensors or arrays per factor) are normal: every
        factor of :data:`SIGN_FACTORS` equals the normal sign's (the background is free)."""
        normal = None
        for key, value in self.normal:
            match = factors[key] == SIGN_FACTORS[key].index(value)
            normal = match if normal is None else normal & match
        return normal


_SPLIT_OFFSET = {"train": 0, "test": 7_919}
_DEFAULT_N = {"train": 10_000, "test": 2_000}


def sample_factors(n: int, setup: SignsSetup, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the factor indices of ``n`` signs (see the module docstring for the mix)."""
    keys = list(SIGN_FACTORS)
    sizes = np.array([len(SIGN_FACTORS[k]) for k in keys])
    normal_idx = np.array([SIGN_FACTORS[k].index(v) for k, v in setup.normal])
    out = np.empty((n, len(keys)), dtype=np.int64)
    kind = rng.random(n)
    for i in range(n):
        if kind[i] < setup.normal_fraction:
            out[i] = normal_idx
        elif rng.random() < setup.near_miss_fraction:
            out[i] = normal_idx
            j = rng.integers(len(keys))
            out[i, j] = (normal_idx[j] + rng.integers(1, sizes[j])) % sizes[j]
        else:
            while True:
                row = rng.integers(0, sizes)
                if not np.array_equal(row, normal_idx):
                    break
            out[i] = row
    factors = {k: out[:, j] for j, k in enumerate(keys)}
    factors["background"] = rng.integers(0, len(BACKGROUNDS), n)
    return factors


def sign_class_names() -> list[str]:
    """Name of each sign type (the class label is the index of the factor combination)."""
    import itertools

    return ["/".join(combo) for combo in itertools.product(*SIGN_FACTORS.values())]


def generate_signs(n: int, setup: SignsSetup, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``n`` signs: ``(uint8 images (n, 32, 32, 3), factor indices)``."""
    rng = np.random.default_rng(seed)
    factors = sample_factors(n, setup, rng)
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    angles = rng.uniform(-10, 10, n)
    scales = rng.uniform(0.85, 1.0, n)
    shifts = rng.uniform(-1.5, 1.5, (n, 2))
    numbers = rng.integers(0, len(_NUMBERS), n)
    for i in range(n):
        images[i], _ = render_sign(
            SHAPES[factors["shape"][i]], RIMS[factors["rim"][i]], FILLS[factors["fill"][i]],
            GLYPHS[factors["glyph"][i]], BACKGROUNDS[factors["background"][i]],
            angle=float(angles[i]), scale=float(scales[i]), shift=(float(shifts[i, 0]), float(shifts[i, 1])),
            number=_NUMBERS[numbers[i]], rng=rng,
        )
    return images, factors


def load_signs(split: str, root: Path, seed: int, download: bool | None, setup: SignsSetup) -> ADDataset:
    n = setup.n if setup.n is not None else _DEFAULT_N[split]
    images, factors = generate_signs(n, setup, seed * 10_007 + _SPLIT_OFFSET[split])
    keys = list(SIGN_FACTORS)
    label = np.ravel_multi_index(tuple(factors[k] for k in keys), tuple(len(SIGN_FACTORS[k]) for k in keys))
    normal = setup.is_normal(factors)
    return ADDataset(
        name="signs",
        split=split,
        images=torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).contiguous(),
        labels=torch.from_numpy(label),
        is_anomaly=torch.from_numpy(~normal),
        class_names=sign_class_names(),
        factors={k: torch.from_numpy(v) for k, v in factors.items()},
        factor_values=FACTOR_VALUES,
        normal_description="sign " + ", ".join(f"{k}={v}" for k, v in setup.normal),
        source=f"procedural signs (seed {seed})",
    )
