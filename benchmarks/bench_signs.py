"""Generation rate of the procedural signs: python benchmarks/bench_signs.py [--n 10000]."""

import argparse
import platform
import time

import torch

from cfx_lib.data import load_dataset
from cfx_lib.io import write_json
from cfx_lib.paths import default_results_root

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--n", type=int, default=10_000)
args = parser.parse_args()
t0 = time.perf_counter()
data = load_dataset("signs", "train", n=args.n)
seconds = time.perf_counter() - t0
result = {"n": args.n, "seconds": seconds, "images_per_second": args.n / seconds,
          "cpu_threads": torch.get_num_threads(), "machine": platform.machine()}
write_json(result, default_results_root() / "benchmarks" / "signs.json")
print(result)
