"""Oracle classifiers of the ground-truth factors (digit and colour of ``colored_mnist``; shape,
rim, fill, glyph and background of ``signs``).

They are trained on real data only and used only for evaluation, never in training: they read
what a counterfactual *is* (e.g. "a cyan 7"), independently of the detector it explains. A
counterfactual that fools φ with an invisible perturbation keeps its oracle reading.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data._notice import notice
from ..data.transforms import random_shift
from ..device import resolve_device, seed_everything
from ..io import load_torch, save_torch

CHECKPOINT_FORMAT = "cfx-oracle/1"

#: an oracle reading counts only at this softmax probability or above: a blob that looks like no
#: digit must not count as a "1" because the digit head's argmax happens to say so
MIN_CONFIDENCE = 0.8

#: training epochs of an oracle. On the 4,000 offline colored_mnist training digits the digit head
#: reaches 0.937 held-out accuracy after 6 epochs but is confident (≥ MIN_CONFIDENCE) on only 71% of
#: real test digits; after 20 epochs 0.974 and 94%, after 40 epochs 0.974 and 97% (session 6;
#: 20 costs 48 s there, 40 costs 89 s). That was seed 0: on 10,000 real MNIST test digits the
#: 20-epoch oracles of seeds 0 / 1 / 2 read 0.925 / 0.883 / 0.864 confidently. Session 35's recipe 2
#: (40 epochs, a one-cycle learning rate, a shift per image): 0.939 / 0.923 / 0.925, confidently wrong
#: on ≤ 0.7%, with about as many synthetic letters read as confident digits (0.34 against 0.32)
#: (``benchmarks/bench_oracle.py``; docs/experiments.md, "Session 35")
ORACLE_EPOCHS = 40

#: the largest shift (pixels, each direction) of oracle training's augmentation, drawn per image
#: (:func:`cfx_lib.data.transforms.random_shift`)
ORACLE_SHIFT = 2
#: std of the pixel noise added to every augmented training image
ORACLE_NOISE = 0.03
#: the version of the training recipe, stored with every cached oracle: a cache written by another
#: recipe is retrained instead of loaded (1: the whole batch rolled by one shift and a constant
#: learning rate, up to session 34; 2: a shift per image with zeros filled in and a one-cycle
#: learning rate, session 35)
ORACLE_RECIPE = 2


class FactorOracle(nn.Module):
    """A small CNN with one classification head per factor. Input: images in [0, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], factor_sizes: dict[str, int], width: int = 32) -> None:
        super().__init__()
        if not factor_sizes:
            raise ValueError("an oracle needs at least one factor")
        self.image_shape = tuple(image_shape)
        self.factor_sizes = dict(factor_sizes)
        c = image_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(16 * width, size) for name, size in self.factor_sizes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"oracle expects images of shape (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")
        h = self.features(x * 2 - 1)
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512, min_confidence: float = 0.0) -> dict[str, torch.Tensor]:
        """The most likely value index of each factor, (N,) int64 tensors on the CPU; −1
        ("unreadable") where the oracle's probability of that value is below ``min_confidence``."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        outs: dict[str, list[torch.Tensor]] = {name: [] for name in self.factor_sizes}
        for i in range(0, len(images), batch_size):
            for name, logits in self(images[i : i + batch_size].to(device)).items():
                prob, pred = logits.softmax(1).max(1)
                pred[prob < min_confidence] = -1
                outs[name].append(pred.cpu())
        self.train(was)
        return {name: torch.cat(v) if v else torch.empty(0, dtype=torch.long) for name, v in outs.items()}

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        save_torch({"format": CHECKPOINT_FORMAT, "image_shape": list(self.image_shape),
                    "factor_sizes": self.factor_sizes, "meta": meta or {},
                    "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "FactorOracle":
        ckpt = load_torch(path)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a cfx oracle checkpoint (format {CHECKPOINT_FORMAT!r})")
        oracle = cls(tuple(ckpt["image_shape"]), ckpt["factor_sizes"])
        oracle.load_state_dict(ckpt["state_dict"])
        return oracle.to(device).eval()


@dataclass
class OracleReport:
    """A trained oracle and, per factor on held-out real data, its accuracy and its *confident*
    accuracy (the share read correctly with at least :data:`MIN_CONFIDENCE`). The latter is the
    ceiling of every oracle figure: a counterfactual that keeps a factor exactly still counts as
    changing it when the oracle is unsure of it."""

    oracle: FactorOracle
    accuracy: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    confident: dict[str, float] = field(default_factory=dict)
    #: the training recipe the oracle came from (:data:`ORACLE_RECIPE`), written beside the figures
    #: it reads (``oracle_recipe`` in a run's ``metrics.json``) so tables can tell instruments apart
    recipe: int = ORACLE_RECIPE


def train_oracle(train, test=None, epochs: int = ORACLE_EPOCHS, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                 device: str = "auto", progress: bool = True, recipe: int = ORACLE_RECIPE) -> OracleReport:
    """Train a :class:`FactorOracle` on every sample of an :class:`ADDataset` with ground-truth
    factors (normal and anomalous alike), and measure its accuracy per factor on ``test``.

    Augmentation makes the oracle read factors rather than pixel-exact training images, so that it
    also reads generated images: every image is moved by its own random shift of up to
    :data:`ORACLE_SHIFT` pixels (zeros come in from the border) and gets pixel noise. The learning
    rate follows a one-cycle schedule (warm-up, then annealing to ~0), so the weights the run ends
    with are not one noisy step of a constant rate.

    ``recipe`` 1 is the recipe of sessions ≤ 34 (the whole batch rolled by one shift of up to 2
    pixels, wrapping around; a constant learning rate), kept so that their oracle figures can be rerun
    (``benchmarks/bench_oracle.py --recipe 1``); see :data:`ORACLE_RECIPE`.
    """
    from tqdm.auto import tqdm

    if recipe not in (1, 2):
        raise ValueError(f"recipe must be 1 (sessions ≤ 34) or 2 (the current one, ORACLE_RECIPE), got {recipe!r}")
    if not train.factors:
        raise ValueError(f"dataset {train.name!r} has no ground-truth factors; oracles exist for datasets with "
                         "known factors (colored_mnist, signs)")
    dev = resolve_device(device)
    gen = seed_everything(seed)
    sizes = {name: len(values) for name, values in train.factor_values.items() if name in train.factors}
    oracle = FactorOracle(train.image_shape, sizes).to(dev)
    opt = torch.optim.Adam(oracle.parameters(), lr=lr)
    n = len(train)
    steps = epochs * len(range(0, n - 1, batch_size))  # every batch holds at least two images
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1)) if recipe == 2 else None
    t0 = time.perf_counter()
    for _ in tqdm(range(epochs), desc="oracle", disable=not progress):
        oracle.train()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - 1, batch_size):
            idx = perm[start : start + batch_size]
            if recipe == 2:
                x = random_shift(train.images[idx], ORACLE_SHIFT, gen)
            else:
                shift = torch.randint(-ORACLE_SHIFT, ORACLE_SHIFT + 1, (2,), generator=gen).tolist()
                x = torch.roll(train.images[idx], shifts=shift, dims=(2, 3))
            x = (x + ORACLE_NOISE * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            out = oracle(x.to(dev))
            loss = sum(F.cross_entropy(out[name], train.factors[name][idx].to(dev)) for name in sizes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
    oracle.eval()
    seconds = time.perf_counter() - t0
    accuracy = oracle_accuracy(oracle, test) if test is not None else {}
    confident = oracle_accuracy(oracle, test, MIN_CONFIDENCE) if test is not None else {}
    return OracleReport(oracle, accuracy, seconds, confident, recipe)


def oracle_accuracy(oracle: FactorOracle, data, min_confidence: float = 0.0) -> dict[str, float]:
    """Accuracy of each factor head on an :class:`ADDataset` with factors; a reading below
    ``min_confidence`` counts as wrong."""
    pred = oracle.predict(data.images, min_confidence=min_confidence)
    return {name: float((pred[name] == data.factors[name]).float().mean()) for name in pred}


def default_oracle_path(profile: str, dataset: str, seed: int, results_root: str | Path | None = None) -> Path:
    """Where a profile's oracle of ``dataset`` is cached: ``results/<profile>/oracles/<dataset>-s<seed>.pt``
    (oracles depend on the dataset's factors, not on its normal set or on a detector)."""
    from ..paths import default_results_root

    root = Path(results_root) if results_root is not None else default_results_root()
    return root / profile / "oracles" / f"{dataset}-s{seed}.pt"


def load_or_train_oracle(path: str | Path, train, test, epochs: int = ORACLE_EPOCHS, seed: int = 0, device: str = "auto",
                         progress: bool = True) -> OracleReport:
    """The factor oracle cached at ``path``: loaded when it exists and was trained on the same
    dataset with the same epochs, seed and :data:`ORACLE_RECIPE`; else trained on ``train``,
    measured on ``test`` and saved (atomically, replacing a cache of other settings, with a notice)."""
    path = Path(path)
    meta = {"dataset": train.name, "source": train.source, "n_train": len(train), "epochs": epochs, "seed": seed,
            "recipe": ORACLE_RECIPE}
    if path.is_file():
        ckpt = load_torch(path)
        saved = ckpt.get("meta", {}) if isinstance(ckpt, dict) else {}
        if {k: saved.get(k) for k in meta} == meta:
            oracle = FactorOracle.load(path, resolve_device(device))
            confident = saved.get("confident")
            if confident is None and test is not None:  # saved before confident accuracies were
                confident = oracle_accuracy(oracle, test, MIN_CONFIDENCE)
            return OracleReport(oracle, dict(saved.get("accuracy", {})), 0.0, dict(confident or {}), saved["recipe"])
        differ = {k: (saved.get(k), v) for k, v in meta.items() if saved.get(k) != v}
        notice(f"retraining the oracle cached at {path}: it was trained with other settings "
               f"({', '.join(f'{k} {old!r}, now {new!r}' for k, (old, new) in differ.items())})")
    report = train_oracle(train, test, epochs=epochs, seed=seed, device=device, progress=progress)
    report.oracle.save(path, meta | {"accuracy": report.accuracy, "confident": report.confident,
                                     "train_seconds": report.train_seconds})
    return report
