"""Counterfactual-generator training speed (iterations/second) and peak memory per image size:
python benchmarks/bench_counterfactual.py [--profile quick] [--sizes 28 32] [--iterations 30] [--device auto]
    [--options '{"precision": "bfloat16"}'] [--tag NAME].

The detector is an untrained one of the right kind and size (the cost per iteration does not depend
on its weights); the data are random images. Peak memory is the process's peak RSS on a CPU and
``torch.cuda.max_memory_allocated`` on a GPU. ``--options`` overrides fields of the profile's
generator configuration, as in ``bench_cf_curve.py`` (speed settings such as ``precision`` or
``channels_last``). Writes results/benchmarks/counterfactual-<profile>-<device>[-<tag>].json.
"""

import argparse
import json
import resource
import time

import torch

from cfx_lib.config import get_profile
from cfx_lib.counterfactual import calibrate_score_eps, train_counterfactual
from cfx_lib.detectors import Detector
from cfx_lib.device import resolve_device
from cfx_lib.io import write_json
from cfx_lib.notebook import environment
from cfx_lib.paths import default_results_root

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--profile", default="quick")
parser.add_argument("--sizes", type=int, nargs="+", default=[28, 32])
parser.add_argument("--iterations", type=int, default=30)
parser.add_argument("--device", default="auto")
parser.add_argument("--options", type=json.loads, default={}, help="JSON overrides of CounterfactualConfig")
parser.add_argument("--tag", default="")
args = parser.parse_args()
profile = get_profile(args.profile)
device = resolve_device(args.device)
rows = []
for size in args.sizes:
    shape = (3, size, size)
    cfg = profile.counterfactual_config(size, **{"iterations": args.iterations, "device": str(device), **args.options})
    images = torch.rand(max(4 * cfg.batch_size, 256), *shape, generator=torch.Generator().manual_seed(0))
    det = Detector("bce", shape)
    cfg = calibrate_score_eps(cfg, det, images)  # the clip does not change the cost
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = train_counterfactual(cfg, det, images, progress=False)
    wall = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    row = {"size": size, "g_widths": list(cfg.g_widths), "d_widths": list(cfg.d_widths), "batch_size": cfg.batch_size,
           "precision": cfg.precision, "channels_last": cfg.channels_last,
           "iterations": cfg.iterations, "iters_per_second": result.iters_per_second,
           "minutes_for_profile_iterations": profile.counterfactual_config(size).iterations / result.iters_per_second / 60,
           "wall_seconds": wall, "peak_memory_mb": peak / 2**20}
    rows.append(row)
    print(row, flush=True)
out = {"profile": args.profile, "options": args.options, "device": str(device), "cpu_threads": torch.get_num_threads(),
       "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
       "environment": environment(),  # the processor sets the CPU figures: compare them on one machine only
       "results": rows}
name = f"counterfactual-{args.profile}-{device.type}" + (f"-{args.tag}" if args.tag else "")
write_json(out, default_results_root() / "benchmarks" / f"{name}.json")
