"""One-line notices to the user (printed once per process and message)."""

from __future__ import annotations

import sys

_seen: set[str] = set()


def notice(message: str) -> None:
    """Print ``[cfx] message`` to stderr, once per process."""
    if message in _seen:
        return
    _seen.add(message)
    print(f"[cfx] {message}", file=sys.stderr)
