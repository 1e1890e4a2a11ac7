"""The benchmark scripts run (on the smoke profile, a few iterations): they measure, so they are not
timed here, but a broken script would only show when someone needs its figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, results_root: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a benchmark script offline into ``results_root``; with ``check``, it must succeed."""
    env = os.environ | {"CFX_OFFLINE": "1", "CFX_RESULTS_ROOT": str(results_root), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_cf_curve_resumes_through_its_iteration_counts(tmp_path):
    run_script("bench_cf_curve.py", "--profile", "smoke", "--iterations", "2", "4", "--options", '{"batch_size": 8}',
               "--tag", "b8", "--out", str(tmp_path / "gen"), results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "cf-curve-smoke-colored_mnist-default-bce-s0-b8.json").read_text())
    assert [r["iterations"] for r in result["rows"]] == [2, 4]
    assert result["config"]["batch_size"] == 8 and result["options"] == {"batch_size": 8}
    assert result["environment"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # speed's context
    for row in result["rows"]:
        assert all(0.0 <= row[k] <= 1.0 for k in ("oracle_normal", "normality_auroc", "concept_acc", "purity",
                                                    "oracle_normal_visible", "faint_share"))
        assert row["oracle_normal_visible"] <= row["oracle_normal"]
    assert result["rows"][1]["train_minutes"] >= result["rows"][0]["train_minutes"]  # resumed, not restarted
    routes = result["rows"][1]["routes"]  # per concept and value of each factor of the test anomalies
    assert {r["grouped by"] for r in routes} == {"digit", "color"} and {r["concept"] for r in routes} == {1, 2}
    assert all(r["route"] in ("digit", "color", "none") and 0.0 <= r["oracle-normal"] <= 1.0 for r in routes)
    assert all(0.0 <= r["faint"] <= 1.0 for r in routes)
    assert (tmp_path / "benchmarks" / "cf-curve-smoke-colored_mnist-default-bce-s0-b8.png").is_file()


@pytest.mark.slow
def test_cf_curve_trains_its_detector_on_oe_drawn_as_asked(tmp_path):
    """``--detector-options``: the detector is trained anew into --out with its OE drawn otherwise (marks
    here), and the JSON says how."""
    options = {"oe": {"marks": 0.5}}
    run_script("bench_cf_curve.py", "--profile", "smoke", "--iterations", "2", "--detector-options", json.dumps(options),
               "--tag", "marks", "--out", str(tmp_path / "gen"), results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "cf-curve-smoke-colored_mnist-default-bce-s0-marks.json").read_text())
    assert result["detector_options"] == options and len(result["rows"]) == 1
    state = torch.load(tmp_path / "gen" / "detector" / "detector_last.pt", weights_only=True)
    assert state["fingerprint"]["n_outliers"] > 0  # trained here, with OE


@pytest.mark.slow
def test_a_generator_warm_started_on_another_detector_and_read_by_both(tmp_path):
    """bench_cf_curve.py --warm-start continues a BCE-OE generator under HSC-OE from its iteration on;
    bench_route_reading.py reads both generators' counterfactuals, an exact recolouring and real 1s drawn
    in the anomalies' colours by both detectors, per route to normality."""
    run_script("bench_cf_curve.py", "--profile", "smoke", "--iterations", "2", "--out", str(tmp_path / "bce"),
               results_root=tmp_path)
    run_script("bench_cf_curve.py", "--profile", "smoke", "--detector", "hsc", "--iterations", "2", "4",
               "--warm-start", str(tmp_path / "bce" / "cf_last.pt"), "--out", str(tmp_path / "hsc"), "--tag", "warm",
               results_root=tmp_path)
    curve = json.loads((tmp_path / "benchmarks" / "cf-curve-smoke-colored_mnist-default-hsc-s0-warm.json").read_text())
    assert curve["warm_start"] == str(tmp_path / "bce" / "cf_last.pt") and [r["iterations"] for r in curve["rows"]] == [2, 4]
    state = torch.load(tmp_path / "hsc" / "cf_last.pt", weights_only=True)
    assert state["iteration"] == 4 and state["warm_start"]["iteration"] == 2
    assert state["history"][0]["iteration"] <= 2  # the BCE-OE run's losses come along
    checkpoints = [str(tmp_path / "bce" / "cf_last.pt"), str(tmp_path / "hsc" / "cf_last.pt")]
    run_script("bench_route_reading.py", "--profile", "smoke", "--checkpoints", *checkpoints, "--blend", "0.5",
               results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "route-reading-smoke-colored_mnist-s0.json").read_text())
    rows = result["rows"]
    assert {r["source"] for r in rows} == {"recoloured to cyan", "redrawn as real 1s", "bce@2", "hsc@4"}
    assert {r["concept"] for r in rows if r["source"] == "hsc@4"} <= {1, 2} and result["shift"] >= 0
    assert {r["detector"] for r in rows} == {"hsc", "bce"} and {r["route"] for r in rows} <= {"digit", "color", "other"}
    for row in rows:
        assert row["n"] > 0 and all(0 <= row[k] <= 1 for k in ("refused", "refused_read", "refused_at_0.5"))
    # every counterfactual is counted once per source and detector (the smoke oracle, trained for an epoch,
    # reads few routes; tests/unit/metrics/test_reading.py checks the labels)
    counted = {key: sum(r["n"] for r in rows if (r["source"], r["concept"], r["detector"]) == key)
               for key in {(r["source"], r["concept"], r["detector"]) for r in rows}}
    assert len(counted) == 2 * (1 + 1 + 2 + 2) and len(set(counted.values())) == 1  # 6 sources × 2 detectors
    assert (tmp_path / "benchmarks" / "route-reading-smoke-colored_mnist-s0.png").is_file()
    assert (tmp_path / "benchmarks" / "route-reading-smoke-colored_mnist-s0.csv").is_file()
    assert result["reading"] == "profile"
    # --reading checkpoints: φ read as a generator trained through rotations read it, not as the profile does
    turned = {"score_shift": 0, "score_rotate": 10.0, "score_scale": 0.1}
    run_script("bench_cf_curve.py", "--profile", "smoke", "--iterations", "1", "--options", json.dumps(turned),
               "--detector-checkpoint", str(tmp_path / "bce" / "detector" / "detector.pt"), "--out", str(tmp_path / "turned"),
               "--tag", "turned", results_root=tmp_path)
    turned_checkpoint = str(tmp_path / "turned" / "cf_last.pt")
    run_script("bench_route_reading.py", "--profile", "smoke", "--checkpoints", turned_checkpoint, "--reading",
               "checkpoints", "--blend", "0.5", "--tag", "turned", results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "route-reading-smoke-colored_mnist-s0-turned.json").read_text())
    assert result["reading"] == "checkpoints" and (result["shift"], result["rotate"], result["scale"]) == (0, 10.0, 0.1)
    mixed = run_script("bench_route_reading.py", "--profile", "smoke", "--checkpoints", turned_checkpoint, checkpoints[0],
                       "--reading", "checkpoints", results_root=tmp_path, check=False)
    assert mixed.returncode != 0 and "one reading of φ" in mixed.stderr


@pytest.mark.slow
def test_cf_curve_explains_the_oracle_detector(tmp_path):
    """``--detector oracle``: a detector read by a second oracle, trained into --out with seed + 1,
    while the cached oracle of the results tree judges."""
    run_script("bench_cf_curve.py", "--profile", "smoke", "--detector", "oracle", "--iterations", "2",
               "--out", str(tmp_path / "gen"), results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "cf-curve-smoke-colored_mnist-default-oracle-s0.json").read_text())
    assert result["run"] == "colored_mnist-default-oracle-s0" and len(result["rows"]) == 1
    assert result["oracle_gate"] == "contrast"  # faint images are anomalous by default
    reader = torch.load(tmp_path / "gen" / "oracle_detector.pt", weights_only=True)
    judge = torch.load(tmp_path / "smoke" / "oracles" / "colored_mnist-s0.pt", weights_only=True)
    assert reader["meta"]["seed"] == 1 and judge["meta"]["seed"] == 0
    assert not torch.equal(next(iter(reader["state_dict"].values())), next(iter(judge["state_dict"].values())))


@pytest.mark.slow
def test_counterfactual_speed_benchmark_writes_its_figures_per_setting(tmp_path):
    run_script("bench_counterfactual.py", "--profile", "smoke", "--sizes", "28", "--iterations", "2", results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "counterfactual-smoke-cpu.json").read_text())
    (row,) = result["results"]
    assert row["size"] == 28 and row["iterations"] == 2 and row["iters_per_second"] > 0 and row["peak_memory_mb"] > 0
    env = result["environment"]  # the figures hold for this processor and thread count only
    assert env["threads"] == result["cpu_threads"] and env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert row["precision"] == "float32" and result["options"] == {}
    run_script("bench_counterfactual.py", "--profile", "smoke", "--sizes", "28", "--iterations", "2",
               "--options", '{"precision": "bfloat16"}', "--tag", "bf16", results_root=tmp_path)
    (row,) = json.loads((tmp_path / "benchmarks" / "counterfactual-smoke-cpu-bf16.json").read_text())["results"]
    assert row["precision"] == "bfloat16" and row["iters_per_second"] > 0


@pytest.mark.slow
def test_cf_seeds_runs_each_seed_on_one_detector_and_pairs_with_a_baseline(tmp_path):
    common = ("--profile", "smoke", "--iterations", "2", "--generator-seeds", "0", "1", "--jobs", "2")
    run_script("bench_cf_seeds.py", *common, "--options", '{"batch_size": 8}', "--tag", "base",
               "--out", str(tmp_path / "base"), results_root=tmp_path)
    base_json = tmp_path / "benchmarks" / "cf-seeds-smoke-colored_mnist-default-bce-s0-base.json"
    base = json.loads(base_json.read_text())
    assert [(r["generator_seed"], r["iterations"]) for r in base["rows"]] == [(0, 2), (1, 2)]
    for seed in (0, 1):  # each seed trained its own generator
        curve = json.loads((tmp_path / "benchmarks" / f"cf-curve-smoke-colored_mnist-default-bce-s0-base-g{seed}.json").read_text())
        assert curve["config"]["seed"] == seed and curve["config"]["batch_size"] == 8
    (row,) = base["summary"]
    assert row["seeds"] == 2 and 0 <= row["oracle_normal mean"] <= 1 and base["comparisons"] == []
    assert (tmp_path / "base" / "detector" / "detector.pt").is_file() and (tmp_path / "base" / "g1.log").is_file()
    # a second setting on the same detector, paired with the first seed by seed
    run_script("bench_cf_seeds.py", *common, "--options", '{"batch_size": 8, "weights": {"proximity": 3.0}}',
               "--tag", "prox", "--out", str(tmp_path / "prox"), "--compare", str(base_json),
               "--detector-checkpoint", base["detector"], results_root=tmp_path)
    trial = json.loads((tmp_path / "benchmarks" / "cf-seeds-smoke-colored_mnist-default-bce-s0-prox.json").read_text())
    assert trial["detector"] == base["detector"] and not (tmp_path / "prox" / "detector").exists()
    assert [c["metric"] for c in trial["comparisons"]] == ["oracle_normal", "purity"]
    first = trial["comparisons"][0]
    assert first["seeds"] == [0, 1] and first["differences"] == pytest.approx(
        [t["oracle_normal"] - b["oracle_normal"] for t, b in zip(trial["rows"], base["rows"])])
    assert (tmp_path / "benchmarks" / "cf-seeds-smoke-colored_mnist-default-bce-s0-prox.png").is_file()


@pytest.mark.slow
def test_phi_reading_scores_normal_groups_through_shifts_with_a_detector_trained_on_options(tmp_path):
    run_script("bench_phi_reading.py", "--profile", "smoke", "--shifts", "0", "2", "--rotate", "10", "--scale", "0.1",
               "--detector-options", '{"shift_augment": 2}', "--out", str(tmp_path / "det"), "--tag", "aug2",
               results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "phi-reading-smoke-colored_mnist-default-bce-s0-aug2.json").read_text())
    assert result["detector_options"] == {"shift_augment": 2} and result["group_by"] == "color"
    assert (result["rotate"], result["scale"]) == (10, 0.1)
    assert {r["shift"] for r in result["rows"]} == {0, 2}
    assert "cyan" in {r["color"] for r in result["rows"]}  # the normal colour holds every digit
    assert all(0 <= r["median_score"] <= 1 and 0 <= r["share_anomalous"] <= 1 for r in result["rows"])
    saved = torch.load(tmp_path / "det" / "detector" / "detector_last.pt", weights_only=True)
    assert saved["train_config"]["shift_augment"] == 2  # the options reached the detector's training


@pytest.mark.slow
def test_device_check_runs_its_steps_and_returns_flat_files(tmp_path):
    """benchmarks/device_check.sh, the prepared command for a lent GPU, on the CPU and the smoke
    profile: its speed and curve steps run and what it leaves under $OUT is flat (the device tool
    returns at most 8 files)."""
    out = tmp_path / "out"
    env = os.environ | {"OUT": str(out), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "CFX_DEVICE_PROFILE": "smoke", "CFX_DEVICE_SPEED_PROFILES": "smoke",
                        "CFX_DEVICE_SPEED_ITERATIONS": "2", "CFX_DEVICE_ITERATIONS": "2 4", "CFX_DEVICE_OPTIONS": "{}"}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "device_check.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert all((out / f).is_file() for f in files) and len(files) <= 8
    assert {"device_check.log", "counterfactual-smoke-cpu.json", "losses.csv", "samples_last.png"} <= set(files)
    curve = json.loads((out / "cf-curve-smoke-colored_mnist-default-bce-s0-device.json").read_text())
    assert [r["iterations"] for r in curve["rows"]] == [2, 4]
    assert "torch" in (out / "device_check.log").read_text()


@pytest.mark.slow
def test_oracle_benchmark_reads_real_digits_extra_digits_and_the_letter_control(tmp_path):
    import numpy as np

    from tests.conftest import write_idx

    raw = tmp_path / "extra" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte", np.random.default_rng(0).integers(0, 256, (30, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(30) % 10)
    run_script("bench_oracle.py", "--profile", "smoke", "--seeds", "0", "1", "--recipe", "1", "--letters", "50",
               "--mnist-test-root", str(tmp_path / "extra"), "--tag", "t", results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "oracle-smoke-colored_mnist-r1-t.json").read_text())
    assert result["recipe"] == 1 and result["epochs"] == 1 and result["seeds"] == [0, 1]
    rows = result["rows"]
    assert {(r["set"], r["factor"]) for r in rows} == {("test split", "digit"), ("test split", "color"),
                                                      ("MNIST t10k", "digit"), ("MNIST t10k", "color"),
                                                      ("synthetic letters", "digit")}
    assert [r["n"] for r in rows if r["set"] == "MNIST t10k"] == [30] * 4  # two factors, two seeds
    for r in rows:
        if r["set"] == "synthetic letters":
            assert 0.0 <= r["read_as_confident_digit"] <= 1.0
        else:  # confident readings are a subset of the readings, right or wrong
            assert r["confident_accuracy"] <= r["accuracy"] and r["confident_accuracy"] + r["confident_wrong"] <= 1.0
    assert (tmp_path / "benchmarks" / "oracle-smoke-colored_mnist-r1-t.csv").read_text().startswith("seed,")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_oracle.py"), "--profile", "smoke",
                           "--mnist-test-root", str(tmp_path / "nowhere")], capture_output=True, text=True,
                          env=os.environ | {"CFX_OFFLINE": "1", "CFX_RESULTS_ROOT": str(tmp_path)}, cwd=REPO)
    assert proc.returncode != 0 and "no MNIST test split" in proc.stderr


@pytest.mark.slow
def test_bn_modes_reads_a_trained_generator_three_ways(tmp_path):
    """bench_bn_modes.py judges a batch-norm generator as it explains, with standing statistics and
    in its training batches; a layer-norm generator in the one way it computes."""
    run_script("bench_cf_curve.py", "--profile", "smoke", "--iterations", "2", "--out", str(tmp_path / "bn"),
               results_root=tmp_path)
    run_script("bench_cf_curve.py", "--profile", "smoke", "--iterations", "2", "--out", str(tmp_path / "ln"),
               "--options", '{"g_norm": "layer"}', "--tag", "ln", results_root=tmp_path)
    run_script("bench_bn_modes.py", "--profile", "smoke", "--batches", "3", "--checkpoints",
               str(tmp_path / "bn" / "cf_last.pt"), str(tmp_path / "ln" / "cf_last.pt"), results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "bn-modes-smoke-colored_mnist-default-bce-s0.json").read_text())
    readings = [(Path(r["checkpoint"]).parent.name, r["reading"]) for r in result["rows"]]
    assert readings == [("bn", "running"), ("bn", "standing"), ("bn", "standing-training"), ("bn", "in-batch"),
                        ("ln", "running")]
    curve = json.loads((tmp_path / "benchmarks" / "cf-curve-smoke-colored_mnist-default-bce-s0.json").read_text())
    running = result["rows"][0]  # the running reading is what bench_cf_curve.py measured
    for key in ("oracle_normal", "purity", "normality_auroc", "concept_acc"):
        assert running[key] == pytest.approx(curve["rows"][-1][key])
        assert all(0.0 <= r[key] <= 1.0 for r in result["rows"])
    assert (tmp_path / "benchmarks" / "bn-modes-smoke-colored_mnist-default-bce-s0.csv").is_file()


@pytest.mark.slow
def test_metrics_benchmark_times_the_evaluation_of_an_explainer_of_its_run(tmp_path, toy_explainer):
    """bench_metrics.py opens the explainer's own run (profile, dataset, seed, normal set) through
    ``_study``, as the other scripts do, trains its oracle into the results tree and times each metric."""
    path = toy_explainer(tmp_path)
    run_script("bench_metrics.py", "--explainer", str(path), "--device", "cpu", results_root=tmp_path)
    result = json.loads((tmp_path / "benchmarks" / "metrics-colored_mnist-default-bce-s0.json").read_text())
    assert set(result["seconds"]) == {"explain_test_anomalies", "score_normal_test", "oracle_load_or_train",
                                      "counterfactual_metrics", "purity", "fid_x3", "heatmaps_ig_100"}
    assert result["n_test_anomalies"] > 0 and result["total_seconds"] == pytest.approx(sum(result["seconds"].values()))
    assert (tmp_path / "smoke" / "oracles" / "colored_mnist-s0.pt").is_file()  # the run's oracle, cached
    # the explainer's normal set, not the dataset's default: red digits are normal too, so fewer anomalies
    wider = toy_explainer(tmp_path, run="colored_mnist-wider-bce-s0", normal={"normal_colors": ["cyan", "red"]})
    run_script("bench_metrics.py", "--explainer", str(wider), "--device", "cpu", results_root=tmp_path)
    fewer = json.loads((tmp_path / "benchmarks" / "metrics-colored_mnist-wider-bce-s0.json").read_text())
    assert 0 < fewer["n_test_anomalies"] < 0.9 * result["n_test_anomalies"]
    missing = run_script("bench_metrics.py", "--explainer", str(tmp_path / "nothing.pt"), results_root=tmp_path, check=False)
    assert missing.returncode != 0 and "no explainer at" in missing.stderr
