"""Test-wide settings: tests run offline (no download attempts), so that their data is the same
on every machine."""

import os

os.environ.setdefault("CFX_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
