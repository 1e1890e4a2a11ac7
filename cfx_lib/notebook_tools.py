"""Notebook housekeeping: ``python -m cfx_lib.notebook_tools strip notebooks/*.ipynb`` removes
outputs and execution counts, so notebooks are committed clean (executed copies go to results/)."""

from __future__ import annotations

import sys

import nbformat


def strip(path: str) -> bool:
    """Remove outputs and execution counts from a notebook; returns True if it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, changed = [], None, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "strip":
        print(__doc__)
        return 2
    for path in argv[1:]:
        if strip(path):
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
