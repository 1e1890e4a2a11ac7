import json

from cfx_lib.metrics.tables import (
    PAPER_NORMALITY, collect_runs, disentanglement_table, fidn_table, normality_table, retraining_table, to_markdown,
)


def write_run(root, run, detector, seed, metrics):
    out = root / "quick" / "runs" / run / "03_counterfactual"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps(metrics))
    (out / "params.json").write_text(json.dumps({"DATASET": "colored_mnist", "NORMAL": {}, "DETECTOR": detector,
                                                 "SEED": seed, "PROFILE": "quick"}))


def test_tables_keep_their_columns_and_aggregate_seeds(tmp_path):
    write_run(tmp_path, "a-s0", "bce", 0, {"normality_auroc": 0.6, "oracle_normal": 0.5, "median_cf_score": 0.1, "anomaly_normal_share": 0.4,
                                           "oracle_normal_visible": 0.45,
                                           "fidn": 50.0, "fid": 5.0, "fid_baseline": 1.0, "concept_acc": 0.9,
                                           "purity": 0.8, "l1": 0.05, "detector_auroc": 0.97, "retrain_auroc": 0.61})
    write_run(tmp_path, "a-s1", "bce", 1, {"normality_auroc": 0.8, "oracle_normal": 0.7, "median_cf_score": 0.2})
    runs = collect_runs(tmp_path, "quick")
    assert len(runs) == 2 and set(runs["seed"]) == {0, 1}
    t1 = normality_table(runs)
    assert list(t1.columns) == ["dataset", "detector", "normality AuROC (ours)", "oracle-normal % (ours)",
                                "oracle-normal, not faint %", "median φ of CFs ×100", "anomalies φ finds normal %", "normality AuROC (paper)",
                                "runs", "data"]
    assert t1.loc[0, "normality AuROC (ours)"] == "70.0 ± 14.1"
    assert t1.loc[0, "anomalies φ finds normal %"] == "40.0"  # the seed without the figure is left out
    assert t1.loc[0, "oracle-normal, not faint %"] == "45.0"
    assert t1.loc[0, "normality AuROC (paper)"] == PAPER_NORMALITY[("colored_mnist", "bce")]
    t2 = fidn_table(runs)
    assert t2.loc[0, "FIDN (ours)"] == "50.0" and "oracle" in t2.loc[0, "data"]
    t4 = disentanglement_table(runs)
    assert t4.loc[0, "purity %"] == "80.0"
    assert list(t4.columns)[2:6] == ["R accuracy %", "purity %", "edit overlap %", "L1 ×100"]
    assert t4.loc[0, "edit overlap %"] == "n/a"  # runs written before the overlap was measured
    t2a = retraining_table(runs)
    assert list(t2a.columns) == ["dataset", "detector", "AuROC original", "AuROC retrained with CFs",
                                 "AuROC retrained with anomalies (control)", "runs", "data"]
    assert t2a.loc[0, "AuROC retrained with CFs"] == "61.0"  # the seed without the figure is left out
    assert to_markdown(t1).count("\n") == 3


def test_empty_results_give_empty_tables_with_columns(tmp_path):
    runs = collect_runs(tmp_path, "quick")
    assert runs.empty
    assert "normality AuROC (paper)" in normality_table(runs).columns


def test_auroc_by_factor_finds_a_blind_spot():
    import pytest
    import torch

    from cfx_lib.data.base import ADDataset
    from cfx_lib.metrics.bias import auroc_by_factor

    color = torch.tensor([0, 0, 1, 1, 2, 2])
    is_anomaly = torch.tensor([False, False, True, True, True, True])
    data = ADDataset("toy", "test", torch.zeros(6, 1, 2, 2), color, is_anomaly, ["a", "b", "c"], {"color": color},
                     {"color": ["red", "blue", "green"]})
    scores = torch.tensor([0.1, 0.2, 0.9, 0.8, 0.05, 0.15])  # blue anomalies found, green ones missed
    table = auroc_by_factor(scores, data, "color").set_index("value")
    assert list(table.index) == ["blue", "green"]
    assert table.loc["blue", "auroc"] == 1.0 and table.loc["green", "auroc"] == 0.25
    with pytest.raises(ValueError, match="no factor 'digit'"):
        auroc_by_factor(scores, data, "digit")


def test_tables_name_the_oracle_recipe_and_flag_mixed_instruments(tmp_path):
    from cfx_lib.metrics.tables import oracle_note

    write_run(tmp_path, "a-s0", "bce", 0, {"oracle_normal": 0.5, "purity": 0.6, "oracle_recipe": 2})
    write_run(tmp_path, "a-s1", "bce", 1, {"oracle_normal": 0.7, "purity": 0.4, "oracle_recipe": 2})
    write_run(tmp_path, "b-s0", "hsc", 0, {"oracle_normal": 0.5, "purity": 0.6, "oracle_recipe": 1})
    write_run(tmp_path, "b-s1", "hsc", 1, {"oracle_normal": 0.7, "purity": 0.4, "oracle_recipe": 2})
    write_run(tmp_path, "c-s0", "dsvdd", 0, {"oracle_normal": 0.5, "oracle_recipe": 2})
    write_run(tmp_path, "c-s1", "dsvdd", 1, {"oracle_normal": 0.7})  # written before the recipe was recorded
    runs = collect_runs(tmp_path, "quick")
    for table in (normality_table(runs), fidn_table(runs), disentanglement_table(runs)):
        data = table.set_index("detector")["data"]
        assert data["bce"].endswith("; oracle recipe 2")
        assert "oracle recipes 1, 2 MIXED" in data["hsc"]
        assert data["dsvdd"].endswith("oracle recipe 2, 1 run(s) unrecorded")
    assert "oracle" not in retraining_table(runs).loc[0, "data"]  # no oracle figure in it
    assert oracle_note(runs.drop(columns="oracle_recipe")) == "oracle recipe not recorded"
