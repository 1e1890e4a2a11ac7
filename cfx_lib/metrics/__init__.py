"""Evaluation metrics."""

from .auroc import auroc
from .counterfactual import (
    concept_accuracy, counterfactual_metrics, normality_auroc, oracle_normal_mask, oracle_normal_share, route_table,
)
from .disentanglement import (
    changed_factors, concept_overlap, concept_purity, edit_sizes, factor_changes, factor_changes_by,
    factor_changes_per_value, minimality,
)
from .oracle import FactorOracle, OracleReport, default_oracle_path, load_or_train_oracle, oracle_accuracy, train_oracle
from .oracle_detector import ORACLE_DETECTOR, OracleDetector, normal_values_of
from .probe import (
    PatchProbe, describe_reading, paste_patch, patch_probe, recolor, recolor_probe, redraw, shift_probe,
)
from .reading import single_factor_routes, route_reading
from .realism import OracleFeatures, fid, fidn
from .retrain import RetrainResult, retrain_auroc
from .seeds import PairedGain, paired_gain, seed_summary
from .visibility import FAINT_QUANTILE, contrast, faint_mask, faint_threshold

__all__ = [
    "auroc", "concept_accuracy", "counterfactual_metrics", "normality_auroc", "oracle_normal_mask", "oracle_normal_share",
    "route_table",
    "changed_factors", "concept_overlap", "concept_purity", "edit_sizes", "factor_changes", "factor_changes_by",
    "factor_changes_per_value", "minimality",
    "FactorOracle", "OracleReport", "default_oracle_path", "load_or_train_oracle", "oracle_accuracy", "train_oracle",
    "ORACLE_DETECTOR", "OracleDetector", "normal_values_of",
    "PatchProbe", "describe_reading", "paste_patch", "patch_probe", "recolor", "recolor_probe", "redraw", "shift_probe",
    "single_factor_routes", "route_reading",
    "OracleFeatures", "fid", "fidn", "RetrainResult", "retrain_auroc", "PairedGain", "paired_gain", "seed_summary",
    "FAINT_QUANTILE", "contrast", "faint_mask", "faint_threshold",
]
