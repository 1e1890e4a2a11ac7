"""How several detectors of one run read the routes to normality that counterfactuals take: are the
counterfactuals one generator found for one detector normal for another?

    python benchmarks/bench_route_reading.py [--profile quick] [--seed 0] [--detectors hsc bce]
        [--checkpoints DIR/cf_last.pt ...] [--reading profile|checkpoints] [--alpha 0]
        [--blend 0.25 0.5 0.75] [--tag NAME] [--results-root results]

On ``colored_mnist`` (normal: digit 1 or cyan) an anomaly becomes normal by one of two routes: redrawn
as a 1 in its own colour, or recoloured to cyan with its digit kept. Each counterfactual is labelled
by the route it took as the run's oracle reads it (:func:`cfx_lib.metrics.single_factor_routes`;
"other" for none or both), and every detector named scores the counterfactuals of each route
(:func:`cfx_lib.metrics.route_reading`): as they are, as the counterfactual score loss reads them
(``--reading profile``, the default: the profile's ``score_shift``, ``score_noise``, ``score_rotate``
and ``score_scale``; ``--reading checkpoints``: the reading the checkpoints were trained under, which
must be one for all of them; every source is read the same way), and along the straight line from the
anomaly (blend weights ``--blend``). The sources are two references, every test anomaly recoloured
exactly to the normal colour (the colour route drawn perfectly, :func:`cfx_lib.metrics.recolor`) and replaced by
a real test image of the normal digit drawn in the anomaly's own colour (the digit route drawn
perfectly, :func:`cfx_lib.metrics.redraw`; one seeded draw of those images), and concept k at ``--alpha`` of each generator
checkpoint (``cf_last.pt`` of notebook 03 or ``bench_cf_curve.py --out``), whichever detector it was
trained on. So a route that one detector's generator takes and another's never does can be read by
both: refused where it ends, or accepted there but not on the way.

The detectors are notebook 02's of the run (``<results-root>/<profile>/runs/<run>/02_detector``),
trained first as notebook 03 would where missing; the oracle is the cached one of notebook 03.
Writes ``<results-root>/benchmarks/route-reading-<profile>-<dataset>-s<seed>[-<tag>].json``, ``.csv``
and ``.png`` (share refused as the loss reads them, per source, concept and route, one bar per detector).
"""

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from cfx_lib.counterfactual import generate, load_training_checkpoint
from cfx_lib.data.colored_mnist import PALETTE
from cfx_lib.io import write_json, write_text
from cfx_lib.metrics import normal_values_of, recolor, redraw, route_reading, single_factor_routes
from cfx_lib.notebook import environment
from cfx_lib.viz import save_figure

from _study import open_study

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist", choices=["colored_mnist"],
                    help="a dataset whose normal set is a union over factors")
parser.add_argument("--seed", type=int, default=0, help="the run's seed (data, detectors, oracle)")
parser.add_argument("--detectors", nargs="+", default=["hsc", "bce"])
parser.add_argument("--checkpoints", nargs="*", default=[], help="generator training checkpoints (cf_last.pt)")
parser.add_argument("--reading", choices=["profile", "checkpoints"], default="profile",
                    help="how the score loss reads φ in the '_read' columns: the profile's reading, or the one "
                         "the checkpoints were trained under (all of them alike)")
parser.add_argument("--alpha", type=float, default=0.0, help="the target score the counterfactuals are drawn at")
parser.add_argument("--blend", type=float, nargs="*", default=[0.25, 0.5, 0.75])
parser.add_argument("--tag", default="")
parser.add_argument("--results-root", default=None)
args = parser.parse_args()
if not 0 <= args.alpha <= 1 or not all(0 <= t <= 1 for t in args.blend):
    parser.error("--alpha and --blend take values in [0, 1]")
missing = [p for p in args.checkpoints if not Path(p).is_file()]
if missing:
    parser.error(f"no checkpoint at {', '.join(missing)}")
loaded = [(path, *load_training_checkpoint(path)) for path in args.checkpoints]  # (path, models, config, state)
if args.reading == "checkpoints":
    if not loaded:
        parser.error("--reading checkpoints reads φ as the checkpoints were trained to: name them with --checkpoints")
    if any(cfg.score_reading != loaded[0][2].score_reading for _, _, cfg, _ in loaded):
        parser.error("--reading checkpoints needs checkpoints trained under one reading of φ, got "
                     + "; ".join(f"{path}: {cfg.score_reading}" for path, _, cfg, _ in loaded))

study = open_study(args.profile, args.dataset, args.seed, args.results_root)
profile, root, test, setup = study.profile, study.root, study.test, study.setup
if args.reading == "checkpoints":  # as the score loss of the checkpoints read φ
    reading = loaded[0][2].score_reading
else:  # as the profile's score loss reads φ
    reading = profile.counterfactual_config(study.train.image_shape[-1]).score_reading
detectors = {kind: study.detector(kind)[0].eval() for kind in args.detectors}
oracle = study.oracle()
normal_values = normal_values_of(setup)
anomalies = test.anomalous.images

# (source, concept or 0, counterfactuals of every test anomaly)
sources = [(f"recoloured to {c}", 0, recolor(anomalies, PALETTE[c])) for c in setup.normal_colors]
draw = torch.Generator().manual_seed(args.seed)
for digit in setup.normal_digits:  # real test images of the digit, each in one anomaly's colour
    shapes = test.images[test.factors["digit"] == digit]
    if not len(shapes):
        print(f"no test image of the digit {digit} to redraw the anomalies as: that reference is left out")
        continue
    picked = shapes[torch.randint(len(shapes), (len(anomalies),), generator=draw)]
    sources.append((f"redrawn as real {digit}s", 0, redraw(anomalies, picked)))
for path, models, cfg, state in loaded:
    trained_on = state.get("warm_start", {}).get("source")
    label = f"{Path(path).parent.name}@{state['iteration']}"
    print(f"{label}: {path}" + (f" (warm-started from {trained_on})" if trained_on else ""))
    sources += [(label, k + 1, generate(models.explaining_generator, anomalies, args.alpha, k))
                for k in range(cfg.n_concepts)]

rows = []
for source, concept, counterfactuals in sources:
    routes = single_factor_routes(oracle, anomalies, counterfactuals, normal_values)
    for row in route_reading(detectors, anomalies, counterfactuals, routes, blend=args.blend, **reading):
        rows.append({"source": source, "concept": concept, **row})
table = pd.DataFrame(rows)
pd.set_option("display.width", 200)
print(table.to_string(index=False, float_format="{:.3f}".format))

name = f"route-reading-{profile.name}-{args.dataset}-s{args.seed}" + (f"-{args.tag}" if args.tag else "")
out = root / "benchmarks"
write_json({"profile": profile.name, "dataset": args.dataset, "seed": args.seed, "detectors": args.detectors,
            "checkpoints": args.checkpoints, "alpha": args.alpha, "reading": args.reading, **reading,
            "environment": environment(), "rows": rows}, out / f"{name}.json")
write_text(table.to_csv(index=False), out / f"{name}.csv")
shown = table[table["route"] != "other"]
title = f"{args.dataset} seed {args.seed} ({profile.name}): counterfactuals by route, read by each detector"
if shown.empty:  # e.g. an oracle that reads no counterfactual as changed in one factor to a normal value
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.text(0.5, 0.5, "no counterfactual took a single-factor route", ha="center", va="center")
    ax.set(title=title, xticks=[], yticks=[])
else:
    groups = shown.assign(group=shown["source"] + shown["concept"].map(lambda k: f" k{k}" if k else "")
                          + "\n" + shown["route"] + " route")
    pivot = groups.pivot_table(index="group", columns="detector", values="refused_read", sort=False)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(pivot) + 2), 3.8))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set(ylabel="share refused (> 0.5)\nas the score loss reads them", ylim=(0, 1.02), xlabel="", title=title)
    ax.tick_params(axis="x", labelsize=7)
save_figure(fig, out / f"{name}.png")
plt.close(fig)
print(f"wrote {out / name}.json, .csv and .png")
