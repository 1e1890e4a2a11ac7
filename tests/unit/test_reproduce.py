import json

import pandas as pd
import pytest

from cfx_lib.reproduce import THREAD_VARIABLES, Grid, plan, reproduce, thread_limits


def write_grid(path, **grid):
    path.write_text(json.dumps(grid))
    return path


@pytest.mark.parametrize("grid, match", [
    ({"datasets": [{"dataset": "svhn"}], "detectors": ["bce"], "seeds": [0]}, "unknown dataset 'svhn'"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["ocsvm"], "seeds": [0]}, "unknown detector 'ocsvm'"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["bce"], "seeds": []}, "seeds"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["bce"]}, r"missing key\(s\) \['seeds'\]"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["bce"], "seeds": [0], "epochs": 3}, "unknown key"),
    ({"datasets": [{"dataset": "mnist", "normal": {"normal_classes": [12]}}], "detectors": ["bce"], "seeds": [0]}, "normal class 12"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["bce"], "seeds": [0], "counterfactuals": {"signs": ["hsc"]}},
     r"detector\(s\) \['hsc'\] that are not in detectors"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["bce"], "seeds": [0], "counterfactuals": {"mnist": ["bce"]}},
     "not in datasets"),
    ({"datasets": [{"dataset": "signs"}], "detectors": ["bce"], "seeds": [0], "bias": ["signs"]}, "colour factor"),
])
def test_grid_errors_are_clear(tmp_path, grid, match):
    with pytest.raises(ValueError, match=match):
        Grid.load(write_grid(tmp_path / "g.json", **grid))


def test_plan_covers_the_grid(tmp_path):
    grid = Grid([{"dataset": "signs", "normal": {}}, {"dataset": "colored_mnist", "normal": {}}], ["bce", "hsc"], [0, 1])
    data_stage, detector_stage, cf_stage, tables_stage, figures_stage, bias_stage = plan("smoke", grid, tmp_path)
    assert bias_stage == []  # no bias datasets in this grid
    assert len(data_stage) == 4 and len(detector_stage) == 8 and len(cf_stage) == 8
    assert [s.params for s in figures_stage] == [s.params | {"OUTPUT_DIR": s.params["OUTPUT_DIR"].replace(
        "03_counterfactual", "05_qualitative")} for s in cf_stage]
    assert len(tables_stage) == 1 and tables_stage[0].out_dir == tmp_path / "smoke" / "tables"
    assert detector_stage[0].out_dir == tmp_path / "smoke" / "runs" / "signs-default-bce-s0" / "02_detector"


def test_plan_explains_only_the_listed_detectors(tmp_path):
    grid = Grid([{"dataset": "signs", "normal": {}}, {"dataset": "colored_mnist", "normal": {}}], ["bce", "hsc"], [0],
                counterfactuals={"colored_mnist": ["bce", "hsc"], "signs": ["bce"]})
    cf_stage = plan("smoke", grid, tmp_path)[2]
    assert sorted((s.params["DATASET"], s.params["DETECTOR"]) for s in cf_stage) == [
        ("colored_mnist", "bce"), ("colored_mnist", "hsc"), ("signs", "bce")]
    assert cf_stage[0].notebook == "03_counterfactual"


def test_plan_runs_the_bias_study_only_on_listed_datasets(tmp_path):
    grid = Grid([{"dataset": "signs", "normal": {}}, {"dataset": "colored_mnist", "normal": {}}], ["bce"], [0, 1],
                bias=["colored_mnist"])
    bias_stage = plan("smoke", grid, tmp_path)[-1]
    assert [s.out_dir for s in bias_stage] == [tmp_path / "smoke" / "runs" / f"colored_mnist-default-s{i}" / "06_bias"
                                               for i in (0, 1)]


@pytest.mark.slow
def test_runner_end_to_end_with_a_failing_cell_and_resume(tmp_path):
    """01_data on a dataset that is available and one that is not (gtsrb offline): the failure is
    reported, the other cell is done; a rerun skips the done step."""
    grid = write_grid(tmp_path / "g.json", datasets=[{"dataset": "gtsrb"}, {"dataset": "signs"}], detectors=["bce"], seeds=[0])
    results = tmp_path / "results"
    steps = reproduce("smoke", grid, results_root=results, notebooks=["01_data"])
    status = {s.params["DATASET"]: s.status for s in steps}
    assert status == {"gtsrb": "unavailable", "signs": "done"}
    summary = pd.read_csv(results / "smoke" / "summary.csv")
    assert set(summary["status"]) == {"unavailable", "done"}
    done = summary[summary["status"] == "done"].iloc[0]
    assert done["n_test"] == 300 and done["executed_notebook"].endswith("01_data.ipynb")
    assert "DatasetUnavailable" in summary[summary["status"] == "unavailable"].iloc[0]["error"]
    signs_out = results / "smoke" / "runs" / "signs-default-s0" / "01_data"
    assert (signs_out / "samples.png").is_file() and (signs_out / "counts.csv").is_file()
    again = reproduce("smoke", grid, results_root=results, notebooks=["01_data"])
    assert {s.params["DATASET"]: s.status for s in again} == {"gtsrb": "unavailable", "signs": "skipped"}


def test_summary_keeps_rows_of_earlier_invocations(tmp_path):
    from cfx_lib.reproduce import Step, summarize

    def step(notebook, run, value):
        out = tmp_path / "runs" / run / notebook
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps({"m": value}))
        return Step(notebook, {"PROFILE": "smoke", "DATASET": "signs"}, out, status="done")

    summarize([step("02_detector", "a", 1.0)], tmp_path)
    summarize([step("03_counterfactual", "a", 2.0)], tmp_path)
    table = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(table["notebook"]) == ["02_detector", "03_counterfactual"]
    summarize([Step("03_counterfactual", {"PROFILE": "smoke", "DATASET": "signs"}, tmp_path / "runs" / "a" / "03_counterfactual",
                    status="done")], tmp_path)  # a rerun replaces its row
    table = pd.read_csv(tmp_path / "summary.csv")
    assert len(table) == 2


def test_parallel_jobs_share_the_cores(monkeypatch):
    import os

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # set by the user: kept
    with thread_limits(1, cpus=8) as threads:
        assert threads is None and "OMP_NUM_THREADS" not in os.environ
    with thread_limits(3, cpus=8) as threads:
        assert threads == 2 and os.environ["OMP_NUM_THREADS"] == "2" and os.environ["MKL_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "3"
    with thread_limits(16, cpus=2) as threads:
        assert threads == 1


def test_grid_cells_cover_the_plan_once(tmp_path):
    grid = Grid([{"dataset": "signs", "normal": {}}, {"dataset": "colored_mnist", "normal": {}}], ["bce", "hsc"], [0, 1],
                counterfactuals={"colored_mnist": ["bce", "hsc"], "signs": ["bce"]}, bias=["colored_mnist"])
    cells = grid.cells()
    assert len(cells) == 4 and all(len(c.datasets) == 1 and len(c.seeds) == 1 for c in cells)

    def keys(g):  # every step but the profile-level tables
        return sorted(s.key for stage in plan("smoke", g, tmp_path) for s in stage if s.notebook != "04_quantitative")

    assert sorted(k for c in cells for k in keys(c)) == keys(grid)


def test_step_key_follows_parameters_and_notebook_code(tmp_path, monkeypatch):
    import cfx_lib.reproduce as rp

    step = rp.Step("01_data", {"PROFILE": "smoke", "DATASET": "signs", "SEED": 0}, tmp_path)
    key = step.key
    assert rp.Step("01_data", {"PROFILE": "smoke", "DATASET": "signs", "SEED": 1}, tmp_path).key != key
    monkeypatch.setattr(rp, "notebook_code", lambda name: "edited")
    assert step.key != key
    # a profile's settings are not notebook parameters, yet a change of them reruns its steps
    import dataclasses

    edited = rp.Step("01_data", {"PROFILE": "smoke", "DATASET": "signs", "SEED": 0}, tmp_path).key
    smoke = rp.PROFILES["smoke"]
    monkeypatch.setitem(rp.PROFILES, "smoke", dataclasses.replace(smoke, n_oe=smoke.n_oe + 1))
    assert rp.Step("01_data", {"PROFILE": "smoke", "DATASET": "signs", "SEED": 0}, tmp_path).key != edited


def test_kernels_look_up_results_in_the_runners_results_root(tmp_path, monkeypatch):
    """Notebook 03 finds notebook 02's detector through CFX_RESULTS_ROOT: the runner must point
    its kernels at the tree it writes, or they would read another tree's checkpoints."""
    import os

    import cfx_lib.reproduce as rp

    seen = []

    def fake_run_step(step, repo, force=False):
        seen.append(os.environ.get("CFX_RESULTS_ROOT"))
        step.status = "done"
        return step

    monkeypatch.setattr(rp, "run_step", fake_run_step)
    monkeypatch.setenv("CFX_RESULTS_ROOT", "/elsewhere")
    grid = write_grid(tmp_path / "g.json", datasets=[{"dataset": "signs"}], detectors=["bce"], seeds=[0])
    rp.reproduce("smoke", grid, results_root=tmp_path / "tree", notebooks=["01_data", "02_detector"])
    assert seen == [str(tmp_path / "tree")] * 2
    assert os.environ["CFX_RESULTS_ROOT"] == "/elsewhere"


@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path):
    """Every stage of the smoke grid: notebooks executed, per-run outputs, the profile's tables
    and figures, a summary row per step; a rerun skips everything."""
    results = tmp_path / "results"
    steps = reproduce("smoke", results_root=results)
    assert {s.status for s in steps} == {"done"}, [(s.notebook, s.label, s.error) for s in steps if s.status != "done"]
    assert {s.notebook for s in steps} == {"01_data", "02_detector", "03_counterfactual", "04_quantitative",
                                           "05_qualitative", "06_bias"}
    profile = results / "smoke"
    run = profile / "runs" / "colored_mnist-default-bce-s0"
    for path in ("02_detector/detector.pt", "03_counterfactual/explainer.pt", "03_counterfactual/metrics.json",
                 "03_counterfactual/oracle_changes_by_factor.csv", "03_counterfactual/concept_routes.png",
                 "05_qualitative/qualitative.png", "05_qualitative/05_qualitative.ipynb"):
        assert (run / path).is_file(), path
    for name in ("table1_normality", "table2_fidn", "table2a_retraining", "table4_disentanglement"):
        assert (profile / "tables" / f"{name}.csv").is_file() and (profile / "tables" / f"{name}.md").is_file()
    assert (profile / "figures" / "normality_vs_oracle.png").is_file()
    table1 = pd.read_csv(profile / "tables" / "table1_normality.csv")
    assert sorted(table1["dataset"]) == ["colored_mnist", "signs"]
    summary = pd.read_csv(profile / "summary.csv")
    assert len(summary) == len(steps) and "retrain_auroc" in summary.columns
    again = reproduce("smoke", results_root=results)
    assert {s.status for s in again} == {"skipped"}


def test_tables_step_reruns_when_a_run_is_added(tmp_path):
    """Notebook 04 has no per-run parameters: adding a seed's counterfactual run (or rerunning one)
    must change its key, or the tables would keep the runs of the first invocation."""
    grid = Grid([{"dataset": "signs", "normal": {}}], ["bce"], [0])

    def tables_key():
        (tables,) = plan("smoke", grid, tmp_path)[3]
        assert tables.notebook == "04_quantitative"
        return tables.key

    empty = tables_key()
    data_key = plan("smoke", grid, tmp_path)[0][0].key
    run = tmp_path / "smoke" / "runs" / "signs-default-bce-s1" / "03_counterfactual"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"oracle_normal": 0.3}))
    one = tables_key()
    assert one != empty
    assert tables_key() == one  # nothing changed: the step stays done
    (run / "metrics.json").write_text(json.dumps({"oracle_normal": 0.4}))
    assert tables_key() != one
    (run / "figure.png").write_text("not read by the tables")
    two = tables_key()
    (run / "figure.png").write_text("changed")
    assert tables_key() == two
    assert plan("smoke", grid, tmp_path)[0][0].key == data_key  # per-run steps do not read the others' outputs


def test_a_copied_results_tree_keeps_its_steps_done(tmp_path):
    """Step keys do not contain the results root: a tree copied elsewhere is not run again, and a
    mark written with the old, path-bearing key still counts where the tree has not moved."""
    import shutil

    import cfx_lib.reproduce as rp

    grid = Grid([{"dataset": "signs", "normal": {}}], ["bce"], [0])
    here, there = tmp_path / "here", tmp_path / "there"
    steps = [s for stage in plan("smoke", grid, here) for s in stage]
    for step in steps:  # as run_step leaves a finished step
        step.out_dir.mkdir(parents=True, exist_ok=True)
        (step.out_dir / "metrics.json").write_text("{}")
        (step.out_dir / rp.DONE_MARK).write_text(step.key + "\n")
    assert all(rp.is_done(s) for stage in plan("smoke", grid, here) for s in stage)
    shutil.copytree(here, there)
    moved = [s for stage in plan("smoke", grid, there) for s in stage]
    assert [s.out_dir.relative_to(there) for s in moved] == [s.out_dir.relative_to(here) for s in steps]
    assert all(rp.is_done(s) for s in moved)
    data = moved[0]
    (data.out_dir / rp.DONE_MARK).write_text(data.legacy_key + "\n")  # written before the change
    assert data.legacy_key != data.key and rp.is_done(data)
    (data.out_dir / rp.DONE_MARK).write_text(steps[0].legacy_key + "\n")  # the old key names the old root
    assert not rp.is_done(data)
    # a changed parameter still reruns the step
    assert rp.Step("01_data", {**data.params, "SEED": 1}, data.out_dir).key != data.key


def test_shipped_grids_load():
    from cfx_lib.paths import find_repo_root

    paths = sorted((find_repo_root() / "configs").glob("*.json"))
    assert {p.stem for p in paths} >= {"smoke", "quick", "quick_seeds", "paper"}
    for path in paths:
        Grid.load(path)
