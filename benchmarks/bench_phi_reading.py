"""How φ scores the normal training images when read the way the counterfactual score loss reads it:
through random shifts of up to N pixels and pixel noise (``score_shift``, ``score_noise``; with
``--rotate`` and ``--scale`` also turned and scaled about the centre, ``score_rotate``,
``score_scale``), per value of one ground-truth factor.

    python benchmarks/bench_phi_reading.py [--profile quick] [--dataset colored_mnist] [--detector bce]
        [--seed 0] [--group-by color] [--shifts 0 1 2 3 4] [--noise 0.05] [--rotate 0] [--scale 0] [--tag NAME]
        [--results-root results] [--out DIR] [--detector-checkpoint PATH | --detector-options JSON]

A shift changes no factor, so a normal image that φ scores as anomalous once it is moved tells
that the loss explains φ-read-through-shifts, which may refuse a route to normality that φ itself
accepts. On ``colored_mnist`` the normal set is "digit 1 or cyan", so grouping the normal images by
colour separates the two routes: the cyan group holds every digit, the other colours hold only 1s.
Uses :func:`cfx_lib.metrics.shift_probe` (one draw of offsets per shift and group, seeded). The
detector is notebook 02's of the run, else ``--detector-checkpoint``, else one trained now into
``--out`` with the profile's schedule changed by ``--detector-options`` (e.g. ``'{"shift_augment":
4}'``, or ``'{"oe": {"marks": 0.5}}'`` for OE drawn otherwise). Writes ``<results-root>/benchmarks/phi-reading-<profile>-<run>[-<tag>].json``, ``.csv`` and
``.png`` (median score per group against the shift, log scale).
"""

import argparse
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cfx_lib.io import write_json
from cfx_lib.metrics import shift_probe
from cfx_lib.viz import save_figure

from _study import open_study

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--profile", default="quick")
parser.add_argument("--dataset", default="colored_mnist")
parser.add_argument("--detector", default="bce")
parser.add_argument("--seed", type=int, default=0, help="the data's and the detector's seed")
parser.add_argument("--group-by", default="color", help="the factor whose values group the normal images")
parser.add_argument("--shifts", type=int, nargs="+", default=[0, 1, 2, 3, 4])
parser.add_argument("--noise", type=float, default=0.05, help="pixel noise added to every reading that moves the image")
parser.add_argument("--rotate", type=float, default=0.0, help="every reading also turns by up to this many degrees")
parser.add_argument("--scale", type=float, default=0.0, help="every reading also scales by a factor in 1 ± this")
parser.add_argument("--tag", default="")
parser.add_argument("--results-root", default=None)
parser.add_argument("--out", default=None, help="where a detector trained here goes (default: a temporary folder)")
parser.add_argument("--detector-checkpoint", default=None)
parser.add_argument("--detector-options", type=json.loads, default={})
args = parser.parse_args()
if min(args.shifts) < 0 or args.noise < 0 or not 0 <= args.rotate <= 180 or not 0 <= args.scale < 1:
    parser.error("--shifts and --noise must be >= 0, --rotate in [0, 180] and --scale in [0, 1)")

study = open_study(args.profile, args.dataset, args.seed, args.results_root)
profile, root, train = study.profile, study.root, study.train
if args.group_by not in train.factors:
    parser.error(f"{args.dataset} has no factor {args.group_by!r}; factors: {list(train.factors) or 'none'}")
out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cfx-phi-reading-"))
detector, source = study.detector(args.detector, checkpoint=args.detector_checkpoint, out_dir=out,
                                  options=args.detector_options)
print("detector:", source)
run = study.run(args.detector)

normal = train.normal
values = normal.factor_values[args.group_by]
rows = []
for shift in args.shifts:
    for index, value in enumerate(values):
        mask = normal.factors[args.group_by] == index
        if not mask.any():
            continue
        moves = shift or args.rotate or args.scale
        probe = shift_probe(detector, normal.images[mask], shift, noise=args.noise if moves else 0.0, seed=shift,
                            rotate=args.rotate, scale=args.scale)
        rows.append({"shift": shift, args.group_by: value, "n": int(mask.sum()), "median_score": probe.median_after,
                     "share_anomalous": 1 - probe.normal_share_after})
table = pd.DataFrame(rows)
print(table.pivot(index=args.group_by, columns="shift", values="median_score").to_string(float_format="{:.4f}".format))
print("share scored above 0.5:")
print(table.pivot(index=args.group_by, columns="shift", values="share_anomalous").to_string(float_format="{:.2f}".format))

name = f"phi-reading-{profile.name}-{run}" + (f"-{args.tag}" if args.tag else "")
write_json({"profile": profile.name, "run": run, "detector": source, "detector_options": args.detector_options,
            "group_by": args.group_by, "noise": args.noise, "rotate": args.rotate, "scale": args.scale,
            "rows": rows}, root / "benchmarks" / f"{name}.json")
table.to_csv(root / "benchmarks" / f"{name}.csv", index=False)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for value, group in table.groupby(args.group_by, sort=False):
    ax.plot(group["shift"], group["median_score"], marker="o", label=f"{value} (n={group['n'].iloc[0]})")
turned = f" (turned ≤ {args.rotate:g}°, scaled ≤ {args.scale:.0%})" if args.rotate or args.scale else ""
ax.set(xlabel=f"random shift of up to N pixels{turned}", ylabel="median φ of normal training images", yscale="log",
       title=f"{run} ({profile.name}) {args.tag}".strip())
ax.axhline(0.5, color="grey", lw=0.8, ls="--")
ax.legend(fontsize=7)
save_figure(fig, root / "benchmarks" / f"{name}.png")
print(f"wrote {root / 'benchmarks' / name}.json, .csv and .png")
