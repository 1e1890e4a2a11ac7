"""Outlier-exposure (OE) sources: images that are certainly not normal, shown to BCE and HSC
detectors during training. None of them draws on the classes that the test sets use as
anomalies (letters are not digits, CIFAR-100 shares no class with CIFAR-10, random shapes are
no signs of the procedural sign catalogue).

=================== ======================================================================
source              what
=================== ======================================================================
emnist_letters      torchvision EMNIST "letters" (download), for 28×28
cifar100            torchvision CIFAR-100 (download), for 32×32
synthetic_letters   offline stand-in for EMNIST: letters rendered with Pillow's bundled font
synthetic_shapes    offline stand-in for 32×32: random polygons, ellipses, stripes, text
synthetic           ``synthetic_letters`` for 28×28, ``synthetic_shapes`` for 32×32
=================== ======================================================================

Grayscale sources are coloured from the coloured-MNIST palette when three channels are asked
for: every colour by default, or the ``colors`` given. For ``colored_mnist``, the notebooks give
the colours that are *not* normal (:func:`cfx_lib.data.oe_options`): a letter in the normal colour
would teach a BCE detector that the normal colour is not enough to be normal, and it then scores
digits in colours near the normal one (green and blue beside cyan) as nearly normal. Measured in
the ``quick`` profile: with cyan letters in the OE, BCE-OE scored 42% of the test anomalies
≤ 0.5 (82% of the green ones); without them, 18%.

``strokes`` pastes a short bar (1–2 × 4–8 pixels, vertical or horizontal, in the image's own
colour, anywhere) into that share of the OE images. On digit datasets a bar is a fragment of a
normal "1"; without such outliers a BCE detector learns that any 1-like stroke is a reason to be
normal, and counterfactual training finds that shortcut (:func:`cfx_lib.metrics.patch_probe` measures it):
a 5×2 bar in a corner made BCE-OE trained without strokes score 77% of the ``colored_mnist`` test
anomalies ≤ 0.5 (18% without the bar); trained with ``strokes=0.5``, 4% (5% without the bar).

``marks`` (0 in every profile; ``oe={"marks": ...}`` of :func:`cfx_lib.notebook.obtain_detector`)
pastes a small solid blob (2–4 × 2–4 pixels, anywhere; half in the image's own colour, half in
another palette colour or white) into that share of the OE images, after the strokes. Counterfactuals
read through rotations (session 47) added such a dot to fragments of digits, and φ accepts it: on the
``quick`` BCE-OE detectors of whole seeds 2 / 0 / 1, a 4×4 blob at nine places in the upper half raises
the share of test anomalies scored ≤ 0.5 from 0.06 / 0.05 / 0.08 to 0.10–0.12 in their own colour and
0.10–0.21 in magenta, white or yellow; trained with ``marks=0.5``, 0.06–0.08 and 0.04–0.06 (0.05 / 0.03 /
0.06 without a blob), with the AuROC unchanged (0.995–0.998). The generators still add dots, and the
option is off (``docs/experiments.md``, "Session 48").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..paths import offline
from .base import check_choice, check_values
from .colored_mnist import COLOR_NAMES, PALETTE, colorize
from .signs import _font
from .torchvision_sets import DatasetUnavailable

#: the keywords of :func:`load_outliers` that say how OE images are drawn (beyond source, number and shape)
OE_DRAW_OPTIONS = ("colors", "strokes", "marks")
OE_SOURCES = ["synthetic", "synthetic_letters", "synthetic_shapes", "emnist_letters", "cifar100"]
#: letters rendered offline; those easily read as digits (I l i O o Z z S s B G b g q) are left out
LETTERS = "ACDEFHJKLMNPQRTUVWXYacdefhjkmnprtuvwxy"


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _match_channels(gray_or_rgb: torch.Tensor, channels: int, gen: torch.Generator,
                    colors: Sequence[str] | None = None) -> torch.Tensor:
    c = gray_or_rgb.shape[1]
    if c == channels:
        return gray_or_rgb
    if channels == 1:
        return gray_or_rgb.mean(dim=1, keepdim=True)
    if colors is None:  # the whole palette (kept as its own draw so that default OE stays as it was)
        idx = torch.randint(len(PALETTE), (len(gray_or_rgb),), generator=gen)
    else:
        allowed = torch.tensor([COLOR_NAMES.index(c) for c in colors])
        idx = allowed[torch.randint(len(allowed), (len(gray_or_rgb),), generator=gen)]
    return colorize(gray_or_rgb[:, 0], idx)


def add_strokes(images: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """``images`` (N, C, H, W) in [0, 1] with a short vertical or horizontal bar pasted into a
    ``share`` of them (1–2 pixels wide, 4–8 long, at a random place, in each image's brightest
    value per channel, i.e. its stroke colour); the others unchanged."""
    out = images.clone()
    for i in _picked(images, share, "strokes", gen):
        long, thin = int(torch.randint(4, 9, (1,), generator=gen)), int(torch.randint(1, 3, (1,), generator=gen))
        bh, bw = (long, thin) if torch.rand(1, generator=gen) < 0.5 else (thin, long)
        top, left = _place(images.shape, bh, bw, gen)
        out[i : i + 1] = paste_patch(out[i : i + 1], top, left, bh, bw)
    return out


def _picked(images: torch.Tensor, share: float, what: str, gen: torch.Generator) -> list[int]:
    """The indices of about ``share`` of ``images``, drawn from ``gen``: those that get a pasted ``what``."""
    if not 0 <= share <= 1:
        raise ValueError(f"the share of OE images with {what} must be in [0, 1], got {share}")
    return torch.nonzero(torch.rand(len(images), generator=gen) < share).flatten().tolist()


def _place(shape: torch.Size, height: int, width: int, gen: torch.Generator) -> tuple[int, int]:
    """A random (top, left) at which a ``height`` × ``width`` patch fits into images of ``shape`` (N, C, H, W)."""
    h, w = shape[-2:]
    return int(torch.randint(0, h - height + 1, (1,), generator=gen)), int(torch.randint(0, w - width + 1, (1,), generator=gen))


def add_marks(images: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """``images`` (N, C, H, W) in [0, 1] with a small solid blob (2–4 × 2–4 pixels, at a random
    place) pasted into a ``share`` of them; the others unchanged. Half the blobs are in the image's
    own stroke colour (its brightest value per channel), half in another colour: for three channels
    a palette colour or white, drawn at random, for one channel full brightness. A blob is neither a
    digit nor a colour of the image, so an OE image with one teaches a detector that such a mark is
    no reason to be normal (the counterfactuals of session 47 added one to fragments of digits)."""
    out = images.clone()
    c = images.shape[1]
    colors = torch.tensor([*PALETTE.values(), (1.0, 1.0, 1.0)], dtype=images.dtype) if c == 3 else None
    for i in _picked(images, share, "marks", gen):
        bh, bw = (int(v) for v in torch.randint(2, 5, (2,), generator=gen))
        top, left = _place(images.shape, bh, bw, gen)
        own = bool(torch.rand(1, generator=gen) < 0.5)
        if own:
            color = None
        elif colors is None:
            color = (1.0,) * c
        else:
            color = tuple(colors[int(torch.randint(len(colors), (1,), generator=gen))].tolist())
        out[i : i + 1] = paste_patch(out[i : i + 1], top, left, bh, bw, color)
    return out


def paste_patch(images: torch.Tensor, top: int, left: int, height: int, width: int,
                color: tuple[float, ...] | None = None) -> torch.Tensor:
    """A copy of ``images`` (N, C, H, W) with a solid patch at (top, left) of the given size, in
    ``color`` (one value per channel), or, when None, in each image's brightest value per channel
    (the stroke's colour on a dark background)."""
    n, c, h, w = images.shape
    if not (0 <= top and top + height <= h and 0 <= left and left + width <= w and height > 0 and width > 0):
        raise ValueError(f"a {height}×{width} patch at ({top}, {left}) does not fit into {h}×{w} images")
    if color is None:
        fill = images.amax(dim=(2, 3))
    else:
        if len(color) != c:
            raise ValueError(f"color needs one value per channel ({c}), got {len(color)}")
        fill = torch.tensor(color, dtype=images.dtype).expand(n, c)
    out = images.clone()
    out[:, :, top : top + height, left : left + width] = fill[:, :, None, None]
    return out


def synthetic_letters(n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` grayscale letters (N, 1, size, size) in [0, 1], like EMNIST letters (white on black)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        canvas = Image.new("L", (2 * size, 2 * size), 0)
        draw = ImageDraw.Draw(canvas)
        font = _font(int(rng.integers(int(1.1 * size), int(1.6 * size))))
        stroke = int(rng.integers(1, 4))
        c = size + rng.uniform(-0.15, 0.15, 2) * size
        draw.text((c[0], c[1]), LETTERS[rng.integers(len(LETTERS))], fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255)
        canvas = canvas.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR)
        out[i] = np.asarray(canvas.resize((size, size), Image.BOX))
    return torch.from_numpy(out).float().div(255.0).unsqueeze(1)


def synthetic_shapes(n: int, size: int, seed: int) -> torch.Tensor:
    """``n`` RGB images (N, 3, size, size) of random polygons, ellipses, stripes and characters
    on random gradient backgrounds with noise."""
    rng = np.random.default_rng(seed)
    big = 2 * size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    t = np.linspace(0, 1, big, dtype=np.float32)[:, None, None]
    for i in range(n):
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        bg = (1 - t) * top + t * bottom + rng.normal(0, rng.uniform(0, 20), (big, big, 3))
        canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, 4))):
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            kind = rng.integers(4)
            cx, cy = rng.uniform(0.2, 0.8, 2) * big
            r = rng.uniform(0.15, 0.5) * big
            if kind == 0:  # irregular polygon
                k = int(rng.integers(3, 8))
                angles = np.sort(rng.uniform(0, 2 * math.pi, k))
                radii = r * rng.uniform(0.5, 1.0, k)
                draw.polygon([(cx + a * math.cos(b), cy + a * math.sin(b)) for a, b in zip(radii, angles)], fill=color)
            elif kind == 1:  # ellipse, possibly with a ring
                rx, ry = r, r * rng.uniform(0.4, 1.0)
                draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=color,
                             outline=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(0, 6)))
            elif kind == 2:  # stripes
                step = int(rng.integers(3, 10))
                width = max(1, step // 2)
                for x in range(-big, 2 * big, step):
                    draw.line([(x, 0), (x + rng.uniform(-big, big), big)], fill=color, width=width)
            else:  # a character
                font = _font(int(rng.integers(size // 2, int(1.5 * size))))
                draw.text((cx, cy), chr(int(rng.integers(33, 127))), fill=color, font=font, anchor="mm")
        out[i] = np.asarray(canvas.resize((size, size), Image.BOX))
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(255.0).contiguous()


def _emnist_letters(root: Path, download: bool) -> torch.Tensor:
    from torchvision.datasets import EMNIST

    try:
        ds = EMNIST(str(root), split="letters", train=True, download=download)
    except Exception as err:
        raise DatasetUnavailable(
            f"EMNIST letters are not under {root} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Put the processed EMNIST files at {root / 'EMNIST' / 'raw'} (torchvision layout), or use "
            f"oe_source='synthetic_letters' offline."
        ) from err
    return ds.data.transpose(1, 2).float().div(255.0).unsqueeze(1)  # EMNIST is stored transposed


def _cifar100(root: Path, download: bool) -> torch.Tensor:
    from torchvision.datasets import CIFAR100

    try:
        ds = CIFAR100(str(root), train=True, download=download)
    except Exception as err:
        raise DatasetUnavailable(
            f"CIFAR-100 is not under {root} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Put the extracted folder 'cifar-100-python' at {root / 'cifar-100-python'}, or use "
            f"oe_source='synthetic_shapes' offline."
        ) from err
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div(255.0)


def load_outliers(
    source: str, n: int, image_shape: tuple[int, int, int], seed: int = 0,
    root: str | Path | None = None, download: bool | None = None, colors: Sequence[str] | None = None,
    strokes: float = 0.0, marks: float = 0.0,
) -> torch.Tensor:
    """Return ``n`` OE images shaped ``image_shape`` = (C, H, W), float32 in [0, 1].

    Deterministic given ``seed``. Downloadable sources sample ``n`` images from the set.
    ``colors``: the palette colours (``cfx_lib.data.colored_mnist.COLOR_NAMES``) in which
    grayscale sources are drawn when three channels are asked for; None = all of them.
    ``strokes``: the share of images into which :func:`add_strokes` pastes a bar (default 0).
    ``marks``: the share of images into which :func:`add_marks` then pastes a blob (default 0; drawn
    after everything else, so OE without marks is the same draw as before the option existed).
    """
    from ..paths import default_data_root

    check_choice("OE source", source, OE_SOURCES)
    channels, height, width = image_shape
    if height != width or channels not in (1, 3):
        raise ValueError(f"OE images must be square with 1 or 3 channels, got shape {image_shape}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if colors is not None:
        colors = check_values("OE colour", colors, COLOR_NAMES)
        if not colors:
            raise ValueError(f"colors must name at least one palette colour ({COLOR_NAMES}), or be None for all")
    root = Path(root) if root is not None else default_data_root()
    download = (not offline()) if download is None else download
    gen = torch.Generator().manual_seed(seed)
    if source == "synthetic":
        source = "synthetic_letters" if height <= 28 else "synthetic_shapes"
    if source == "synthetic_letters":
        images = synthetic_letters(n, height, seed)
    elif source == "synthetic_shapes":
        images = synthetic_shapes(n, height, seed)
    else:
        pool = _emnist_letters(root, download) if source == "emnist_letters" else _cifar100(root, download)
        images = _resize(pool[torch.randperm(len(pool), generator=gen)[:n]], height)
    images = _match_channels(images, channels, gen, colors).clamp(0, 1)
    if strokes:
        images = add_strokes(images, strokes, gen)
    if marks:
        images = add_marks(images, marks, gen)
    return images.contiguous()
