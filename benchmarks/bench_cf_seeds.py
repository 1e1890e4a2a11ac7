"""A generator setting over several generator seeds, on one detector: ``bench_cf_curve.py`` once per
seed, in parallel, then the mean ± std of its figures and, against an earlier run of this script, the
paired differences seed by seed and the study's rule for adopting a setting
(:func:`cfx_lib.metrics.paired_gain`).

    python benchmarks/bench_cf_seeds.py [--generator-seeds 0 1 2 3 4] [--jobs 2] [--threads 1]
        [--compare results/benchmarks/cf-seeds-....json] [--tag NAME] [--out DIR]
        [every option of bench_cf_curve.py: --profile, --dataset, --detector, --seed, --iterations,
         --options, --results-root, --detector-checkpoint] [--detector-options JSON]

The generator's seed moves the counterfactuals' figures more than most settings do, so one run says
little; this is how docs/experiments.md compares settings since session 12. The detector and the
oracle are obtained once, before the seeds start (trained into ``--out`` if the results tree has
none, with the process's own thread count, as notebook 02 would on that machine: on the 2-core CPU
the detector of docs/experiments.md since session 12), so every seed explains the same detector. Each seed runs with ``--threads`` threads
(``OMP_NUM_THREADS``; 1 by default, as every figure in docs/experiments.md since session 11: a seeded
CPU run repeats exactly only with the same thread count), ``--jobs`` at a time; its log is
``<out>/g<seed>.log``, its generator in ``<out>/g<seed>``. Writes
``<results-root>/benchmarks/cf-seeds-<profile>-<run>[-<tag>].json``, ``.csv`` (one row per seed and
iteration count) and ``.png`` (oracle-normal share by seed).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from tqdm import tqdm

from cfx_lib.io import read_json, write_json
from cfx_lib.metrics import ORACLE_DETECTOR as ORACLE
from cfx_lib.metrics import load_or_train_oracle, paired_gain, seed_summary
from cfx_lib.viz import save_figure

from _study import open_study

CURVE = Path(__file__).with_name("bench_cf_curve.py")
COMPARED = ("oracle_normal", "purity")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--generator-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
parser.add_argument("--jobs", type=int, default=2, help="seeds trained at a time")
parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each seed's run")
parser.add_argument("--compare", default=None, help="a cf-seeds JSON of this script: the baseline to pair with")
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist")
parser.add_argument("--detector", default="bce", help=f"a detector kind, or {ORACLE!r} (see bench_cf_curve.py)")
parser.add_argument("--seed", type=int, default=0, help="the data's and the detector's seed")
parser.add_argument("--iterations", type=int, nargs="+", default=[600])
parser.add_argument("--options", type=json.loads, default={}, help="JSON overrides of CounterfactualConfig")
parser.add_argument("--tag", default="")
parser.add_argument("--results-root", default=None)
parser.add_argument("--out", default=None, help="the seeds' generators and logs (default: a temporary folder)")
parser.add_argument("--detector-checkpoint", default=None)
parser.add_argument("--oracle-gate", choices=["contrast", "none"], default="contrast",
                    help="--detector oracle only: see bench_cf_curve.py")
parser.add_argument("--detector-options", type=json.loads, default={},
                    help="JSON overrides of DetectorConfig for a detector trained here, e.g. '{\"shift_augment\": 4}', "
                         "and under \"oe\" of how its OE is drawn, e.g. '{\"oe\": {\"marks\": 0.5}}'")
args = parser.parse_args()
if len(set(args.generator_seeds)) != len(args.generator_seeds) or min(args.generator_seeds) < 0:
    parser.error("--generator-seeds must be distinct non-negative ints")
if args.jobs < 1 or args.threads < 1:
    parser.error("--jobs and --threads must be >= 1")
if "seed" in args.options:
    parser.error("--options may not set the generator's seed: --generator-seeds does")
baseline = read_json(args.compare) if args.compare else None  # read first: a wrong path fails before training

study = open_study(args.profile, args.dataset, args.seed, args.results_root)
profile, root, train, test = study.profile, study.root, study.train, study.test
out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cfx-cf-seeds-"))
out.mkdir(parents=True, exist_ok=True)
run = study.run(args.detector)

# the detector and the oracle once, before the seeds start, so that they share them (and do not race to train them)
if args.detector == ORACLE:  # bench_cf_curve.py's diagnostic detector: its oracle once, copied to every seed
    if args.detector_checkpoint or args.detector_options:
        parser.error("--detector oracle builds its detector; it takes no --detector-checkpoint or --detector-options")
    detector_path = out / "oracle_detector.pt"
    load_or_train_oracle(detector_path, train, test, epochs=profile.oracle_epochs, seed=args.seed + 1)
else:
    _, source = study.detector(args.detector, checkpoint=args.detector_checkpoint, out_dir=out,
                               options=args.detector_options)
    detector_path = Path(source) if Path(source).is_file() else out / "detector" / "detector.pt"
print("detector:", detector_path)
study.oracle()


def seed_tag(seed: int) -> str:
    return f"{args.tag}-g{seed}" if args.tag else f"g{seed}"


def run_seed(seed: int) -> list[dict]:
    """bench_cf_curve.py for one generator seed; its rows, each with the seed."""
    cmd = [sys.executable, str(CURVE), "--profile", profile.name, "--dataset", args.dataset, "--detector", args.detector,
           "--seed", str(args.seed), "--iterations", *map(str, args.iterations), "--results-root", str(root),
           "--options", json.dumps({**args.options, "seed": seed}), "--tag", seed_tag(seed),
           "--out", str(out / f"g{seed}")]
    if args.detector == ORACLE:
        cmd += ["--oracle-gate", args.oracle_gate]
        (out / f"g{seed}").mkdir(exist_ok=True)
        shutil.copyfile(detector_path, out / f"g{seed}" / detector_path.name)
    else:
        cmd += ["--detector-checkpoint", str(detector_path)]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    log = out / f"g{seed}.log"
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        raise RuntimeError(f"generator seed {seed} failed (exit code {code}); see {log}")
    result = read_json(root / "benchmarks" / f"cf-curve-{profile.name}-{run}-{seed_tag(seed)}.json")
    return [{"generator_seed": seed, **row} for row in result["rows"]]


def by_seed(rows: pd.DataFrame, iterations: int, metric: str) -> dict[int, float]:
    """Generator seed → ``metric`` after ``iterations``."""
    at = rows[rows["iterations"] == iterations]
    return dict(zip(at["generator_seed"], at[metric]))


rows: list[dict] = []
with ThreadPoolExecutor(max_workers=args.jobs) as pool:
    futures = [pool.submit(run_seed, s) for s in args.generator_seeds]
    for future in tqdm(as_completed(futures), total=len(futures), desc="generator seeds"):
        rows.extend(future.result())
table = pd.DataFrame(rows).sort_values(["iterations", "generator_seed"])
summary = seed_summary(table)
print(summary.to_string(index=False, float_format="{:.3f}".format))

comparisons = []
if baseline is not None:
    base = pd.DataFrame(baseline["rows"])
    for iterations in sorted(set(table["iterations"]) & set(base["iterations"])):
        for metric in COMPARED:
            gain = paired_gain(by_seed(base, iterations, metric), by_seed(table, iterations, metric))
            print(f"{iterations} iterations: {gain.describe(metric)}")
            comparisons.append({"iterations": iterations, "metric": metric, "seeds": gain.seeds,
                                "differences": gain.differences, "mean": gain.mean,
                                "standard_error": gain.standard_error, "adopt": gain.adopt})

name = f"cf-seeds-{profile.name}-{run}" + (f"-{args.tag}" if args.tag else "")
write_json({"profile": profile.name, "run": run, "options": args.options, "detector_options": args.detector_options,
            "threads": args.threads, **({"oracle_gate": args.oracle_gate} if args.detector == ORACLE else {}),
            "detector": str(detector_path), "compare": args.compare, "rows": table.to_dict("records"),
            "summary": summary.to_dict("records"), "comparisons": comparisons}, root / "benchmarks" / f"{name}.json")
table.to_csv(root / "benchmarks" / f"{name}.csv", index=False)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for seed, group in table.groupby("generator_seed"):
    ax.plot(group["iterations"], group["oracle_normal"], marker="o", lw=0.8, alpha=0.6, label=f"seed {seed}")
ax.plot(summary["iterations"], summary["oracle_normal mean"], marker="s", color="black", lw=2, label="mean")
ax.axhline(0.7, color="grey", lw=0.8, ls="--")
ax.set(xlabel="generator iterations", ylabel="oracle-normal share", ylim=(0, 1.02),
       title=f"{run} ({profile.name}) {args.tag}".strip())
ax.legend(fontsize=7)
save_figure(fig, root / "benchmarks" / f"{name}.png")
print(f"wrote {root / 'benchmarks' / name}.json, .csv and .png")
