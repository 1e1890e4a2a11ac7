"""Detector training time in a profile:
python benchmarks/bench_detector.py [--profile quick] [--dataset colored_mnist] [--kind bce]."""

import argparse
import time

import torch

from cfx_lib.config import get_profile
from cfx_lib.data import load_dataset, load_outliers
from cfx_lib.detectors import train_detector
from cfx_lib.io import write_json
from cfx_lib.metrics import auroc
from cfx_lib.paths import default_results_root

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist")
parser.add_argument("--kind", default="bce")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
profile = get_profile(args.profile)
train = load_dataset(args.dataset, "train", seed=args.seed, **profile.dataset_kwargs(args.dataset, "train"))
test = load_dataset(args.dataset, "test", seed=args.seed, **profile.dataset_kwargs(args.dataset, "test"))
oe = None
if args.kind in ("bce", "hsc"):
    oe = load_outliers(profile.oe_source(args.dataset), profile.n_oe, train.image_shape, seed=args.seed + 1)
cfg = profile.detector_config(args.kind, train.image_shape[-1], seed=args.seed)
t0 = time.perf_counter()
result = train_detector(cfg, train.normal.images, oe)
wall = time.perf_counter() - t0
scores = result.detector.score_images(test.images)
out = {"profile": args.profile, "dataset": args.dataset, "kind": args.kind, "epochs": cfg.epochs,
       "train_seconds": result.train_seconds, "wall_seconds": wall,
       "seconds_per_epoch": result.train_seconds / cfg.epochs,
       "detector_auroc": auroc(scores[~test.is_anomaly], scores[test.is_anomaly]),
       "cpu_threads": torch.get_num_threads()}
write_json(out, default_results_root() / "benchmarks" / f"detector-{args.profile}-{args.dataset}-{args.kind}.json")
print(out)
