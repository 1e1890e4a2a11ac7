"""Wall time of a whole profile, and where it goes:
python benchmarks/bench_reproduce.py [--profile quick] [--results-root DIR] [--jobs 1].

Runs ``cfx_lib.reproduce`` from scratch into a fresh results root (default: a new temporary
folder, so that nothing already trained is skipped) and writes
results/benchmarks/reproduce-<profile>.json: the total wall time, and the seconds per step and
per notebook.
"""

import argparse
import os
import tempfile
import time
from collections import defaultdict

from cfx_lib.io import write_json
from cfx_lib.paths import default_results_root
from cfx_lib.reproduce import reproduce

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--profile", default="quick")
parser.add_argument("--results-root", default=None, help="default: a new temporary folder")
parser.add_argument("--jobs", type=int, default=1)
args = parser.parse_args()
root = args.results_root or tempfile.mkdtemp(prefix=f"cfx-bench-{args.profile}-")
t0 = time.perf_counter()
steps = reproduce(args.profile, jobs=args.jobs, results_root=root)
wall = time.perf_counter() - t0
per_notebook: dict[str, float] = defaultdict(float)
for step in steps:
    per_notebook[step.notebook] += step.seconds
out = {"profile": args.profile, "jobs": args.jobs, "cpu_count": os.cpu_count(), "wall_seconds": wall,
       "wall_minutes": wall / 60, "results_root": root,
       "seconds_per_notebook": dict(per_notebook),
       "steps": [{"notebook": s.notebook, "run": s.label, "status": s.status, "seconds": s.seconds} for s in steps]}
write_json(out, default_results_root() / "benchmarks" / f"reproduce-{args.profile}.json")
print(f"{args.profile}: {wall / 60:.1f} min wall;", {k: round(v / 60, 1) for k, v in per_notebook.items()}, "min per notebook")
