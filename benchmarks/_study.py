"""What the benchmark scripts that train, read or evaluate generators share (not a script itself).

- :func:`open_study`: one run of the study as notebooks 02 and 03 see it: the profile, the results
  tree, the run's training and test splits and the dataset's setup;
- :meth:`Study.detector` and :meth:`Study.oracle`: the run's detector (notebook 02's, or trained now
  as notebook 03 would) and its cached oracle;
- :class:`Judge`: the row of figures every such script reports for a generator, computed once the
  same way (``bench_cf_curve.py``, ``bench_bn_modes.py``), so their readings can be compared.

The scripts run as ``python benchmarks/<script>.py``, which puts this folder on the import path.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cfx_lib.config import Profile, get_profile
from cfx_lib.counterfactual import Explainer, Explanation
from cfx_lib.data import load_dataset
from cfx_lib.data.registry import make_setup
from cfx_lib.metrics import (
    changed_factors, concept_purity, counterfactual_metrics, default_oracle_path, faint_threshold, load_or_train_oracle,
)
from cfx_lib.notebook import NotebookRun, obtain_detector, run_id
from cfx_lib.paths import default_data_root, default_results_root, find_repo_root

#: the overall figures of a judged generator, and those also given per concept (``<key>_k<k>``)
JUDGED = ("oracle_normal", "oracle_normal_visible", "faint_share", "median_cf_score", "normality_auroc", "concept_acc")
PER_CONCEPT = ("oracle_normal", "oracle_normal_visible", "faint_share")


@dataclass
class Study:
    """One run of the study: ``profile``, results tree ``root``, ``dataset`` and ``seed`` with their
    ``train`` and ``test`` splits and the dataset's ``setup`` (normal set, factors); ``normal`` is the
    normal set as the notebooks' parameters give it (None: the dataset's default)."""

    profile: Profile
    root: Path
    dataset: str
    seed: int
    train: Any
    test: Any
    setup: Any
    normal: dict[str, Any] | None = None

    def run(self, detector: str) -> str:
        """The run's name for ``detector`` (as in the results tree and the benchmarks' file names)."""
        return run_id(self.dataset, self.normal, self.seed, detector)

    def detector(self, kind: str, checkpoint: str | Path | None = None, out_dir: str | Path | None = None,
                 options: dict[str, Any] | None = None):
        """``(detector, where it came from)``: ``checkpoint``, else notebook 02's ``detector.pt`` of the
        run, else one trained now as notebook 03 would, into ``out_dir`` (a temporary folder by default).
        ``options``: fields of :class:`~cfx_lib.config.DetectorConfig`, and under ``"oe"`` overrides of
        how its OE is drawn (e.g. ``{"oe": {"marks": 0.5}}``); see :func:`cfx_lib.notebook.obtain_detector`."""
        options = dict(options or {})
        oe = options.pop("oe", None)
        out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="cfx-bench-"))
        context = NotebookRun(repo=find_repo_root(), profile=self.profile, out_dir=out, params={},
                              data_root=default_data_root())
        return obtain_detector(context, self.dataset, self.normal, kind, self.seed, self.train, checkpoint=checkpoint,
                               options=options or None, oe=oe)

    def oracle(self):
        """The run's oracle of the ground-truth factors, cached in the results tree as notebook 03 caches it."""
        return load_or_train_oracle(default_oracle_path(self.profile.name, self.dataset, self.seed, self.root),
                                    self.train, self.test, epochs=self.profile.oracle_epochs, seed=self.seed).oracle


def open_study(profile: str, dataset: str, seed: int, results_root: str | None = None,
               normal: dict[str, Any] | None = None) -> Study:
    """The run of ``profile``, ``dataset``, ``seed`` and normal set ``normal`` (the notebooks' parameter,
    e.g. an explainer's ``meta["normal"]``; None or empty: the dataset's default); ``results_root``
    (default ``$CFX_RESULTS_ROOT`` or ``<repo>/results``) becomes ``$CFX_RESULTS_ROOT`` so that the run's
    detectors are found there."""
    if results_root:
        os.environ["CFX_RESULTS_ROOT"] = results_root
    chosen = get_profile(profile)
    spec = dict(normal or {})
    train = load_dataset(dataset, "train", seed=seed, **chosen.dataset_kwargs(dataset, "train"), **spec)
    test = load_dataset(dataset, "test", seed=seed, **chosen.dataset_kwargs(dataset, "test"), **spec)
    return Study(chosen, default_results_root(), dataset, seed, train, test, make_setup(dataset, **spec), normal or None)


@dataclass
class Judge:
    """Judges generators of one run as the benchmark scripts report them: the test anomalies explained
    at α = 0, read by ``detector`` (the normality AuROC against the normal test images' scores) and by
    the ``oracle`` (oracle-normal, faint counterfactuals, purity)."""

    study: Study
    detector: Any
    oracle: Any
    anomalies: torch.Tensor = field(init=False)
    normal_scores: torch.Tensor = field(init=False)
    faint_below: float = field(init=False)

    def __post_init__(self) -> None:
        self.anomalies = self.study.test.anomalous.images
        self.normal_scores = self.detector.score_images(self.study.test.normal.images)
        # less contrast than 99% of real test images: see cfx_lib.metrics.visibility
        self.faint_below = faint_threshold(self.study.test.images)

    def __call__(self, generator, cfg, concept_classifier=None) -> tuple[dict[str, Any], Explanation, list]:
        """``(row, explanation, changes)`` for ``generator`` trained under ``cfg``: the row holds
        :data:`JUDGED`, :data:`PER_CONCEPT` per concept, the mean ``purity``, the ``dominant_factors``
        of the concepts and ``anomalies_phi_normal`` (the share of raw anomalies φ already finds
        normal); ``changes`` are the factors each counterfactual changed (``changed_factors``)."""
        explainer = Explainer(self.detector, generator, cfg, concept_classifier=concept_classifier)
        explanation = explainer.explain(self.anomalies)
        m = counterfactual_metrics(explanation, self.normal_scores, self.oracle, self.study.setup,
                                   explainer.concept_classifier, self.faint_below)
        changes = changed_factors(self.oracle, self.anomalies, explanation.counterfactuals)
        purity, dominant = concept_purity(changes)
        row = {**{k: m[k] for k in JUDGED},
               **{f"{key}_k{k + 1}": m[f"{key}_k{k + 1}"] for key in PER_CONCEPT for k in range(cfg.n_concepts)},
               "purity": sum(purity) / len(purity), "dominant_factors": dominant,
               "anomalies_phi_normal": m["anomaly_normal_share"]}
        return row, explanation, changes
