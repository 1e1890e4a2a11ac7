"""Quality of the counterfactuals against training time: the oracle-normal share, φ's normality
AuROC, R's accuracy and the ground-truth purity after more and more generator iterations.

    python benchmarks/bench_cf_curve.py [--profile quick] [--dataset colored_mnist] [--detector bce]
        [--iterations 200 400 800 1600] [--options '{"d_steps": 2, "weights": {"gan": 10}}']
        [--tag NAME] [--results-root results] [--out DIR] [--detector-checkpoint PATH] [--detector-options JSON]

It explains notebook 02's detector of the run (``<results-root>/<profile>/runs/<run>/02_detector/
detector.pt``; trained first into ``--out`` if missing, as notebook 03 would) with the profile's generator configuration, trains to the
first iteration count, measures, then resumes training to the next (the trainer resumes from its
checkpoint, so the curve costs one training of the largest count). The oracle is the cached one
of notebook 03. ``--options`` overrides fields of the profile's generator configuration (as notebook
03's ``CF_OPTIONS``, ``weights`` may be partial), to compare settings by the same curve; ``{"seed": 1}``
there reseeds the generator alone, while ``--seed`` also redraws the data and the detector. Writes
``<results-root>/benchmarks/cf-curve-<profile>-<run>[-<tag>].json`` and ``.png``; each row of the JSON
holds ``routes``, what each concept does per value of each factor of the anomalies, how many of
those the oracle reads as normal and how large the edit is (:func:`cfx_lib.metrics.route_table`), also
printed as a table. Run again on the same
``--out`` (the checkpoint is complete), it only re-measures.
``--detector-options JSON`` trains the detector anew into ``--out`` with fields of
:class:`~cfx_lib.config.DetectorConfig` changed and, under ``"oe"``, its OE drawn otherwise
(:func:`cfx_lib.data.load_outliers`, e.g. ``'{"oe": {"marks": 0.5}}'``); the JSON records them.
``--warm-start CKPT`` continues another run's generator (G, D, R and their optimisers, e.g. one trained on
another detector) under this run's detector from the checkpoint's iteration on: does a solution found
for one detector survive training under another? (:func:`cfx_lib.counterfactual.warm_start`).
``benchmarks/bench_cf_seeds.py`` runs this script over several generator seeds and summarises them.
``--detector oracle`` explains a diagnostic detector instead, :class:`cfx_lib.metrics.OracleDetector`:
φ(x) = P(no factor of x is normal) as read by a second oracle (trained into ``--out`` with the seed
``--seed`` + 1), while the cached oracle judges the counterfactuals as usual. It treats every route
to normal alike, so it asks whether the generator's losses find one concept per factor at all.
An oracle reads a nearly empty image as a confident digit, so by default (``--oracle-gate contrast``)
that detector counts an image with less contrast than 99% of real training images as anomalous
(:class:`~cfx_lib.metrics.OracleDetector`'s ``min_contrast``); ``--oracle-gate none`` is session 21's
ungated detector, under which a quarter of the counterfactuals were faded or erased digits.
Minutes are training time only (no checkpoints, samples or evaluation); on a shared machine they
stretch, so the JSON gives the iterations too. The JSON and the figure are written again after every
iteration count, so a run cut off (by ``timeout``, say, as ``benchmarks/device_check.sh`` does) keeps
the counts it finished.
"""

import argparse
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cfx_lib.counterfactual import calibrate_score_eps, train_counterfactual, warm_start
from cfx_lib.counterfactual.trainer import LAST
from cfx_lib.io import write_json
from cfx_lib.metrics import ORACLE_DETECTOR as ORACLE
from cfx_lib.metrics import OracleDetector, faint_threshold, load_or_train_oracle, normal_values_of, route_table
from cfx_lib.notebook import environment
from cfx_lib.viz import save_figure

from _study import Judge, open_study

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist")
parser.add_argument("--detector", default="bce",
                    help=f"a detector kind, or {ORACLE!r}: a detector built from a second oracle (a diagnostic)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--iterations", type=int, nargs="+", default=[200, 400, 800, 1600])
parser.add_argument("--options", type=json.loads, default={}, help="JSON overrides of CounterfactualConfig")
parser.add_argument("--tag", default="", help="suffix of the output names (e.g. which options)")
parser.add_argument("--results-root", default=None)
parser.add_argument("--out", default=None, help="generator checkpoints (default: a temporary folder)")
parser.add_argument("--oracle-gate", choices=["contrast", "none"], default="contrast",
                    help="--detector oracle only: refuse faint images as normal (the default) or not (session 21)")
parser.add_argument("--warm-start", default=None,
                    help="a generator checkpoint (cf_last.pt) of another run, e.g. one trained on another detector, to "
                         "continue under this one; copied into --out first (cfx_lib.counterfactual.warm_start)")
parser.add_argument("--detector-checkpoint", default=None,
                    help="explain this detector.pt instead of the run's (e.g. one detector for several generator seeds)")
parser.add_argument("--detector-options", type=json.loads, default={},
                    help="JSON overrides of DetectorConfig, and under \"oe\" of how its OE is drawn (cfx_lib.data."
                         "load_outliers), for a detector trained anew into --out, e.g. '{\"oe\": {\"marks\": 0.5}}'")
args = parser.parse_args()
if args.iterations != sorted(set(args.iterations)) or args.iterations[0] < 1:
    parser.error("--iterations must be increasing positive counts")
if args.warm_start and not args.out:
    parser.error("--warm-start needs --out, the folder its copy is continued in")

study = open_study(args.profile, args.dataset, args.seed, args.results_root)  # the notebooks' results tree
profile, root, train, test, setup = study.profile, study.root, study.train, study.test, study.setup
if not train.factors:
    parser.error(f"{args.dataset} has no ground-truth factors, so there is no oracle to judge by")
size = train.image_shape[-1]
out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cfx-cf-curve-"))
if args.detector == ORACLE:
    # a diagnostic (cfx_lib.metrics.OracleDetector): φ read by a second oracle, trained with another seed
    # than the one that judges the counterfactuals below
    if args.detector_checkpoint or args.detector_options:
        parser.error("--detector oracle builds its detector; it takes no --detector-checkpoint or --detector-options")
    reader = load_or_train_oracle(out / "oracle_detector.pt", train, test, epochs=profile.oracle_epochs,
                                  seed=args.seed + 1).oracle
    min_contrast = faint_threshold(train.images) if args.oracle_gate == "contrast" else None
    detector, detector_source = OracleDetector(reader, normal_values_of(setup), min_contrast), out / "oracle_detector.pt"
else:
    # notebook 02's detector of the run, else one trained now like notebook 03 would (same OE draw)
    detector, detector_source = study.detector(args.detector, checkpoint=args.detector_checkpoint, out_dir=out,
                                               options=args.detector_options)
print("detector:", detector_source)
run = study.run(args.detector)
oracle = study.oracle()
judge = Judge(study, detector, oracle)

# the score clip is resolved once: it depends on the detector, not on the iteration count
base_cfg = calibrate_score_eps(profile.counterfactual_config(size, **{"seed": args.seed, **args.options}), detector,
                               train.normal.images)
if args.warm_start and not (out / LAST).exists():  # a rerun on the same --out resumes the copy
    try:  # refused before anything is copied, e.g. --iterations starting below the checkpoint's
        copied = warm_start(args.warm_start, out, base_cfg.replace(iterations=args.iterations[0]), detector,
                            train.images)
    except (ValueError, FileNotFoundError) as error:
        parser.error(f"--warm-start: {error}")
    print(f"warm start: {args.warm_start} (iteration {copied}) continues under {detector_source}")
shown = train.anomalous.examples(base_cfg.n_samples)  # the sample grids cover every colour (or other factor)
name = f"cf-curve-{profile.name}-{run}" + (f"-{args.tag}" if args.tag else "")


def write_curve(rows: list[dict], cfg) -> None:
    """The JSON and the figure of the rows so far (after every iteration count, atomically: a run cut
    off, e.g. by a time limit, keeps the counts it finished)."""
    gate = {"oracle_gate": args.oracle_gate} if args.detector == ORACLE else {}
    warm = {"warm_start": args.warm_start} if args.warm_start else {}
    trained = {"detector_options": args.detector_options} if args.detector_options else {}
    write_json({"profile": profile.name, "run": run, "options": args.options, **gate, **warm, **trained,
                "config": cfg.to_dict(),
                "environment": environment(), "rows": rows},
               root / "benchmarks" / f"{name}.json")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    minutes = [r["train_minutes"] for r in rows]
    for key, label in [("oracle_normal", "oracle-normal share"), ("purity", "purity"), ("concept_acc", "R accuracy"),
                       ("normality_auroc", "normality AuROC (0.5 best)")]:
        ax.plot(minutes, [r[key] for r in rows], marker="o", label=label)
    ax.axhline(0.7, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="generator training (minutes)", ylim=(0, 1.02), title=f"{run} ({profile.name}) {args.tag}".strip())
    ax.legend(fontsize=8)
    save_figure(fig, root / "benchmarks" / f"{name}.png")
    plt.close(fig)
    print(f"wrote {root / 'benchmarks' / name}.json and .png", flush=True)


rows = []
for iterations in args.iterations:
    cfg = base_cfg.replace(iterations=iterations)
    result = train_counterfactual(cfg, detector, train.images, out_dir=out, progress=True,
                                  sample_images=shown.images if len(shown) else None)
    judged, explanation, changes = judge(result.generator, cfg, result.models.concept_classifier)
    routes = route_table(oracle, setup, test.anomalous, explanation.counterfactuals, changes, judge.faint_below)
    row = {"iterations": iterations, "train_minutes": result.train_seconds / 60, **judged, "routes": routes}
    rows.append(row)
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "routes"})
    print(pd.DataFrame(routes).pivot_table(index=["grouped by", "value"], columns="concept", aggfunc="first",
                                           values=["route", "oracle-normal", "faint", "l1"], sort=False).round(2).to_string())
    write_curve(rows, cfg)

