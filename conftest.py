"""Test-wide settings: tests run offline (no download attempts), so that their data is the same
on every machine, and the notebooks checked by nbval write into a fresh temporary results folder,
so that checkpoints of earlier runs (``make reproduce``, older configurations) never leak into
a test. The folder is removed when the test session ends."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("CFX_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if "CFX_RESULTS_ROOT" not in os.environ:
    _results = tempfile.mkdtemp(prefix="cfx-test-results-")
    os.environ["CFX_RESULTS_ROOT"] = _results
    atexit.register(shutil.rmtree, _results, ignore_errors=True)
