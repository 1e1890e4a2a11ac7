"""Test-wide settings: tests run offline (no download attempts), so that their data is the same
on every machine, and the notebooks checked by nbval write into a fresh temporary results folder,
so that checkpoints of earlier runs (``make reproduce``, older configurations) never leak into
a test."""

import os
import tempfile

os.environ.setdefault("CFX_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CFX_RESULTS_ROOT", tempfile.mkdtemp(prefix="cfx-test-results-"))
