"""Figures of counterfactual training and explanations."""

from __future__ import annotations

import math
from typing import Sequence

from .plots import _plt, to_numpy_image

#: the loss terms shown by :func:`cf_loss_curves`, with their panel titles
LOSS_PANELS = {
    "d_loss": "D hinge loss", "g_gan": "G hinge loss (−D(x_t, α))", "score_excess": "score loss (excess over its minimum)",
    "rec": "reconstruction + cycle L1", "proximity": "edit size ‖x − x_t‖₁", "con": "concept loss",
    "r_acc": "R accuracy (training pairs)",
}


def cf_loss_curves(history: Sequence[dict], panels: dict[str, str] | None = None):
    """One small panel per loss term of counterfactual training, against iterations."""
    plt = _plt()
    if panels is None:
        panels = dict(LOSS_PANELS)
        if any(h.get("distinct", 0) > 0 for h in history):  # the optional term, shown only when on
            panels["distinct"] = "edit overlap of two concepts"
        if any("edit_rank" in h for h in history):  # logged since session 30
            panels["edit_rank"] = "edit off rank 1 (two factors)"
        if any("faint" in h for h in history):  # logged since session 33
            panels["faint"] = "contrast shortfall (erasure)"
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.4), squeeze=False)
    its = [h["iteration"] for h in history]
    for ax, (key, title) in zip(axes[0], panels.items()):
        ax.plot(its, [h.get(key, math.nan) for h in history])  # NaN: a term older runs did not log
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def explanation_grid(explanation, n: int = 8, concept_names: Sequence[str] | None = None, show_diff: bool = False,
                     labels: Sequence[str] | None = None, heatmaps=None, heatmap_title: str = "φ heatmap"):
    """Rows: an anomaly, then its K counterfactuals (optionally each followed by |difference|),
    titled with φ's scores; counterfactuals that stay above the threshold are marked "still
    anomalous" in red. ``heatmaps`` (B, H, W), e.g. from
    :func:`cfx_lib.detectors.gradient_heatmap`, adds a column after the anomaly: the heatmap
    over the anomaly in grey, for comparison with what the counterfactuals change."""
    plt = _plt()
    n = min(n, len(explanation))
    k_total = explanation.n_concepts
    names = list(concept_names or [f"concept {k + 1}" for k in range(k_total)])
    extra = heatmaps is not None
    cols = 1 + int(extra) + k_total * (2 if show_diff else 1)
    fig, axes = plt.subplots(n, cols, figsize=(1.35 * cols, 1.45 * n + 0.3), squeeze=False)
    for i in range(n):
        x = explanation.images[i]
        ax = axes[i][0]
        ax.imshow(to_numpy_image(x), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{labels[i] + ' ' if labels else ''}φ={float(explanation.scores[i]):.2f}", fontsize=7)
        col = 1
        if extra:
            ax = axes[i][col]
            ax.imshow(to_numpy_image(x.mean(0, keepdim=True)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.imshow(heatmaps[i].numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(heatmap_title, fontsize=7)
            col += 1
        for k in range(k_total):
            cf = explanation.counterfactuals[i, k]
            ok = bool(explanation.is_normal[i, k])
            ax = axes[i][col]
            ax.imshow(to_numpy_image(cf), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{names[k]}\nφ={float(explanation.cf_scores[i, k]):.2f}" + ("" if ok else " still anom."),
                         fontsize=7, color="black" if ok else "red")
            col += 1
            if show_diff:
                ax = axes[i][col]
                diff = (cf - x).abs().sum(0)
                ax.imshow(diff.numpy(), cmap="magma", vmin=0, vmax=max(float(diff.max()), 1e-3), interpolation="nearest")
                ax.set_title("|difference|", fontsize=7)
                col += 1
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def traversal_grid(traversal, n: int = 4):
    """Rows: images; columns: the α steps of one concept, titled with φ's scores."""
    plt = _plt()
    n = min(n, traversal.images.shape[1])
    a_total = len(traversal.alphas)
    fig, axes = plt.subplots(n, a_total, figsize=(1.3 * a_total, 1.4 * n + 0.3), squeeze=False)
    for i in range(n):
        for j, alpha in enumerate(traversal.alphas):
            ax = axes[i][j]
            ax.imshow(to_numpy_image(traversal.images[j, i]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"α={alpha:.2f}\nφ={float(traversal.scores[j, i]):.2f}", fontsize=7)
            ax.axis("off")
    fig.suptitle(f"concept {traversal.concept + 1}", fontsize=9)
    fig.tight_layout()
    return fig


def concept_routes(table):
    """Bars of what each concept does to the anomalies of each value of a factor: one panel per
    grouping factor (rows) and concept (columns), x the factor's values, bars the share of
    counterfactuals whose oracle reading changes each factor and, when the table has it, the share
    read as normal. ``table`` is a DataFrame with columns ``grouped by``, ``value``, ``concept``, the
    ``changes <factor>`` shares and optionally ``oracle-normal``: the rows of
    :func:`cfx_lib.metrics.factor_changes_per_value`."""
    import seaborn as sns

    plt = _plt()
    needed = {"grouped by", "value", "concept"}
    if not needed <= set(table.columns):
        raise ValueError(f"concept_routes needs the columns {sorted(needed)}, got {list(table.columns)}")
    measures = [c for c in table.columns if c.startswith("changes ")] + [c for c in ["oracle-normal"] if c in table]
    long = table.melt(id_vars=["grouped by", "value", "concept"], value_vars=measures, var_name="share of", value_name="share")
    groups, concepts = list(dict.fromkeys(table["grouped by"])), sorted(set(table["concept"]))
    fig, axes = plt.subplots(len(groups), len(concepts), figsize=(3.4 * len(concepts), 2.6 * len(groups)),
                             squeeze=False, sharey=True)
    handles, labels = [], []
    for i, group in enumerate(groups):
        for j, concept in enumerate(concepts):
            ax = axes[i][j]
            part = long[(long["grouped by"] == group) & (long["concept"] == concept)]
            sns.barplot(data=part, x="value", y="share", hue="share of", hue_order=measures, ax=ax)
            ax.set_title(f"concept {concept}, anomalies by {group}", fontsize=9)
            ax.set(xlabel="", ylabel="share" if j == 0 else "", ylim=(0, 1.05))
            ax.tick_params(axis="x", rotation=45, labelsize=7)
            if ax.get_legend() is not None:
                if not handles:
                    handles, labels = ax.get_legend_handles_labels()
                ax.get_legend().remove()  # one legend for the figure, above the panels, covering no bar
    top = 1.0
    if handles:
        top = 1 - 0.35 / fig.get_figheight()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, top))
    return fig


def metric_curve(rows: Sequence[dict], x: str, keys: Sequence[str], title: str = ""):
    """Lines of several metrics against ``x`` (e.g. oracle-normal share against training minutes)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    for key in keys:
        ax.plot([r[x] for r in rows], [r[key] for r in rows], marker="o", label=key)
    ax.set_xlabel(x)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


