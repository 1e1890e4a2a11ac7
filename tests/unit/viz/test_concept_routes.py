import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

from cfx_lib.metrics import factor_changes_per_value
from cfx_lib.viz import concept_routes


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table(normal: bool) -> pd.DataFrame:
    colour = torch.tensor([0, 0, 1, 1])
    changes = [{"digit": colour == 0, "color": colour == 1}, {"digit": colour == 1, "color": colour == 0}]
    values = {"l1": [torch.full((4,), 0.2)] * 2}  # not a share: never drawn
    if normal:
        values["oracle-normal"] = [torch.ones(4, dtype=torch.bool)] * 2
    return pd.DataFrame(factor_changes_per_value(changes, {"colour": colour}, {"colour": ["red", "green"]}, values))


def test_concept_routes_draws_a_panel_per_concept_with_a_bar_per_value_and_measure():
    fig = concept_routes(_table(normal=True))
    assert [ax.get_title() for ax in fig.axes] == ["concept 1, anomalies by colour", "concept 2, anomalies by colour"]
    # 2 colours × 3 measures (changes digit, changes color, oracle-normal); the red digit bar of concept 1 is full
    heights = [p.get_height() for p in fig.axes[0].patches if p.get_width() > 0]
    assert len(heights) == 6 and max(heights) == pytest.approx(1.0)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend, for the figure
    assert labels == ["changes digit", "changes color", "oracle-normal"]
    assert all(ax.get_legend() is None for ax in fig.axes)  # no panel's bars hidden under a legend
    assert len([p for p in concept_routes(_table(normal=False)).axes[0].patches if p.get_width() > 0]) == 4


def test_concept_routes_names_the_missing_columns():
    with pytest.raises(ValueError, match="grouped by"):
        concept_routes(_table(normal=True).drop(columns="grouped by"))
