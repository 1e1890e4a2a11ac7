"""Does the generator that explains behave like the generator that trained? Three readings of the
same trained G, judged as ``bench_cf_curve.py`` judges it:

    python benchmarks/bench_bn_modes.py --checkpoints DIR/cf_last.pt [...] [--profile quick]
        [--dataset colored_mnist] [--seed 0] [--detector bce] [--detector-checkpoint PATH]
        [--batches 200] [--per-batch 8] [--tag NAME] [--results-root results]

- ``running``: eval mode with the batch-norm running averages of training, as notebook 03 and
  ``bench_cf_curve.py`` explain;
- ``standing``: eval mode with standing statistics, the running averages recomputed over
  ``--batches`` training-like batches of G(x, α, k) (:func:`cfx_lib.counterfactual.standing_statistics`);
- ``in-batch``: training mode, each test anomaly explained inside a batch of training images at α
  and k drawn as in training, as the losses saw it (:class:`cfx_lib.counterfactual.InBatchGenerator`).

A generator with ``g_norm="layer"`` has no batch norm and gets the ``running`` row only. The
checkpoints (``cf_last.pt`` of ``bench_cf_curve.py --out`` or notebook 03) must have been trained on
the run's detector (``--detector`` of ``--seed``, notebook 02's or trained as notebook 03 would) or
on ``--detector-checkpoint``. Writes ``<results-root>/benchmarks/bn-modes-<profile>-<run>[-<tag>].json``
and ``.csv`` (one row per checkpoint and reading).
"""

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from cfx_lib.config import get_profile
from cfx_lib.counterfactual import Explainer, InBatchGenerator, load_training_checkpoint, standing_statistics
from cfx_lib.data import load_dataset
from cfx_lib.data.registry import make_setup
from cfx_lib.io import write_json, write_text
from cfx_lib.metrics import (
    changed_factors, concept_purity, counterfactual_metrics, default_oracle_path, faint_threshold, load_or_train_oracle,
)
from cfx_lib.notebook import NotebookRun, environment, obtain_detector, run_id
from cfx_lib.paths import default_data_root, default_results_root, find_repo_root

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--checkpoints", nargs="+", required=True, help="generator training checkpoints (cf_last.pt)")
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist")
parser.add_argument("--seed", type=int, default=0, help="the run's seed (data, detector, oracle)")
parser.add_argument("--detector", default="bce")
parser.add_argument("--detector-checkpoint", default=None, help="the detector.pt the generators explain")
parser.add_argument("--batches", type=int, default=200, help="training-like batches for the standing statistics")
parser.add_argument("--per-batch", type=int, default=8, help="test anomalies per training-like batch (in-batch)")
parser.add_argument("--tag", default="")
parser.add_argument("--results-root", default=None)
args = parser.parse_args()

if args.results_root:
    os.environ["CFX_RESULTS_ROOT"] = args.results_root
profile = get_profile(args.profile)
root = default_results_root()
train = load_dataset(args.dataset, "train", seed=args.seed, **profile.dataset_kwargs(args.dataset, "train"))
test = load_dataset(args.dataset, "test", seed=args.seed, **profile.dataset_kwargs(args.dataset, "test"))
if not train.factors:
    parser.error(f"{args.dataset} has no ground-truth factors, so there is no oracle to judge by")
setup = make_setup(args.dataset)
context = NotebookRun(repo=find_repo_root(), profile=profile, out_dir=Path(tempfile.mkdtemp(prefix="cfx-bn-modes-")),
                      params={}, data_root=default_data_root())
detector, detector_source = obtain_detector(context, args.dataset, None, args.detector, args.seed, train,
                                           checkpoint=args.detector_checkpoint)
print("detector:", detector_source)
run = run_id(args.dataset, None, args.seed, args.detector)
oracle = load_or_train_oracle(default_oracle_path(profile.name, args.dataset, args.seed, root), train, test,
                              epochs=profile.oracle_epochs, seed=args.seed).oracle
anomalies = test.anomalous.images
normal_scores = detector.score_images(test.normal.images)
faint_below = faint_threshold(test.images)


def judge(generator, cfg, concept_classifier) -> dict:
    explainer = Explainer(detector, generator, cfg, concept_classifier=concept_classifier)
    explanation = explainer.explain(anomalies)
    m = counterfactual_metrics(explanation, normal_scores, oracle, setup, explainer.concept_classifier, faint_below)
    purity, dominant = concept_purity(changed_factors(oracle, anomalies, explanation.counterfactuals))
    return {**{k: m[k] for k in ("oracle_normal", "oracle_normal_visible", "faint_share", "median_cf_score",
                                 "normality_auroc", "concept_acc")},
            **{f"oracle_normal_k{k + 1}": m[f"oracle_normal_k{k + 1}"] for k in range(cfg.n_concepts)},
            "purity": sum(purity) / len(purity), "dominant_factors": " ".join(dominant)}


rows = []
for path in args.checkpoints:
    models, cfg, _ = load_training_checkpoint(path)
    generator = models.explaining_generator
    readings = {"running": generator}
    if cfg.g_norm == "batch":
        readings["standing"] = standing_statistics(generator, train.images, cfg, args.batches, seed=args.seed)
        readings["in-batch"] = InBatchGenerator(generator, train.images, cfg, args.per_batch, seed=args.seed)
    for reading, g in readings.items():
        row = {"checkpoint": str(path), "reading": reading, **judge(g, cfg, models.concept_classifier)}
        rows.append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

name = f"bn-modes-{profile.name}-{run}" + (f"-{args.tag}" if args.tag else "")
write_json({"profile": profile.name, "run": run, "detector": str(detector_source), "batches": args.batches,
            "per_batch": args.per_batch, "environment": environment(), "rows": rows}, root / "benchmarks" / f"{name}.json")
write_text(pd.DataFrame(rows).to_csv(index=False), root / "benchmarks" / f"{name}.csv")
print(pd.DataFrame(rows).drop(columns="checkpoint").round(3).to_string(index=False))
print(f"wrote {root / 'benchmarks' / name}.json and .csv")
