"""Where things live: the repository root, the data root and the results tree."""

from __future__ import annotations

import os
from pathlib import Path

#: A file at the repository root; notebooks find the root by walking up to it.
ROOT_MARKER = ".cfx-root"


def find_repo_root(start: str | Path | None = None) -> Path:
    """Return the repository root: the first parent of ``start`` (default: the working
    directory, then this package's folder) that holds the marker file ``.cfx-root``.

    Notebooks call this so that they run from any working directory (nbval runs them from
    ``notebooks/``, papermill from the caller's directory).
    """
    candidates = [Path(start).resolve()] if start is not None else [Path.cwd().resolve()]
    candidates.append(Path(__file__).resolve().parent)
    for origin in candidates:
        for folder in (origin, *origin.parents):
            if (folder / ROOT_MARKER).is_file():
                return folder
    raise FileNotFoundError(
        f"Could not find the cfx repository root (a folder holding '{ROOT_MARKER}') above "
        f"{', '.join(str(c) for c in candidates)}. Run from inside the cloned repository."
    )


def default_data_root() -> Path:
    """The folder for downloaded datasets: ``$CFX_DATA_ROOT`` if set, else ``<repo>/data``."""
    env = os.environ.get("CFX_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    try:
        return find_repo_root() / "data"
    except FileNotFoundError:
        return Path.home() / ".cache" / "cfx" / "data"


def default_results_root() -> Path:
    """The results tree: ``$CFX_RESULTS_ROOT`` if set, else ``<repo>/results``."""
    env = os.environ.get("CFX_RESULTS_ROOT")
    if env:
        return Path(env).expanduser()
    return find_repo_root() / "results"


def offline() -> bool:
    """True when ``$CFX_OFFLINE`` is set to a true value: loaders then skip download attempts."""
    return os.environ.get("CFX_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
