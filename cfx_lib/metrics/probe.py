"""Probes: does a small edit that changes no ground-truth factor make the detector call an anomaly
normal?

Counterfactual training finds the cheapest edits that a detector accepts. When those are small
marks (a short stroke in a corner) rather than a change of colour or digit, the detector itself
has a shortcut, and no generator that is faithful to it will produce counterfactuals in the
normal set. :func:`patch_probe` measures such a shortcut directly, without a generator: it pastes
a small solid patch into every image and reports how many φ then scores as normal.

Measured on ``colored_mnist`` (``quick``, BCE-OE, OE without the normal colour): a 5×2-pixel
vertical bar in the stroke's colour in the top-right corner made φ score 77% of the test anomalies
≤ 0.5 (18% without it); the counterfactual generator had found exactly such strokes. With strokes
in the OE (:func:`cfx_lib.data.load_outliers`) the same probe gives 4% (5% without the bar).

:func:`recolor_probe` asks the same of colour: it redraws every image's stroke in one RGB colour,
e.g. a tint between a normal and an anomalous palette colour. Measured on ``colored_mnist``
(``quick``, BCE-OE, seed 2): strokes in (0, 1, 0.25), green tinted a quarter toward cyan, are scored
≤ 0.5 for 80% of the test anomalies (12% in pure green), while the factor oracle still reads them as
green; the generator's "green" counterfactuals live in that margin.

:func:`shift_probe` asks it of position, on normal images: moving an image by a few pixels changes
no factor, so a detector that scores the moved normal images as anomalous reads position, and a
score loss that reads φ through random shifts (``CounterfactualConfig.score_shift``) then punishes
the edits whose result φ accepts only centred. Measured on ``colored_mnist`` (``quick``, BCE-OE,
seed 0, session 18): with shifts of up to 4 pixels (and pixel noise 0.05) φ scores 66% of the
normal training 1s that are not cyan above 0.5 (median 0.90) and none of the cyan digits; a
detector trained with ``DetectorConfig.shift_augment`` 4 scores 1% of those 1s above 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.outliers import paste_patch
from ..data.transforms import perturb
from ..detectors.detector import BaseDetector


@dataclass(frozen=True)
class PatchProbe:
    """What :func:`patch_probe` or :func:`recolor_probe` found: shares of images φ scores at or
    below the threshold, without and with the edit, and the median scores."""

    normal_share_before: float
    normal_share_after: float
    median_before: float
    median_after: float

    @property
    def flipped(self) -> float:
        """How much the edit raised the share of images that φ finds normal."""
        return self.normal_share_after - self.normal_share_before


def patch_probe(detector: BaseDetector, images: torch.Tensor, top: int = 1, left: int = 24, height: int = 5,
                width: int = 2, color: tuple[float, ...] | None = None, threshold: float = 0.5,
                batch_size: int = 512) -> PatchProbe:
    """Score ``images`` (usually test anomalies) with φ before and after :func:`paste_patch`.

    The defaults are a 5×2-pixel vertical bar in the top-right corner of a 28×28 image, in the
    image's own stroke colour. A large :attr:`PatchProbe.flipped` means that φ accepts a mark that
    changes neither the object nor its colour as a reason to be normal.
    """
    return _probe(detector, images, paste_patch(images, top, left, height, width, color), threshold, batch_size)


def recolor(images: torch.Tensor, color: tuple[float, float, float]) -> torch.Tensor:
    """``images`` (N, 3, H, W) in [0, 1] with each pixel redrawn in ``color`` (RGB in [0, 1]) at its
    own brightness (the maximum over channels): a recolouring that keeps the stroke."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"recolor needs RGB images (N, 3, H, W), got shape {tuple(images.shape)}")
    rgb = torch.as_tensor(color, dtype=images.dtype, device=images.device)
    if rgb.shape != (3,) or not bool(((rgb >= 0) & (rgb <= 1)).all()):
        raise ValueError(f"color must be three values (R, G, B) in [0, 1], got {color}")
    return images.amax(dim=1, keepdim=True) * rgb[None, :, None, None]


def redraw(images: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """Each of ``images`` (N, C, H, W) in [0, 1] redrawn as the shape of ``shapes[i]`` (N, C, H, W) in
    its own stroke colour (the brightest value per channel of ``images[i]``), at the shape's brightness
    (its maximum over channels): the mirror of :func:`recolor`, a change of the drawn object that keeps
    the colour. On ``colored_mnist`` with real 1s as ``shapes`` it is the digit route drawn exactly,
    as :func:`recolor` to cyan is the colour route."""
    if images.ndim != 4 or images.shape != shapes.shape:
        raise ValueError(f"redraw needs images and shapes of one shape (N, C, H, W), got {tuple(images.shape)} and "
                         f"{tuple(shapes.shape)}")
    return shapes.amax(dim=1, keepdim=True) * images.amax(dim=(2, 3))[:, :, None, None]


def recolor_probe(detector: BaseDetector, images: torch.Tensor, color: tuple[float, float, float],
                  threshold: float = 0.5, batch_size: int = 512) -> PatchProbe:
    """Score ``images`` (usually test anomalies) with φ before and after :func:`recolor` to
    ``color``. Probing a series of tints between an anomalous and a normal colour (e.g. (0, 1, t)
    from green to cyan) shows where φ's colour boundary lies, to compare with where the factor
    oracle reads the colour change."""
    return _probe(detector, images, recolor(images, color), threshold, batch_size)


def shift_probe(detector: BaseDetector, images: torch.Tensor, shift: int, noise: float = 0.0, threshold: float = 0.5,
                seed: int = 0, batch_size: int = 512, rotate: float = 0.0, scale: float = 0.0) -> PatchProbe:
    """Score ``images`` (usually normal ones) with φ before and after moving each by a random offset
    of up to ``shift`` pixels, turning it by up to ``rotate`` degrees and scaling it by up to ``scale``
    about its centre, plus Gaussian noise of std ``noise`` when given
    (:func:`cfx_lib.data.transforms.perturb`): the reading of φ that the counterfactual score loss uses with
    ``score_shift``, ``score_rotate``, ``score_scale`` and ``score_noise``. A negative
    :attr:`PatchProbe.flipped` is the share of images that φ finds normal only as they stand."""
    edited = perturb(images, noise, shift, torch.Generator().manual_seed(seed), rotate, scale)
    return _probe(detector, images, edited, threshold, batch_size)


def describe_reading(probe: PatchProbe, shift: int, noise: float, warn_at: float = 0.1, rotate: float = 0.0,
                     scale: float = 0.0) -> str:
    """One or two sentences on a :func:`shift_probe` of the normal training images with the score
    loss's ``shift``, ``noise``, ``rotate`` and ``scale``: how many φ finds normal clean and as the loss
    reads them, and, where the reading loses more than ``warn_at`` of them, a warning that the
    counterfactuals then explain φ read through those moves, which refuses routes to normality that φ
    accepts."""
    moves = [f"shifts of up to {shift} pixels"] if shift else []
    moves += [f"rotations of up to {rotate:g}°"] if rotate else []
    moves += [f"scalings of up to {scale:.0%}"] if scale else []
    if not moves and noise == 0:
        return "The score loss reads φ as it is (no shifts, no noise)."
    text = (f"φ finds {probe.normal_share_before:.0%} of the normal training images normal as they are and "
            f"{probe.normal_share_after:.0%} as the score loss reads them ({', '.join(moves + [f'noise {noise:g}'])}; "
            f"median score {probe.median_before:.4f} → {probe.median_after:.4f}).")
    if -probe.flipped > warn_at:
        text += (f" Warning: {-probe.flipped:.0%} of the normal images stop being normal when read so, and the "
                 "counterfactuals explain φ read that way, not φ: a way to normality that φ accepts "
                 "only as it stands is closed to them. Consider a lower score_shift (score_rotate and score_scale "
                 "keep a digit centred), or a detector trained with DetectorConfig.shift_augment "
                 "(benchmarks/bench_phi_reading.py shows which normal images).")
    return text


def _probe(detector: BaseDetector, images: torch.Tensor, edited: torch.Tensor, threshold: float,
           batch_size: int) -> PatchProbe:
    """Both probes' scoring (``score_images`` already runs without gradients and returns CPU tensors)."""
    before = detector.score_images(images, batch_size=batch_size)
    after = detector.score_images(edited, batch_size=batch_size)
    return PatchProbe(float((before <= threshold).float().mean()), float((after <= threshold).float().mean()),
                      float(before.median()), float(after.median()))
