import datetime
import io

import pytest
import torch
from PIL import Image

from cfx_lib.counterfactual import load_explainer
from cfx_lib.viz.explorer import ExplorerApp, compute_view, difference_image, explained_anomalies, find_explainers, to_png


def test_find_explainers_lists_runs_by_profile(tmp_path, toy_explainer):
    assert find_explainers(tmp_path) == {}
    toy_explainer(tmp_path, "smoke", "colored_mnist-default-bce-s0")
    toy_explainer(tmp_path, "quick", "colored_mnist-default-hsc-s0")
    assert list(find_explainers(tmp_path)) == ["quick/colored_mnist-default-hsc-s0", "smoke/colored_mnist-default-bce-s0"]
    assert list(find_explainers(tmp_path, "smoke")) == ["smoke/colored_mnist-default-bce-s0"]


def test_png_and_difference_images():
    png = to_png(torch.rand(3, 4, 5), scale=3)
    assert Image.open(io.BytesIO(png)).size == (15, 12)
    x = torch.zeros(3, 4, 4)
    y = x.clone()
    y[:, 1, 2] = 1.0
    diff = difference_image(x, y)
    assert diff.shape == (3, 4, 4) and diff[:, 0, 0].sum() < 0.1 < diff[:, 1, 2].sum()
    assert difference_image(x, x).max() < 0.1  # no change: the colour map's black


def upload(name, content):
    """A FileUpload value entry, as the browser sends it."""
    return {"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}


def test_view_and_app_follow_the_controls(tmp_path, toy_explainer):
    path = toy_explainer(tmp_path)
    explainer = load_explainer(path)
    images = explained_anomalies(explainer, limit=5)
    assert images.shape == (5, 3, 28, 28)
    view = compute_view(explainer, images[0], concept=1, alpha=0.0)
    assert view.at_zero.shape == (2, 3, 28, 28) and len(view.at_zero_scores) == 2
    assert view.cf_score == pytest.approx(view.at_zero_scores[1], abs=1e-5)
    with pytest.raises(ValueError, match="concept must be in 0..1"):
        compute_view(explainer, images[0], concept=2, alpha=0.0)

    app = ExplorerApp(find_explainers(tmp_path), lambda ex: explained_anomalies(ex, limit=5))
    assert app.index.max == 4 and [v for _, v in app.concept.options] == [0, 1]
    before_score, before_image = app.score.value, app.cf_img.value
    app.alpha.value = 1.0
    assert app.score.value != before_score and app.cf_img.value != before_image
    assert "α = 1.00" in app.score.value and len(app.zero_box.children) == 2

    small = io.BytesIO()
    Image.new("RGB", (20, 20)).save(small, format="PNG")
    app.upload.value = (upload("small.png", small.getvalue()),)
    assert "upload refused" in app.status.value and "28×28" in app.status.value
    right = io.BytesIO()
    Image.new("RGB", (28, 28), (255, 0, 0)).save(right, format="PNG")
    app.upload.value = (upload("red.png", right.getvalue()),)
    assert "uploaded image" in app.status.value and torch.allclose(app.current_image[0], torch.ones(28, 28))


def test_app_needs_a_run():
    with pytest.raises(ValueError, match="run notebook 03_counterfactual first"):
        ExplorerApp({}, lambda ex: None)
