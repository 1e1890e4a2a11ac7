"""Batch reproduction: run the study's notebooks through papermill over a parameter grid.

    python -m cfx_lib.reproduce --profile quick [--grid configs/quick.json] [--jobs N] [--force]

The grid file (``configs/<profile>.json`` by default) lists datasets (with normal sets),
detectors, seeds and which detectors get counterfactuals. Stages run in order (01 data, 02
detectors, 03 counterfactuals, 04 tables over all runs of the profile, 05 qualitative figures,
06 the bias study); the cells of a stage are independent and run ``--jobs`` at a time. Each step writes
``results/<profile>/runs/<run-id>/<notebook>/`` (the executed notebook, ``params.json``,
``metrics.json``, figures, checkpoints). A step whose outputs exist for the same parameters is
skipped (``--force`` reruns it); a failing step does not stop the others, and the closing summary
lists failures with the path of their executed notebook. ``results/<profile>/summary.csv`` has
one row per step: its parameters and every metric of its ``metrics.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DETECTOR_KINDS, PROFILES
from .data.registry import DATASETS, make_setup
from .io import read_json, write_json, write_text
from .notebook import run_dir
from .paths import default_results_root, find_repo_root

#: the notebooks in the order of their stages; each names the grid axes it runs over
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("01_data", ("dataset", "seed")),
    ("02_detector", ("dataset", "detector", "seed")),
    ("03_counterfactual", ("dataset", "detector", "seed")),
    ("04_quantitative", ()),  # one step per profile: the tables over every run
    ("05_qualitative", ("dataset", "detector", "seed")),
    ("06_bias", ("dataset", "seed")),  # only for the grid's ``bias`` datasets
]
#: stages that run only for the (dataset, detector) pairs of the grid's ``counterfactuals``
CF_STAGES = ("03_counterfactual", "05_qualitative")
DONE_MARK = ".step-hash"
#: notebook parameters that say where a step writes and reads, not what it computes; they stay out of
#: the step keys, so that a results tree copied or moved to another root is not run again
LOCATION_PARAMS = ("OUTPUT_DIR", "RESULTS_ROOT")


@dataclass(frozen=True)
class Grid:
    """The parameter grid of a reproduction run."""

    datasets: list[dict[str, Any]]
    detectors: list[str]
    seeds: list[int]
    description: str = ""
    counterfactuals: dict[str, list[str]] | None = None  # dataset -> detectors to explain; None: all
    bias: list[str] = field(default_factory=list)  # datasets of the bias study (06_bias)

    def explains(self, dataset: str, detector: str) -> bool:
        """Whether the counterfactual stages run for this dataset and detector."""
        return self.counterfactuals is None or detector in self.counterfactuals.get(dataset, [])

    @classmethod
    def load(cls, path: str | Path) -> "Grid":
        """Read and validate a grid JSON file, with errors that say what is expected."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no grid file {path}")
        raw = json.loads(path.read_text())
        valid = {"datasets", "detectors", "seeds", "description", "counterfactuals", "bias"}
        unknown = sorted(set(raw) - valid)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; valid: {sorted(valid)}")
        missing = sorted({"datasets", "detectors", "seeds"} - set(raw))
        if missing:
            raise ValueError(f"{path}: missing key(s) {missing}")
        for entry in raw["datasets"]:
            if not isinstance(entry, dict) or "dataset" not in entry:
                raise ValueError(f"{path}: each datasets entry is {{'dataset': name, 'normal': {{...}}}}, got {entry!r}")
            if entry["dataset"] not in DATASETS:
                raise ValueError(f"{path}: unknown dataset {entry['dataset']!r}; valid: {list(DATASETS)}")
            make_setup(entry["dataset"], **entry.get("normal", {}))
        for det in raw["detectors"]:
            if det not in DETECTOR_KINDS:
                raise ValueError(f"{path}: unknown detector {det!r}; valid: {list(DETECTOR_KINDS)}")
        if not raw["seeds"] or any(not isinstance(s, int) or s < 0 for s in raw["seeds"]):
            raise ValueError(f"{path}: seeds must be a non-empty list of non-negative ints")
        bias = raw.get("bias", [])
        for name in bias:
            if name != "colored_mnist":
                raise ValueError(f"{path}: the bias study needs a colour factor; bias may list 'colored_mnist', got {name!r}")
            if name not in {e["dataset"] for e in raw["datasets"]}:
                raise ValueError(f"{path}: bias names dataset {name!r}, which is not in datasets")
        cfs = raw.get("counterfactuals")
        if cfs is not None:
            if not isinstance(cfs, dict):
                raise ValueError(f"{path}: counterfactuals maps a dataset to the detectors to explain, "
                                 f"e.g. {{'signs': ['bce']}}; got {cfs!r}")
            for name, dets in cfs.items():
                if name not in {e["dataset"] for e in raw["datasets"]}:
                    raise ValueError(f"{path}: counterfactuals names dataset {name!r}, which is not in datasets")
                bad = [d for d in dets if d not in raw["detectors"]]
                if bad:
                    raise ValueError(f"{path}: counterfactuals for {name!r} name detector(s) {bad} that are not in "
                                     f"detectors {raw['detectors']}")
        return cls([{"dataset": e["dataset"], "normal": e.get("normal", {})} for e in raw["datasets"]],
                   list(raw["detectors"]), list(raw["seeds"]), raw.get("description", ""),
                   {k: list(v) for k, v in cfs.items()} if cfs is not None else None, list(bias))


    def cells(self) -> list["Grid"]:
        """The grid split into independent cells, one per dataset entry and seed (with all its
        detectors): each can run as its own job on a cluster (e.g. with submitit, see the
        README), after which one run of the profile-level stages (04 tables, 06 bias) on the
        whole grid completes the study."""
        out = []
        for entry in self.datasets:
            cfs = None if self.counterfactuals is None else {entry["dataset"]: self.counterfactuals.get(entry["dataset"], [])}
            for seed in self.seeds:
                out.append(Grid([entry], list(self.detectors), [seed], self.description, cfs,
                                [b for b in self.bias if b == entry["dataset"]]))
        return out


@functools.lru_cache(maxsize=None)
def notebook_code(notebook: str) -> str:
    """A hash of the code cells of ``notebooks/<notebook>.ipynb`` (markdown edits do not count)."""
    import nbformat

    nb = nbformat.read(find_repo_root() / "notebooks" / f"{notebook}.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    return hashlib.sha1(code.encode()).hexdigest()


def profile_fingerprint(profile: str) -> str:
    """A hash of the named profile's settings (:data:`cfx_lib.config.PROFILES`): its schedules and
    generator configuration are not notebook parameters, so they enter the step keys this way."""
    settings = dataclasses.asdict(PROFILES[profile]) if profile in PROFILES else profile
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def profile_inputs(notebook: str) -> tuple[str, ...]:
    """What a profile-level notebook reads from other steps, as globs under ``results/<profile>``
    (none for the per-run notebooks): its step reruns when these files change, e.g. when a run of
    another seed adds its ``metrics.json`` to the tables."""
    if notebook != "04_quantitative":
        return ()
    from .metrics.tables import run_files  # the globs notebook 04's collect_runs reads

    return run_files()


def inputs_fingerprint(root: Path, patterns: tuple[str, ...]) -> str:
    """A hash of the names and contents of the files under ``root`` that match ``patterns``: the
    inputs of a profile-level notebook, which change when runs are added or rerun although its
    parameters do not."""
    digest = hashlib.sha1()
    for path in sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()}):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class Step:
    """One notebook execution."""

    notebook: str
    params: dict[str, Any]
    out_dir: Path
    status: str = "pending"  # done | skipped | failed | unavailable
    seconds: float = 0.0
    error: str = ""

    @property
    def key(self) -> str:
        """A hash of the notebook's code, the step's parameters, the profile's settings and, for a
        profile-level notebook, the files it reads (:func:`profile_inputs`): a step is done when its
        outputs carry this key, so changed code, parameters or profile settings rerun it, and new or
        rerun runs rerun the tables (the trainers resume from their checkpoints, so a rerun of a
        trained step does not train again; a checkpoint written under other training settings is
        refused with a message). The paths of :data:`LOCATION_PARAMS` are left out: a results tree
        copied or moved to another root keeps its steps done."""
        return self._hash(with_location=False)

    @property
    def legacy_key(self) -> str:
        """The key as written before session 9, with the absolute paths of :data:`LOCATION_PARAMS`
        in it: marks of trees that have not moved since still read as done."""
        return self._hash(with_location=True)

    def _hash(self, with_location: bool) -> str:
        params = {k: v for k, v in self.params.items() if with_location or k not in LOCATION_PARAMS}
        content = {"nb": self.notebook, "code": notebook_code(self.notebook),
                   "profile": profile_fingerprint(self.params.get("PROFILE", "")), **params}
        inputs = profile_inputs(self.notebook)
        if inputs:
            content["inputs"] = inputs_fingerprint(self.out_dir.parent, inputs)
        return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @property
    def label(self) -> str:
        """The run id, or "(profile)" for a notebook over the whole profile (04 tables)."""
        return self.out_dir.parent.name if "DATASET" in self.params else "(profile)"

    @property
    def executed(self) -> Path:
        return self.out_dir / f"{self.notebook}.ipynb"


def plan(profile: str, grid: Grid, results_root: Path, notebooks: list[str] | None = None) -> list[list[Step]]:
    """The steps of each stage for ``grid`` under ``profile``."""
    stages = []
    for notebook, axes in STAGES:
        if notebooks and notebook not in notebooks:
            continue
        steps = []
        if not axes:  # a profile-level notebook (tables): results/<profile>/tables
            out = results_root / profile / "tables"
            steps.append(Step(notebook, {"PROFILE": profile, "RESULTS_ROOT": str(results_root), "OUTPUT_DIR": str(out)}, out))
            stages.append(steps)
            continue
        for entry in grid.datasets:
            if notebook == "06_bias" and entry["dataset"] not in grid.bias:
                continue
            for seed in grid.seeds:
                for det in grid.detectors if "detector" in axes else [None]:
                    if notebook in CF_STAGES and not grid.explains(entry["dataset"], det):
                        continue
                    params = {"PROFILE": profile, "DATASET": entry["dataset"], "NORMAL": entry["normal"], "SEED": seed}
                    if det is not None:
                        params["DETECTOR"] = det
                    out = run_dir(profile, entry["dataset"], entry["normal"], seed, det, results_root) / notebook
                    params["OUTPUT_DIR"] = str(out)
                    steps.append(Step(notebook, params, out))
        stages.append(steps)
    return stages


def is_done(step: Step) -> bool:
    mark = step.out_dir / DONE_MARK
    return (mark.is_file() and mark.read_text().strip() in (step.key, step.legacy_key)
            and (step.out_dir / "metrics.json").is_file())


def run_step(step: Step, repo: Path, force: bool = False) -> Step:
    """Execute one notebook with papermill unless its outputs exist (``force`` reruns)."""
    import papermill as pm

    if not force and is_done(step):
        step.status = "skipped"
        return step
    step.out_dir.mkdir(parents=True, exist_ok=True)
    (step.out_dir / DONE_MARK).unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(repo / "notebooks" / f"{step.notebook}.ipynb"), str(step.executed), parameters=step.params,
            kernel_name="python3", progress_bar=False, cwd=str(repo / "notebooks"),
        )
        write_text(step.key + "\n", step.out_dir / DONE_MARK)
        step.status = "done"
    except Exception as err:  # a failed cell does not stop the others
        ename = getattr(err, "ename", type(err).__name__)
        step.status = "unavailable" if ename == "DatasetUnavailable" else "failed"
        step.error = f"{ename}: {getattr(err, 'evalue', str(err))}".strip()
    step.seconds = time.perf_counter() - t0
    return step


def summarize(steps: list[Step], profile_root: Path) -> Path:
    """Write ``summary.csv``: one row per step with its parameters, status and metrics. Rows of
    earlier invocations (other grids, other ``--notebooks``) are kept unless a step of this one
    replaces them, so the file covers every run of the profile."""
    import pandas as pd

    rows = []
    for step in steps:
        row: dict[str, Any] = {"notebook": step.notebook, "status": step.status,
                               "run": step.label, "seconds": round(step.seconds, 2)}
        row.update({k.lower(): (json.dumps(v, sort_keys=True) if isinstance(v, dict) else v)
                    for k, v in step.params.items() if k not in ("OUTPUT_DIR", "RESULTS_ROOT")})
        metrics = step.out_dir / "metrics.json"
        if metrics.is_file() and step.status in ("done", "skipped"):
            row.update(read_json(metrics))
        row["executed_notebook"] = str(step.executed)
        row["error"] = step.error
        rows.append(row)
    path = profile_root / "summary.csv"
    table = pd.DataFrame(rows)
    if path.is_file() and path.stat().st_size > 0:
        old = pd.read_csv(path)
        if {"notebook", "run"} <= set(old.columns):
            replaced = set(zip(table["notebook"], table["run"]))
            keep = [(nb, run) not in replaced for nb, run in zip(old["notebook"], old["run"])]
            table = pd.concat([old[keep], table], ignore_index=True).sort_values(["notebook", "run"], kind="stable")
    write_text(table.to_csv(index=False), path)
    return path


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def kernel_environment(values: dict[str, str], keep_user: bool = False):
    """Set environment variables for the notebooks' kernels (they inherit this process's
    environment) and restore the previous values afterwards; ``keep_user`` leaves variables that
    are already set alone."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if not (keep_user and name in os.environ):
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def thread_limits(jobs: int, cpus: int | None = None):
    """With ``jobs`` > 1 notebooks at a time, give each kernel ``cpus // jobs`` threads (at least
    one), so that parallel cells do not each start a thread per core and fight over them.
    Variables the user has set are kept."""
    if jobs <= 1:
        yield None
        return
    threads = max(1, (cpus or os.cpu_count() or 1) // jobs)
    with kernel_environment({name: str(threads) for name in THREAD_VARIABLES}, keep_user=True):
        yield threads


def results_root_for_kernels(root: Path):
    """Point the kernels at ``root``, so that what they look up there (notebook 02's detector,
    notebook 03's explainer, cached oracles) comes from the results tree that the runner writes,
    not from the default one."""
    return kernel_environment({"CFX_RESULTS_ROOT": str(root)})


def reproduce(profile: str, grid_path: str | Path | Grid | None = None, jobs: int = 1, force: bool = False,
              results_root: str | Path | None = None, notebooks: list[str] | None = None) -> list[Step]:
    """Run the grid (a :class:`Grid` or the path of its JSON file; default
    ``configs/<profile>.json``); returns every step with its status. ``notebooks`` limits the
    run to those stages. See the module docstring."""
    from tqdm.auto import tqdm

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {list(PROFILES)}")
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    repo = find_repo_root()
    grid = grid_path if isinstance(grid_path, Grid) else Grid.load(grid_path or repo / "configs" / f"{profile}.json")
    root = Path(results_root) if results_root else default_results_root()
    stages = plan(profile, grid, root, notebooks)
    all_steps = [s for stage in stages for s in stage]
    t0 = time.perf_counter()
    bar = tqdm(total=len(all_steps), desc=f"reproduce ({profile})", unit="step")
    with thread_limits(jobs), results_root_for_kernels(root):
        for stage in stages:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for step in pool.map(lambda s: run_step(s, repo, force), stage):
                    bar.update(1)
                    bar.write(f"[{step.status:>11}] {step.notebook} {step.label} ({step.seconds:.1f} s)"
                              + (f": {step.error.splitlines()[0][:300]}" if step.error else ""))
    bar.close()
    summary = summarize(all_steps, root / profile)
    write_json({"profile": profile, "seconds": time.perf_counter() - t0,
                "steps": {s.status: sum(1 for t in all_steps if t.status == s.status) for s in all_steps}},
               root / profile / "reproduce.json")
    print(f"summary: {summary}")
    bad = [s for s in all_steps if s.status in ("failed", "unavailable")]
    for s in bad:
        print(f"  {s.status}: {s.notebook} {s.label} -> {s.executed}\n    {s.error.splitlines()[0][:300] if s.error else ''}")
    return all_steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cfx_lib.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", choices=list(PROFILES))
    parser.add_argument("--grid", default=None, help="grid JSON (default: configs/<profile>.json)")
    parser.add_argument("--jobs", type=int, default=1, help="grid cells run in parallel")
    parser.add_argument("--force", action="store_true", help="rerun steps whose outputs exist")
    parser.add_argument("--results-root", default=None, help="default: <repo>/results")
    parser.add_argument("--notebooks", nargs="*", default=None, help=f"only these, of {[n for n, _ in STAGES]}")
    args = parser.parse_args(argv)
    steps = reproduce(args.profile, args.grid, args.jobs, args.force, args.results_root, args.notebooks)
    return 1 if any(s.status == "failed" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
