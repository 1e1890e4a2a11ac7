"""Atomic writes: a file is written to a temporary sibling, then renamed over the target, so
an interrupted run never leaves a half-written checkpoint, table or metrics file. Also the safe
loading of checkpoints and what the trainers do with one they cannot resume."""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_torch(obj: Any, path: str | Path) -> None:
    """``torch.save`` atomically. Save only tensors and plain Python types, so that the file
    loads with ``torch.load(..., weights_only=True)``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint safely (``weights_only=True``: no unpickling of arbitrary code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    return torch.load(path, map_location=map_location, weights_only=True)


#: what a trainer does with a checkpoint written for another configuration, dataset or detector
ON_MISMATCH = ("error", "restart")


def resumable_state(path: Path | None, resume: bool, on_mismatch: str,
                    mismatch: Callable[[Any], str | None]) -> Any | None:
    """The training state to resume from ``path``, or None: no checkpoint there, ``resume`` off, or
    one that ``mismatch`` (state → None, or why it cannot be resumed) refuses. A refused checkpoint
    raises a ValueError (``on_mismatch="error"``) or moves to ``<name>.stale.pt`` beside it, replacing
    an older one, with a warning (``"restart"``), so that training starts anew without destroying the
    old run."""
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {list(ON_MISMATCH)}, got {on_mismatch!r}")
    if path is None or not resume or not path.is_file():
        return None
    state = load_torch(path)
    reason = mismatch(state)
    if reason is None:
        return state
    if on_mismatch == "error":
        raise ValueError(f"{path} {reason}; delete it or choose another output folder.")
    stale = path.with_name(f"{path.stem}.stale{path.suffix}")
    os.replace(path, stale)
    warnings.warn(f"{path} {reason}: moved to {stale.name}, training anew", stacklevel=3)
    return None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically (paths, tensors, numpy scalars converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def write_text(text: str, path: str | Path) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_metrics(metrics: dict[str, float], path: str | Path) -> None:
    """Write a flat ``name -> number`` ``metrics.json`` (the names are listed in the README)."""
    flat: dict[str, float | None] = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            value = value.item()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
        flat[key] = float(value)
    write_json(flat, path)
