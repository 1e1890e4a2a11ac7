"""The concept-traversal explorer of notebook 07: ipywidgets to pick a trained run, an anomaly
(or an uploaded image), a concept and a target score α, showing the counterfactual, its score,
the difference image and all K counterfactuals at α = 0.

The logic (finding runs, computing a view, rendering PNGs) is plain Python and tested without a
browser; :class:`ExplorerApp` only wires it to widgets.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

#: how much the small images are enlarged on screen (nearest neighbour)
SCALE = 6


def find_explainers(results_root: str | Path, profile: str | None = None) -> dict[str, Path]:
    """The ``explainer.pt`` files of notebook 03 under ``results_root``: label
    ``<profile>/<run-id>`` → path, sorted. ``profile`` keeps only that profile's runs."""
    root = Path(results_root)
    pattern = f"{profile or '*'}/runs/*/03_counterfactual/explainer.pt"
    return {f"{p.parents[3].name}/{p.parents[1].name}": p for p in sorted(root.glob(pattern))}


def to_png(image: torch.Tensor, scale: int = SCALE) -> bytes:
    """PNG bytes of one image (C, H, W) in [0, 1] (grey or RGB), enlarged ``scale`` times."""
    from PIL import Image

    array = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def difference_image(image: torch.Tensor, counterfactual: torch.Tensor) -> torch.Tensor:
    """|counterfactual − image| summed over channels, in the magma colour map, as (3, H, W) in
    [0, 1]; scaled to the largest change (a zero difference stays black)."""
    from matplotlib import colormaps

    diff = (counterfactual - image).abs().sum(0)
    diff = diff / diff.max().clamp_min(1e-6)
    rgb = colormaps["magma"](diff.numpy())[..., :3]
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()


def explained_anomalies(explainer, data_root: str | Path | None = None, limit: int = 200) -> torch.Tensor:
    """The first ``limit`` test anomalies of the dataset an explainer was trained on (read from
    the ``meta`` that notebook 03 saves: dataset, normal set, seed and profile)."""
    from ..config import get_profile
    from ..data import load_dataset
    from ..paths import default_data_root

    meta = explainer.meta
    missing = [k for k in ("dataset", "profile") if k not in meta]
    if missing:
        raise ValueError(f"the explainer does not record its {missing}; notebook 03 saves them in explainer.pt")
    profile = get_profile(meta["profile"])
    test = load_dataset(meta["dataset"], "test", data_root or default_data_root(), seed=meta.get("seed", 0),
                        **profile.dataset_kwargs(meta["dataset"], "test"), **meta.get("normal", {}))
    return test.anomalous.images[:limit]


@dataclass
class View:
    """What the explorer shows for one image, concept and α."""

    image: torch.Tensor  # (C, H, W)
    score: float
    counterfactual: torch.Tensor  # G(x, α, k)
    cf_score: float
    difference: torch.Tensor  # (3, H, W) colour map
    at_zero: torch.Tensor  # (K, C, H, W): every concept at α = 0
    at_zero_scores: list[float]
    threshold: float

    def caption(self, concept: int, alpha: float) -> str:
        """A line for the score label, flagging a counterfactual that stays anomalous."""
        flag = "" if self.cf_score <= self.threshold else " (still anomalous)"
        return f"φ(anomaly) = {self.score:.3f} → concept {concept + 1}, α = {alpha:.2f}: φ(counterfactual) = {self.cf_score:.3f}{flag}"


def compute_view(explainer, image: torch.Tensor, concept: int, alpha: float) -> View:
    """The counterfactual of ``image`` (C, H, W) for ``concept`` (0-based) at target ``alpha``,
    its score and difference, and all K counterfactuals at α = 0."""
    from ..counterfactual.explain import generate

    if not 0 <= concept < explainer.n_concepts:
        raise ValueError(f"concept must be in 0..{explainer.n_concepts - 1}, got {concept}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    x = image[None]
    cf = generate(explainer.generator, x, alpha, concept)[0]
    zero = explainer.explain(x)
    scores = explainer.score(torch.stack([image, cf]))
    return View(image, float(scores[0]), cf, float(scores[1]), difference_image(image, cf),
                zero.counterfactuals[0], [float(s) for s in zero.cf_scores[0]], explainer.threshold)


class ExplorerApp:
    """The widgets of notebook 07. ``runs`` maps a label to an ``explainer.pt``; ``load_images``
    returns the test anomalies (N, C, H, W) for an explainer (from its recorded dataset)."""

    def __init__(self, runs: dict[str, Path], load_images: Callable[[object], torch.Tensor], device: str = "cpu") -> None:
        import ipywidgets as w

        if not runs:
            raise ValueError("no trained explainer found: run notebook 03_counterfactual first (it writes explainer.pt)")
        self.runs, self.load_images, self.device = dict(runs), load_images, device
        self.explainer = None
        self._updating = False
        self.images = torch.empty(0)
        self.uploaded: torch.Tensor | None = None
        self.run = w.Dropdown(options=list(self.runs), description="run", layout=w.Layout(width="460px"))
        self.index = w.IntSlider(0, 0, 0, description="anomaly", continuous_update=False)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="upload image")
        self.concept = w.Dropdown(options=[("concept 1", 0)], description="concept")
        self.alpha = w.FloatSlider(0.0, min=0.0, max=1.0, step=0.05, description="α", continuous_update=False,
                                   readout_format=".2f")
        self.alpha.add_class("cfx-alpha")
        self.score = w.HTML()
        self.score.add_class("cfx-score")
        self.status = w.HTML()
        self.status.add_class("cfx-status")
        self.anomaly_img, self.cf_img, self.diff_img = (w.Image(format="png") for _ in range(3))
        self.cf_img.add_class("cfx-counterfactual")
        self.zero_box = w.HBox()
        self.zero_box.add_class("cfx-at-zero")
        figure = w.HBox([self._titled("anomaly", self.anomaly_img), self._titled("counterfactual", self.cf_img),
                         self._titled("|difference|", self.diff_img)])
        self.widget = w.VBox([
            w.HBox([self.run, self.index, self.upload]), w.HBox([self.concept, self.alpha]), self.score, figure,
            w.HTML("<b>all concepts at α = 0</b>"), self.zero_box, self.status,
        ])
        self.run.observe(lambda _: self.select_run(), names="value")
        self.index.observe(lambda _: self.select_anomaly(), names="value")
        self.upload.observe(lambda change: self.use_upload(change["new"]), names="value")
        for control in (self.concept, self.alpha):
            control.observe(lambda _: self.refresh(), names="value")
        self.select_run()

    @staticmethod
    def _titled(title: str, image):
        import ipywidgets as w

        return w.VBox([w.HTML(f"<b>{title}</b>"), image])

    def select_run(self) -> None:
        """Load the chosen explainer and its test anomalies."""
        from ..counterfactual import load_explainer

        self.explainer = load_explainer(self.runs[self.run.value], device=self.device)
        self.images = self.load_images(self.explainer)
        self.uploaded = None
        self._updating = True  # resetting the controls below would redraw once per control
        try:
            self.concept.options = [(f"concept {k + 1}", k) for k in range(self.explainer.n_concepts)]
            self.index.max = max(len(self.images) - 1, 0)
        finally:
            self._updating = False
        self.refresh()

    def select_anomaly(self) -> None:
        self.uploaded = None
        self.refresh()

    def use_upload(self, files) -> None:
        """Explain an uploaded image; one of the wrong size or channels gets a message, not a crash."""
        from PIL import Image

        from ..counterfactual.explain import as_batch

        if not files:
            return
        item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        try:
            pil = Image.open(io.BytesIO(bytes(item["content"])))
            self.uploaded = as_batch(pil, self.explainer.image_shape)[0]
        except (ValueError, OSError) as err:
            self.status.value = f"<span style='color:red'>upload refused: {err}</span>"
            return
        self.refresh()

    @property
    def current_image(self) -> torch.Tensor:
        return self.uploaded if self.uploaded is not None else self.images[self.index.value]

    def refresh(self) -> None:
        """Recompute and redraw the view for the current image, concept and α."""
        import ipywidgets as w

        if self._updating:
            return

        view = compute_view(self.explainer, self.current_image, int(self.concept.value), float(self.alpha.value))
        self.anomaly_img.value = to_png(view.image)
        self.cf_img.value = to_png(view.counterfactual)
        self.diff_img.value = to_png(view.difference)
        self.score.value = view.caption(int(self.concept.value), float(self.alpha.value))
        self.zero_box.children = [
            self._titled(f"concept {k + 1}: φ = {s:.3f}", w.Image(value=to_png(img), format="png"))
            for k, (img, s) in enumerate(zip(view.at_zero, view.at_zero_scores))
        ]
        source = "uploaded image" if self.uploaded is not None else f"test anomaly {self.index.value} of {len(self.images)}"
        self.status.value = f"{self.run.value}: {source}"
