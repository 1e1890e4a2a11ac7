"""Training of the detectors: Adam + MultiStepLR, normal batches with equal-sized OE batches,
a checkpoint each epoch (written atomically), resume from the last one, NaN guard."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import DetectorConfig
from ..data.transforms import random_shift
from ..device import resolve_device, seed_everything
from ..io import resumable_state, save_torch
from .detector import Detector

LAST = "detector_last.pt"  # training state, for resume
FINAL = "detector.pt"  # the trained detector alone


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class DetectorTrainResult:
    """The trained detector, its per-epoch history and the training wall time (seconds)."""

    detector: Detector
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    resumed_epoch: int = 0


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of images (N, C, H, W)."""
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean, std


@torch.no_grad()
def init_center(det: Detector, normal: torch.Tensor, device: torch.device, eps: float = 0.1) -> torch.Tensor:
    """DSVDD centre: mean feature of the normal data at initialisation (eval mode); entries with
    |c| < eps pushed to ±eps (as in Ruff et al.'s code)."""
    det.eval()
    feats = torch.cat([det.raw(normal[i : i + 512].to(device)) for i in range(0, len(normal), 512)])
    c = feats.mean(dim=0)
    c[(c.abs() < eps) & (c < 0)] = -eps
    c[(c.abs() < eps) & (c >= 0)] = eps
    return c


@torch.no_grad()
def calibrate_dsvdd(det: Detector, normal: torch.Tensor, device: torch.device, quantile: float = 0.95) -> torch.Tensor:
    """The DSVDD score scale: the ``quantile`` of squared distances over normal training data."""
    from .objectives import dsvdd_distance

    det.eval()
    d = torch.cat([dsvdd_distance(det.raw(normal[i : i + 512].to(device)), det.center) for i in range(0, len(normal), 512)])
    return torch.quantile(d.float().cpu(), quantile).clamp_min(1e-8).to(device)


def _state(det: Detector, opt: torch.optim.Optimizer, epoch: int, history: list, cfg: DetectorConfig,
           gen: torch.Generator, elapsed: float, fingerprint: dict) -> dict[str, Any]:
    return {
        "detector": det.checkpoint(),
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "history": history,
        "train_config": cfg.to_dict() | {"milestones": list(cfg.milestones)},
        "fingerprint": fingerprint,
        "torch_rng": torch.get_rng_state(),
        "generator": gen.get_state(),
        "elapsed": elapsed,
    }


def train_detector(
    cfg: DetectorConfig, normal: torch.Tensor, outliers: torch.Tensor | None = None,
    out_dir: str | Path | None = None, progress: bool = True, resume: bool = True, on_mismatch: str = "error",
) -> DetectorTrainResult:
    """Train a detector.

    Args:
        cfg: the objective and schedule (:class:`cfx_lib.config.DetectorConfig`).
        normal: normal training images (N, C, H, W) in [0, 1].
        outliers: OE images (``bce``, ``hsc``) or labelled anomalies (``supervised_bce``);
            must be None for ``dsvdd``.
        out_dir: where ``detector_last.pt`` (each epoch) and ``detector.pt`` (at the end) go;
            None trains in memory only.
        progress: show a tqdm progress bar over epochs.
        resume: continue from ``out_dir/detector_last.pt`` when it holds the same configuration.
        on_mismatch: what to do with a ``detector_last.pt`` of another configuration or dataset:
            ``"error"`` (a ValueError) or ``"restart"`` (move it to ``detector_last.stale.pt``, warn
            and train anew; the notebooks' choice).

    Raises:
        TrainingDiverged: the loss became NaN/inf (the last good checkpoint stays on disk).
    """
    from tqdm.auto import tqdm

    needs_outliers = cfg.kind in ("bce", "hsc", "supervised_bce")
    if needs_outliers and (outliers is None or len(outliers) == 0):
        raise ValueError(f"a {cfg.kind!r} detector needs outlier images (OE or labelled anomalies)")
    if cfg.kind == "dsvdd" and outliers is not None:
        raise ValueError("dsvdd trains on normal data only; pass outliers=None")
    if normal.ndim != 4 or len(normal) < 2:
        raise ValueError(f"normal must be (N, C, H, W) with N >= 2, got {tuple(normal.shape)}")
    if outliers is not None and outliers.shape[1:] != normal.shape[1:]:
        raise ValueError(f"outliers have shape {tuple(outliers.shape[1:])}, normal data {tuple(normal.shape[1:])}")

    device = resolve_device(cfg.device)
    gen = seed_everything(cfg.seed)
    mean, std = channel_stats(normal)
    det = Detector(cfg.kind, tuple(normal.shape[1:]), mean, std).to(device)
    opt = torch.optim.Adam(det.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    fingerprint = {"n_normal": len(normal), "n_outliers": 0 if outliers is None else len(outliers),
                   "normal_sum": round(float(normal.double().sum()), 3),
                   "outliers_sum": 0.0 if outliers is None else round(float(outliers.double().sum()), 3)}
    history: list[dict[str, float]] = []
    start_epoch, elapsed = 0, 0.0

    out = Path(out_dir) if out_dir is not None else None
    current = cfg.to_dict() | {"milestones": list(cfg.milestones)}

    def mismatch(state: dict[str, Any]) -> str | None:
        # a checkpoint written before an option existed was trained with its default
        saved_cfg = {**DetectorConfig(kind=cfg.kind).to_dict(), **state["train_config"]}
        same = {k: v for k, v in saved_cfg.items() if k != "epochs"} == {k: v for k, v in current.items() if k != "epochs"}
        # OE of the same size drawn otherwise (e.g. with marks) is another dataset; a checkpoint written
        # before the OE's checksum was recorded is compared on what it holds
        saved_fp = state["fingerprint"]
        same_data = set(saved_fp) <= set(fingerprint) and all(saved_fp[k] == fingerprint[k] for k in saved_fp)
        if same and same_data and state["epoch"] <= cfg.epochs:
            return None
        return f"was written for another configuration or dataset (only more epochs may be asked for; saved: {saved_cfg})"

    state = resumable_state(out / LAST if out is not None else None, resume, on_mismatch, mismatch)
    if state is not None:
        det.load_state_dict(state["detector"]["state_dict"])
        opt.load_state_dict(state["optimizer"])  # holds the learning rate reached so far
        sched.last_epoch = int(state["epoch"])
        torch.set_rng_state(state["torch_rng"])
        gen.set_state(state["generator"])
        history, start_epoch, elapsed = list(state["history"]), int(state["epoch"]), float(state["elapsed"])
    elif cfg.kind == "dsvdd":
        det.center.copy_(init_center(det, normal, device))

    n = len(normal)
    bs = min(cfg.batch_size, n)
    bar = tqdm(range(start_epoch, cfg.epochs), desc=f"{cfg.kind} detector", disable=not progress,
               initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        det.train()
        perm = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        for start in range(0, n - bs + 1, bs):  # drop the incomplete last batch (BatchNorm needs > 1 sample)
            x = normal[perm[start : start + bs]]
            y = torch.zeros(len(x))
            if outliers is not None:
                o = outliers[torch.randint(len(outliers), (len(x),), generator=gen)]
                x, y = torch.cat([x, o]), torch.cat([y, torch.ones(len(o))])
            x = random_shift(x, cfg.shift_augment, gen)
            loss = det.loss(x.to(device), y.to(device))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"{cfg.kind} loss became {loss.item()} in epoch {epoch + 1}; training stopped"
                    + (f", the last good checkpoint is {out / LAST}" if out is not None and (out / LAST).exists() else "")
                    + ". Try a lower lr."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        sched.step()
        elapsed += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": total / max(batches, 1), "lr": opt.param_groups[0]["lr"],
                        "seconds": elapsed})
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
        if out is not None:
            save_torch(_state(det, opt, epoch + 1, history, cfg, gen, elapsed, fingerprint), out / LAST)

    if cfg.kind == "dsvdd":
        det.scale.copy_(calibrate_dsvdd(det, normal, device))
    det.eval()
    if out is not None:
        det.save(out / FINAL)
    if history and not math.isfinite(history[-1]["loss"]):  # pragma: no cover - guarded above
        raise TrainingDiverged("final loss is not finite")
    return DetectorTrainResult(det, history, elapsed, start_epoch)
