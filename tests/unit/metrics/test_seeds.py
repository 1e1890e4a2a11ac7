import math

import pandas as pd
import pytest

from cfx_lib.metrics import paired_gain, seed_summary

# session 16 (docs/experiments.md): the current setting and λ_proximity 3, oracle-normal by generator seed
BASELINE = {0: 0.373, 1: 0.731, 2: 0.695, 3: 0.560, 4: 0.578}
PROXIMITY = {0: 0.460, 1: 0.936, 2: 0.454, 3: 0.425, 4: 0.430}


def test_paired_gain_reproduces_a_recorded_decision():
    gain = paired_gain(BASELINE, PROXIMITY)
    assert gain.seeds == (0, 1, 2, 3, 4)
    assert gain.differences == pytest.approx((0.087, 0.205, -0.241, -0.135, -0.148))
    assert gain.mean == pytest.approx(-0.0464)
    assert gain.standard_error == pytest.approx(0.0828, abs=1e-4)
    assert not gain.adopt and "do not adopt" in gain.describe()


def test_paired_gain_pairs_by_seed_and_adopts_a_consistent_gain():
    # the same gain on every seed, whatever the order given: its standard error is 0
    gain = paired_gain({2: 0.5, 0: 0.1, 1: 0.3}, {0: 0.2, 1: 0.4, 2: 0.6, 7: 0.0})
    assert gain.seeds == (0, 1, 2) and gain.mean == pytest.approx(0.1) and gain.standard_error == pytest.approx(0)
    assert gain.adopt and "adopt" in gain.describe()
    # a large mean from one lucky seed is not enough
    assert not paired_gain({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.5, 1: 0.5, 2: 1.0}).adopt
    with pytest.raises(ValueError, match="at least two seeds"):
        paired_gain({0: 0.1, 1: 0.2}, {1: 0.3, 2: 0.4})


def test_seed_summary_means_and_stds_per_iteration_count():
    rows = pd.DataFrame({"iterations": [600, 600, 900, 600],
                         "oracle_normal": [0.2, 0.4, 0.9, 0.6], "purity": [0.5, 0.5, 0.4, 0.5]})
    summary = seed_summary(rows, metrics=("oracle_normal", "purity"))
    assert list(summary["iterations"]) == [600, 900] and list(summary["seeds"]) == [3, 1]
    first = summary.iloc[0]
    assert first["oracle_normal mean"] == pytest.approx(0.4) and first["oracle_normal std"] == pytest.approx(0.2)
    assert first["purity std"] == 0
    assert math.isnan(summary.iloc[1]["oracle_normal std"])  # one seed: no spread
    with pytest.raises(ValueError, match="concept_acc"):
        seed_summary(rows, metrics=("concept_acc",))
