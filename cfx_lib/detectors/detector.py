"""The detector interface: images in [0, 1] → anomaly scores in [0, 1], differentiable.

- :class:`BaseDetector` holds the input contract (shape) and checks every batch.
- :class:`Detector` is a trained network with its objective and normalisation statistics; it
  saves and loads as a checkpoint (``torch.load(..., weights_only=True)``).
- :func:`as_detector` wraps any ``nn.Module`` or callable that returns scores in [0, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..config import DETECTOR_KINDS
from ..io import load_torch, save_torch
from . import objectives
from .networks import build_network

CHECKPOINT_FORMAT = "cfx-detector/1"


class BaseDetector(nn.Module):
    """Maps a batch (B, C, H, W) of images with values in [0, 1] to scores (B,) in [0, 1],
    higher = more anomalous, differentiable with respect to the input."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.image_shape = tuple(int(v) for v in image_shape)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError saying what was expected when ``x`` is not a batch of this
        detector's images."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor batch, got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            c, h, w = self.image_shape
            raise ValueError(
                f"expected images of shape (B, {c}, {h}, {w}) (channels {c}, size {h}×{w}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")

    def scores(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.scores(x)

    def score_logits(self, x: torch.Tensor) -> torch.Tensor:
        """logit of the scores, (B,). Subclasses compute it without saturation (what losses on
        scores should use); this fallback takes the logit of clamped scores."""
        self.check_input(x)
        return torch.logit(self.scores(x), eps=1e-6)

    @torch.no_grad()
    def score_images(self, images: torch.Tensor, batch_size: int = 512, device: str | torch.device | None = None) -> torch.Tensor:
        """Scores of many images in eval mode, batched; returns a CPU tensor."""
        device = device or next(self.parameters(), torch.empty(0)).device
        was_training = self.training
        self.eval()
        out = [self(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0)


class Detector(BaseDetector):
    """A trained detector: network + objective + normalisation (+ DSVDD centre and scale)."""

    def __init__(self, kind: str, image_shape: tuple[int, int, int], mean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None) -> None:
        super().__init__(image_shape)
        if kind not in DETECTOR_KINDS:
            raise ValueError(f"unknown detector kind {kind!r}; valid: {list(DETECTOR_KINDS)}")
        self.kind = kind
        channels = self.image_shape[0]
        self.net = build_network(self.image_shape, bias=(kind != "dsvdd"), head=kind in ("bce", "supervised_bce"))
        self.register_buffer("mean", torch.zeros(channels) if mean is None else mean.detach().float().clone())
        self.register_buffer("std", torch.ones(channels) if std is None else std.detach().float().clone())
        rep_dim = self.net.rep_dim
        self.register_buffer("center", torch.zeros(rep_dim))
        self.register_buffer("scale", torch.ones(()))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The network output (logit for BCE, features otherwise) on normalised input."""
        return self.net(self.normalize(x))

    def loss(self, x: torch.Tensor, is_outlier: torch.Tensor) -> torch.Tensor:
        return objectives.loss(self.kind, self.raw(x), is_outlier, self.center)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return objectives.score(self.kind, self.raw(x), self.center, self.scale)

    def score_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return objectives.score_logit(self.kind, self.raw(x), self.center, self.scale)

    # --- checkpoints --------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "kind": self.kind, "image_shape": list(self.image_shape),
                "network": type(self.net).__name__}

    def checkpoint(self) -> dict[str, Any]:
        return {"config": self.config(), "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    def save(self, path: str | Path) -> None:
        """Write weights, configuration and normalisation statistics atomically."""
        save_torch(self.checkpoint(), path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], expect_kind: str | None = None,
                        expect_shape: tuple[int, int, int] | None = None) -> "Detector":
        config = ckpt.get("config") if isinstance(ckpt, dict) else None
        if not config or config.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a cfx detector checkpoint (no 'config' with format "
                             f"{CHECKPOINT_FORMAT!r}); was it written by Detector.save?")
        shape = tuple(config["image_shape"])
        if expect_kind is not None and config["kind"] != expect_kind:
            raise ValueError(f"checkpoint holds a {config['kind']!r} detector, expected {expect_kind!r}")
        if expect_shape is not None and shape != tuple(expect_shape):
            raise ValueError(f"checkpoint is for images of shape {shape}, expected {tuple(expect_shape)}")
        det = cls(config["kind"], shape)
        if type(det.net).__name__ != config["network"]:
            raise ValueError(f"checkpoint network {config['network']} does not match {type(det.net).__name__}")
        try:
            det.load_state_dict(ckpt["state_dict"])
        except RuntimeError as err:
            raise ValueError(f"checkpoint weights do not fit a {config['kind']} detector for {shape}: {err}") from err
        det.eval()
        return det

    @classmethod
    def load(cls, path: str | Path, expect_kind: str | None = None,
             expect_shape: tuple[int, int, int] | None = None, device: str | torch.device = "cpu") -> "Detector":
        """Load a checkpoint written by :meth:`save` (``weights_only=True``); refuse a checkpoint
        of another kind or image shape than expected, with a clear error."""
        return cls.from_checkpoint(load_torch(path), expect_kind, expect_shape).to(device)


class CallableDetector(BaseDetector):
    """Wraps a user ``nn.Module`` or callable returning scores in [0, 1]."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], image_shape: tuple[int, int, int], check_range: bool = True) -> None:
        super().__init__(image_shape)
        self.fn = fn  # an nn.Module is registered as a sub-module, a plain callable is kept
        self.check_range = check_range

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the wrapped detector must return a tensor, got {type(out).__name__}")
        out = out.reshape(len(x), -1)
        if out.shape[1] != 1:
            raise ValueError(f"the wrapped detector must return one score per image, got shape {tuple(out.shape)}")
        out = out[:, 0]
        if self.check_range and (out.min() < 0 or out.max() > 1):
            raise ValueError(
                f"the wrapped detector returned scores in [{out.min().item():.3g}, {out.max().item():.3g}]; "
                "scores must lie in [0, 1] (apply a sigmoid or another monotone map first)"
            )
        return out


def as_detector(fn: nn.Module | Callable[[torch.Tensor], torch.Tensor], image_shape: tuple[int, int, int], check_range: bool = True) -> BaseDetector:
    """Wrap any ``nn.Module`` or callable mapping images (B, C, H, W) in [0, 1] to scores in
    [0, 1] (higher = more anomalous) as a detector. A :class:`BaseDetector` is returned as is."""
    if isinstance(fn, BaseDetector):
        return fn
    if not callable(fn):
        raise TypeError(f"expected an nn.Module or a callable, got {type(fn).__name__}")
    return CallableDetector(fn, image_shape, check_range)
