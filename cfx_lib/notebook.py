"""What every notebook does first: find the repository, resolve the profile, validate the
parameters, choose its output folder and record its parameters and software environment.

Results tree: ``results/<profile>/runs/<run-id>/<notebook>/`` where the run id names the
dataset, the normal set, the detector and the seed (FCDD-style stable paths, no timestamps).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DETECTOR_KINDS, Profile, get_profile
from .data.registry import DATASETS, make_setup
from .io import write_json
from .paths import default_results_root, find_repo_root


def normal_tag(normal: dict[str, Any] | None) -> str:
    """A short stable name of a normal-set parameter dict ("default" when empty)."""
    if not normal:
        return "default"
    return "n" + hashlib.sha1(json.dumps(normal, sort_keys=True).encode()).hexdigest()[:8]


def run_id(dataset: str, normal: dict[str, Any] | None, seed: int, detector: str | None = None) -> str:
    """The run folder name: ``<dataset>-<normal>[-<detector>]-s<seed>``."""
    parts = [dataset, normal_tag(normal)] + ([detector] if detector else []) + [f"s{seed}"]
    return "-".join(parts)


def run_dir(profile: str, dataset: str, normal: dict[str, Any] | None, seed: int,
            detector: str | None = None, results_root: str | Path | None = None) -> Path:
    """``results/<profile>/runs/<run-id>``."""
    root = Path(results_root) if results_root is not None else default_results_root()
    return root / profile / "runs" / run_id(dataset, normal, seed, detector)


@dataclass
class NotebookRun:
    """The context of one notebook execution."""

    repo: Path
    profile: Profile
    out_dir: Path
    params: dict[str, Any]
    data_root: Path

    def path(self, name: str) -> Path:
        """A file in the notebook's output folder."""
        return self.out_dir / name

    def resolve(self, path: str | Path) -> Path:
        """A user-given path: as given when absolute or present from the working directory, else
        relative to the repository root (papermill runs notebooks from ``notebooks/``)."""
        p = Path(path)
        return p if p.is_absolute() or p.exists() else self.repo / p


def cpu_name() -> str:
    """The processor's model name (Linux: ``/proc/cpuinfo``; elsewhere ``platform.processor()``),
    or ``"unknown"``."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """What decides whether a seeded CPU run repeats bit for bit, and how fast it runs, besides its
    parameters: the Python, torch and torchvision versions, the machine, its processor and the
    instruction set torch's CPU kernels use (``cpu_capability``: e.g. AVX2 or AVX512), and torch's
    intra-op thread count.

    The thread count matters: the same seed trained with ``OMP_NUM_THREADS=1`` and with 2 threads
    gives different generators (docs/experiments.md, "The thread count is part of the seed"). The
    processor sets the speed: the `quick` generator trained at 1.6-1.8 it/s on the 2-core CPU of
    earlier sessions and at 0.75 it/s on an AVX2-only AMD EPYC (docs/experiments.md, "Session 24").
    """
    import platform

    import torch
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "machine": platform.machine(), "system": platform.system(), "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}


def start(notebook: str, params: dict[str, Any], *, dataset: str, normal: dict[str, Any] | None, seed: int,
          detector: str | None = None, output_dir: str | Path | None = None,
          data_root: str | Path | None = None) -> NotebookRun:
    """Validate a notebook's parameters, create its output folder and write ``params.json`` and
    ``environment.json`` (:func:`environment`).

    Unknown dataset or detector names, bad normal sets and unknown profiles raise a ValueError
    that lists the valid values.
    """
    repo = find_repo_root()
    profile = get_profile(params.get("PROFILE"))
    if dataset not in DATASETS:
        raise ValueError(f"unknown DATASET {dataset!r}; valid: {list(DATASETS)}")
    make_setup(dataset, **(normal or {}))  # validates the normal set
    if detector is not None and detector not in DETECTOR_KINDS:
        raise ValueError(f"unknown DETECTOR {detector!r}; valid: {list(DETECTOR_KINDS)}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"SEED must be a non-negative int, got {seed!r}")
    out = Path(output_dir) if output_dir else run_dir(profile.name, dataset, normal, seed, detector) / notebook
    out.mkdir(parents=True, exist_ok=True)
    data = Path(data_root) if data_root else Path(os.environ.get("CFX_DATA_ROOT", repo / "data"))
    record = {k: v for k, v in params.items() if k.isupper()} | {"PROFILE": profile.name}
    write_json(record, out / "params.json")
    write_json(environment(), out / "environment.json")
    return NotebookRun(repo=repo, profile=profile, out_dir=out, params=record, data_root=data)


def obtain_detector(run: NotebookRun, dataset: str, normal: dict[str, Any] | None, kind: str, seed: int, train,
                    checkpoint: str | Path | None = None, device: str = "auto", progress: bool = True,
                    options: dict[str, Any] | None = None, oe: dict[str, Any] | None = None):
    """The detector a notebook explains, and where it came from.

    In order: ``checkpoint`` when given; else the ``detector.pt`` that notebook 02 wrote for the
    same profile, dataset, normal set, detector and seed (only without ``options`` and ``oe``); else a
    detector trained now with the profile's schedule, changed by ``options`` (fields of
    :class:`~cfx_lib.config.DetectorConfig`, e.g. ``{"shift_augment": 4}``), for ``bce``, ``hsc``,
    ``dsvdd``, written to ``<out_dir>/detector``. ``oe`` overrides how its OE images are drawn
    (keyword arguments of :func:`cfx_lib.data.load_outliers`, e.g. ``{"marks": 0.5}``; see :func:`oe_images`).
    """
    from .detectors import Detector, train_detector
    from .device import resolve_device

    if checkpoint and (options or oe):
        asked = {**(options or {}), **({"oe": oe} if oe else {})}
        raise ValueError(f"detector options {asked} change how a detector is trained; they cannot change the "
                         f"checkpoint {checkpoint}")
    dev = resolve_device(device)
    if checkpoint:
        checkpoint = run.resolve(checkpoint)
        return Detector.load(checkpoint, expect_kind=kind, expect_shape=train.image_shape, device=dev), str(checkpoint)
    path = run_dir(run.profile.name, dataset, normal, seed, kind) / "02_detector" / "detector.pt"
    if path.is_file() and not options and not oe:
        return Detector.load(path, expect_kind=kind, expect_shape=train.image_shape, device=dev), str(path)
    cfg = run.profile.detector_config(kind, train.image_shape[-1], seed=seed, device=device, **(options or {}))
    outliers = oe_images(run, dataset, kind, seed, train.image_shape, normal, oe=oe)
    result = train_detector(cfg, train.normal.images, outliers, out_dir=run.out_dir / "detector", progress=progress,
                           on_mismatch="restart")
    return result.detector.to(dev), f"trained now ({cfg.epochs} epochs) into {run.out_dir / 'detector'}"


def oe_images(run: NotebookRun, dataset: str, kind: str, seed: int, image_shape: tuple[int, int, int],
              normal: dict[str, Any] | None = None, source: str | None = None, oe: dict[str, Any] | None = None):
    """The outlier-exposure images a ``kind`` detector trains with under the run's profile
    (notebook 02's draw), or None for ``dsvdd``: ``source`` (default: the profile's) drawn as
    :func:`cfx_lib.data.oe_options` says for the dataset and ``normal`` (colours, strokes), changed by
    ``oe`` (keyword arguments of :func:`cfx_lib.data.load_outliers`: ``colors``, ``strokes``, ``marks``).
    ``supervised_bce`` has no OE: its labelled anomalies come from notebook 02's parameters, so it
    is refused here."""
    from .data import load_outliers, oe_options
    from .data.outliers import OE_DRAW_OPTIONS

    unknown = set(oe or {}) - set(OE_DRAW_OPTIONS)
    if unknown:
        raise ValueError(f"unknown OE options {sorted(unknown)}; valid: {sorted(OE_DRAW_OPTIONS)}")
    if kind == "supervised_bce":
        raise ValueError("a supervised_bce detector needs labelled anomalies: run notebook 02 with "
                         "SUPERVISED_ANOMALIES first, or pass its checkpoint")
    if kind not in ("bce", "hsc"):
        return None
    return load_outliers(source or run.profile.oe_source(dataset), run.profile.n_oe, image_shape, seed=seed + 1,
                         root=run.data_root, **{**oe_options(dataset, **(normal or {})), **(oe or {})})


def obtain_explainer(run: NotebookRun, dataset: str, normal: dict[str, Any] | None, kind: str, seed: int,
                     explainer: str | Path | None = None, device: str = "auto"):
    """The trained explainer (detector + generator) a notebook shows, and where it came from:
    ``explainer`` when given, else the ``explainer.pt`` that notebook 03 wrote for the same
    profile, dataset, normal set, detector and seed.

    Raises:
        FileNotFoundError: neither exists; the message names the notebook to run first.
    """
    from .counterfactual import load_explainer
    from .device import resolve_device

    path = run.resolve(explainer) if explainer else \
        run_dir(run.profile.name, dataset, normal, seed, kind) / "03_counterfactual" / "explainer.pt"
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"no trained explainer at {path}: run notebook 03_counterfactual for profile {run.profile.name!r}, "
            f"dataset {dataset!r} and detector {kind!r} (seed {seed}) first, or pass EXPLAINER")
    found = load_explainer(path, device=resolve_device(device))
    meta_kind = found.meta.get("detector")
    if meta_kind is not None and meta_kind != kind:
        raise ValueError(f"{path} explains a {meta_kind!r} detector, not {kind!r}")
    return found, str(path)
