import pytest
import torch

from cfx_lib.detectors import as_detector, gradient_heatmap


def corner_detector():
    """φ(x) = sigmoid(4·x[0, 0, 0] − 2): only the top-left pixel of channel 0 matters."""
    return as_detector(lambda x: torch.sigmoid(4 * x[:, 0, 0, 0] - 2), (3, 8, 8))


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_heatmap_marks_the_one_pixel_the_detector_reads(method):
    images = torch.rand(5, 3, 8, 8)
    maps = gradient_heatmap(corner_detector(), images, method=method, batch_size=2)
    assert maps.shape == (5, 8, 8) and (maps >= 0).all()
    assert torch.allclose(maps[:, 0, 0], torch.ones(5))
    rest = maps.clone()
    rest[:, 0, 0] = 0
    assert rest.abs().max() == 0


def test_heatmap_errors():
    with pytest.raises(ValueError, match="unknown heatmap method"):
        gradient_heatmap(corner_detector(), torch.rand(2, 3, 8, 8), method="gradcam")
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, 8, 8\)"):
        gradient_heatmap(corner_detector(), torch.rand(2, 1, 8, 8))
