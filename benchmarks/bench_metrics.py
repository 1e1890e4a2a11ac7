"""Time of the evaluation of one trained explainer, per metric:
python benchmarks/bench_metrics.py [--explainer PATH] [--device auto].

Default explainer: notebook 03's for quick / colored_mnist / BCE-OE / seed 0 (run it first).
Times: explaining the test anomalies (K counterfactuals each), φ on normal test data, the
oracle (loaded from its cache, else trained: timed apart), the oracle-based metrics, FID (three
sets), and the gradient heatmaps of notebook 05. Writes results/benchmarks/metrics-<run>.json.
"""

import argparse
import time
from pathlib import Path

from cfx_lib.counterfactual import load_explainer
from cfx_lib.detectors import gradient_heatmap
from cfx_lib.device import resolve_device
from cfx_lib.io import write_json
from cfx_lib.metrics import OracleFeatures, changed_factors, concept_purity, counterfactual_metrics, fid
from cfx_lib.paths import default_results_root

from _study import open_study

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--explainer", default=None)
parser.add_argument("--device", default="auto")
args = parser.parse_args()
path = Path(args.explainer) if args.explainer else \
    default_results_root() / "quick" / "runs" / "colored_mnist-default-bce-s0" / "03_counterfactual" / "explainer.pt"
if not path.is_file():
    raise SystemExit(f"no explainer at {path}: run notebook 03 first (make reproduce), or pass --explainer")
device = resolve_device(args.device)
explainer = load_explainer(path, device=device)
meta = explainer.meta
study = open_study(meta["profile"], meta["dataset"], meta["seed"], normal=meta["normal"])  # the explainer's run
train, test = study.train, study.test
times: dict[str, float] = {}


def timed(name, fn):
    t0 = time.perf_counter()
    value = fn()
    times[name] = time.perf_counter() - t0
    return value


explanation = timed("explain_test_anomalies", lambda: explainer.explain(test.anomalous.images))
normal_scores = timed("score_normal_test", lambda: explainer.detector.score_images(test.normal.images, device=device))
oracle = timed("oracle_load_or_train", study.oracle)
timed("counterfactual_metrics", lambda: counterfactual_metrics(explanation, normal_scores, oracle, study.setup,
                                                               explainer.concept_classifier))
timed("purity", lambda: concept_purity(changed_factors(oracle, test.anomalous.images, explanation.counterfactuals)))
features = OracleFeatures(oracle)
timed("fid_x3", lambda: [fid(a, test.normal.images, features) for a in
                         (explanation.counterfactuals.flatten(0, 1), test.anomalous.images, train.normal.images)])
timed("heatmaps_ig_100", lambda: gradient_heatmap(explainer.detector, test.anomalous.images[:100].to(device),
                                                  method="integrated_gradients"))
out = {"explainer": str(path), "device": str(device), "n_test_anomalies": len(test.anomalous),
       "n_test_normal": len(test.normal), "seconds": times, "total_seconds": sum(times.values())}
write_json(out, study.root / "benchmarks" / f"metrics-{path.parents[1].name}.json")
print({k: round(v, 2) for k, v in times.items()}, f"total {sum(times.values()):.1f} s")
