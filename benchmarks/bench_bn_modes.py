"""Does the generator that explains behave like the generator that trained? Four readings of the
same trained G, judged as ``bench_cf_curve.py`` judges it:

    python benchmarks/bench_bn_modes.py --checkpoints DIR/cf_last.pt [...] [--profile quick]
        [--dataset colored_mnist] [--seed 0] [--detector bce] [--detector-checkpoint PATH]
        [--batches 200] [--per-batch 8] [--tag NAME] [--results-root results]

- ``running``: eval mode with the batch-norm running averages of training, as notebook 03 and
  ``bench_cf_curve.py`` explain;
- ``standing``: eval mode with standing statistics, the running averages recomputed over
  ``--batches`` training-like batches of G(x, α, k) (:func:`cfx_lib.counterfactual.standing_statistics`);
- ``standing-training``: the same over every pass of a training iteration (G(x, α, k) twice, the cycle
  and the reconstruction), the mixture the running averages follow during training, at the final weights;
- ``in-batch``: training mode, each test anomaly explained inside a batch of training images at α
  and k drawn as in training, as the losses saw it (:class:`cfx_lib.counterfactual.InBatchGenerator`).

A generator with ``g_norm="layer"`` has no batch norm and gets the ``running`` row only. The
checkpoints (``cf_last.pt`` of ``bench_cf_curve.py --out`` or notebook 03) must have been trained on
the run's detector (``--detector`` of ``--seed``, notebook 02's or trained as notebook 03 would) or
on ``--detector-checkpoint``. Writes ``<results-root>/benchmarks/bn-modes-<profile>-<run>[-<tag>].json``
and ``.csv`` (one row per checkpoint and reading).
"""

import argparse

import pandas as pd

from cfx_lib.counterfactual import InBatchGenerator, load_training_checkpoint, standing_statistics
from cfx_lib.io import write_json, write_text
from cfx_lib.notebook import environment

from _study import Judge, open_study

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

study = open_study(args.profile, args.dataset, args.seed, args.results_root)
if not study.train.factors:
    parser.error(f"{args.dataset} has no ground-truth factors, so there is no oracle to judge by")
detector, detector_source = study.detector(args.detector, checkpoint=args.detector_checkpoint)
print("detector:", detector_source)
judge = Judge(study, detector, study.oracle())
run, root = study.run(args.detector), study.root
train_scores = detector.score_images(study.train.images)  # s of the cycle and reconstruction passes

rows = []
for path in args.checkpoints:
    models, cfg, _ = load_training_checkpoint(path)
    generator = models.explaining_generator
    readings = {"running": generator}
    if cfg.g_norm == "batch":
        readings["standing"] = standing_statistics(generator, study.train.images, cfg, args.batches, seed=args.seed)
        readings["standing-training"] = standing_statistics(generator, study.train.images, cfg, args.batches,
                                                            seed=args.seed, passes="training", scores=train_scores)
        readings["in-batch"] = InBatchGenerator(generator, study.train.images, cfg, args.per_batch, seed=args.seed)
    for reading, g in readings.items():
        row, _, _ = judge(g, cfg, models.concept_classifier)
        row = {"checkpoint": str(path), "reading": reading, **row, "dominant_factors": " ".join(row["dominant_factors"])}
        rows.append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

name = f"bn-modes-{study.profile.name}-{run}" + (f"-{args.tag}" if args.tag else "")
write_json({"profile": study.profile.name, "run": run, "detector": str(detector_source), "batches": args.batches,
            "per_batch": args.per_batch, "environment": environment(), "rows": rows}, root / "benchmarks" / f"{name}.json")
write_text(pd.DataFrame(rows).to_csv(index=False), root / "benchmarks" / f"{name}.csv")
print(pd.DataFrame(rows).drop(columns="checkpoint").round(3).to_string(index=False))
print(f"wrote {root / 'benchmarks' / name}.json and .csv")
