import matplotlib

matplotlib.use("Agg")

from cfx_lib.viz import cf_loss_curves
from cfx_lib.viz.counterfactuals import LOSS_PANELS


def _history(distinct: float) -> list[dict]:
    return [{"iteration": i, **{key: 0.1 * i for key in LOSS_PANELS}, "distinct": distinct} for i in (1, 2)]


def test_loss_curves_show_the_distinct_term_only_when_it_is_on():
    titles = lambda fig: [ax.get_title() for ax in fig.axes]  # noqa: E731
    off = cf_loss_curves(_history(0.0))
    assert titles(off) == list(LOSS_PANELS.values())
    on = cf_loss_curves(_history(0.3))
    assert titles(on) == [*LOSS_PANELS.values(), "edit overlap of two concepts"]
    # a history resumed from before the column existed has no distinct key
    old = [{k: v for k, v in row.items() if k != "distinct"} for row in _history(0.0)]
    assert len(cf_loss_curves(old).axes) == len(LOSS_PANELS)


def test_loss_curves_draw_a_gap_for_a_term_an_older_run_did_not_log():
    old = [{k: v for k, v in row.items() if k != "proximity"} for row in _history(0.0)]
    fig = cf_loss_curves(old)
    panel = [ax for ax in fig.axes if ax.get_title() == LOSS_PANELS["proximity"]][0]
    assert all(y != y for y in panel.lines[0].get_ydata())  # NaN: nothing drawn, nothing made up


def test_loss_curves_show_the_edit_rank_where_the_history_logged_it():
    rows = [{**row, "edit_rank": 0.2} for row in _history(0.0)]
    titles = [ax.get_title() for ax in cf_loss_curves(rows).axes]
    assert titles == [*LOSS_PANELS.values(), "edit off rank 1 (two factors)"]
    assert len(cf_loss_curves(_history(0.0)).axes) == len(LOSS_PANELS)  # older runs: no such panel


def test_loss_curves_show_the_erasure_guard_where_the_history_logged_it():
    rows = [{**row, "edit_rank": 0.2, "faint": 0.01} for row in _history(0.0)]
    titles = [ax.get_title() for ax in cf_loss_curves(rows).axes]
    assert titles == [*LOSS_PANELS.values(), "edit off rank 1 (two factors)", "contrast shortfall (erasure)"]
    assert "contrast shortfall (erasure)" not in [ax.get_title() for ax in cf_loss_curves(_history(0.0)).axes]
