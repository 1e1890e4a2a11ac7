import pytest
import torch

from cfx_lib.config import DetectorConfig
from cfx_lib.detectors import Detector, TrainingDiverged, as_detector, train_detector
from cfx_lib.detectors import objectives
from cfx_lib.io import save_torch

KINDS = ["bce", "hsc", "dsvdd", "supervised_bce"]
SHAPES = [(1, 28, 28), (3, 28, 28), (3, 32, 32)]


def toy(shape, n=64):
    """Separable toy data: dark normal images, bright outliers."""
    g = torch.Generator().manual_seed(0)
    normal = 0.2 * torch.rand(n, *shape, generator=g)
    outliers = 0.6 + 0.4 * torch.rand(n, *shape, generator=g)
    return normal, outliers


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_scores_lie_in_unit_interval_and_gradients_reach_the_input(kind, shape):
    det = Detector(kind, shape).eval()
    x = torch.rand(5, *shape, requires_grad=True)
    s = det(x)
    assert s.shape == (5,)
    assert ((s >= 0) & (s <= 1)).all()
    s.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_each_objective_learns_a_separable_problem(kind):
    normal, outliers = toy((1, 28, 28))
    cfg = DetectorConfig(kind=kind, epochs=6, milestones=(), batch_size=16, lr=1e-3)
    result = train_detector(cfg, normal, None if kind == "dsvdd" else outliers, progress=False)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    s_norm = result.detector.score_images(normal)
    s_out = result.detector.score_images(outliers)
    assert s_out.mean() > s_norm.mean()


def test_dsvdd_is_bias_free_and_calibrated():
    normal, _ = toy((1, 28, 28))
    det = train_detector(DetectorConfig(kind="dsvdd", epochs=2, milestones=(), batch_size=16), normal, progress=False).detector
    assert not any("bias" in name for name, _ in det.net.named_parameters())
    assert (det.center.abs() >= 0.1 - 1e-6).all()
    scores = det.score_images(normal)
    assert abs((scores < 0.5).float().mean().item() - 0.95) < 0.05  # 0.5 = 95th percentile of normal training data


def test_hsc_loss_matches_its_formula():
    f = torch.tensor([[3.0, 4.0]])
    d = torch.sqrt(torch.tensor(26.0)) - 1
    assert torch.allclose(objectives.loss("hsc", f, torch.tensor([0])), d)
    assert torch.allclose(objectives.loss("hsc", f, torch.tensor([1])), -torch.log(1 - torch.exp(-d)))
    assert torch.allclose(objectives.score("hsc", f), 1 - torch.exp(-d))


def test_save_load_round_trip_gives_identical_scores(tmp_path):
    normal, outliers = toy((3, 32, 32), n=32)
    det = train_detector(DetectorConfig(kind="hsc", epochs=1, milestones=(), batch_size=16), normal, outliers, progress=False).detector
    det.save(tmp_path / "d.pt")
    loaded = Detector.load(tmp_path / "d.pt", expect_kind="hsc", expect_shape=(3, 32, 32))
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(det.eval()(x), loaded(x))
    assert torch.equal(loaded.mean, det.mean)


def test_foreign_checkpoints_are_refused(tmp_path):
    Detector("bce", (1, 28, 28)).save(tmp_path / "bce28.pt")
    with pytest.raises(ValueError, match="holds a 'bce' detector, expected 'hsc'"):
        Detector.load(tmp_path / "bce28.pt", expect_kind="hsc")
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\), expected \(3, 32, 32\)"):
        Detector.load(tmp_path / "bce28.pt", expect_shape=(3, 32, 32))
    save_torch({"state_dict": torch.nn.Linear(2, 2).state_dict()}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cfx detector checkpoint"):
        Detector.load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        Detector.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("bad, match", [
    (torch.rand(2, 3, 28, 28), r"expected images of shape \(B, 1, 28, 28\)"),
    (torch.rand(2, 1, 32, 32), r"size 28×28"),
    (torch.rand(1, 28, 28), r"got \(1, 28, 28\)"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "float images"),
])
def test_wrong_input_is_refused_with_what_was_expected(bad, match):
    with pytest.raises(ValueError, match=match):
        Detector("bce", (1, 28, 28))(bad)


def test_any_callable_can_be_wrapped():
    det = as_detector(lambda x: x.mean(dim=(1, 2, 3)), (1, 28, 28))
    x = torch.rand(3, 1, 28, 28, requires_grad=True)
    det(x).sum().backward()
    assert x.grad.abs().sum() > 0
    module = as_detector(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Sigmoid()), (1, 28, 28))
    assert module(x).shape == (3,)
    with pytest.raises(ValueError, match=r"scores must lie in \[0, 1\]"):
        as_detector(lambda x: x.sum(dim=(1, 2, 3)) + 5, (1, 28, 28))(x)
    with pytest.raises(TypeError):
        as_detector(42, (1, 28, 28))


def test_resume_continues_where_it_stopped_and_matches_an_uninterrupted_run(tmp_path):
    normal, outliers = toy((1, 28, 28))
    straight = train_detector(DetectorConfig(kind="bce", epochs=4, milestones=(2,), batch_size=16), normal, outliers,
                              out_dir=tmp_path / "a", progress=False)
    # a run stopped after 2 epochs, then asked for all 4
    train_detector(DetectorConfig(kind="bce", epochs=2, milestones=(2,), batch_size=16), normal, outliers,
                   out_dir=tmp_path / "b", progress=False)
    resumed = train_detector(DetectorConfig(kind="bce", epochs=4, milestones=(2,), batch_size=16), normal, outliers,
                             out_dir=tmp_path / "b", progress=False)
    assert resumed.resumed_epoch == 2 and len(resumed.history) == 4
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history] == [1e-3, 1e-4, 1e-4, 1e-4]
    x = torch.rand(8, 1, 28, 28)
    assert torch.allclose(straight.detector(x), resumed.detector(x), atol=1e-6)
    assert (tmp_path / "b" / "detector.pt").is_file()


def test_shift_augment_trains_on_moved_images_and_off_changes_nothing(tmp_path):
    normal, outliers = toy((1, 28, 28))
    cfg = DetectorConfig(kind="bce", epochs=2, milestones=(), batch_size=16)
    plain = train_detector(cfg, normal, outliers, progress=False).detector
    again = train_detector(DetectorConfig(kind="bce", epochs=2, milestones=(), batch_size=16, shift_augment=0), normal,
                           outliers, progress=False).detector
    moved = train_detector(DetectorConfig(kind="bce", epochs=2, milestones=(), batch_size=16, shift_augment=3), normal,
                           outliers, progress=False).detector
    x = torch.rand(8, 1, 28, 28)
    assert torch.equal(plain(x), again(x))  # 0 is the default: bit-identical to training without the option
    assert not torch.allclose(plain(x), moved(x))
    with pytest.raises(ValueError, match="shift_augment"):
        DetectorConfig(shift_augment=-1)


def _as_written_before(path, section: str, key: str) -> None:
    """The checkpoint at ``path`` rewritten as an earlier version wrote it: without ``state[section][key]``."""
    state = torch.load(path, weights_only=True)
    del state[section][key]
    save_torch(state, path)


def test_resume_accepts_a_checkpoint_written_before_shift_augment_existed(tmp_path):
    normal, outliers = toy((1, 28, 28))
    train_detector(DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16), normal, outliers,
                   out_dir=tmp_path, progress=False)
    _as_written_before(tmp_path / "detector_last.pt", "train_config", "shift_augment")
    resumed = train_detector(DetectorConfig(kind="bce", epochs=2, milestones=(), batch_size=16), normal, outliers,
                             out_dir=tmp_path, progress=False)
    assert resumed.resumed_epoch == 1
    with pytest.raises(ValueError, match="another configuration"):  # but not for a run that asked for the option
        train_detector(DetectorConfig(kind="bce", epochs=3, milestones=(), batch_size=16, shift_augment=2), normal,
                       outliers, out_dir=tmp_path, progress=False)


def test_resume_refuses_other_oe_of_the_same_size_and_accepts_a_checkpoint_without_its_checksum(tmp_path):
    normal, outliers = toy((1, 28, 28), n=32)
    cfg = DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16)
    train_detector(cfg, normal, outliers, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration or dataset"):  # e.g. OE drawn with marks
        train_detector(DetectorConfig(kind="bce", epochs=2, milestones=(), batch_size=16), normal, outliers * 0.9,
                       out_dir=tmp_path, progress=False)
    _as_written_before(tmp_path / "detector_last.pt", "fingerprint", "outliers_sum")
    resumed = train_detector(DetectorConfig(kind="bce", epochs=2, milestones=(), batch_size=16), normal, outliers,
                             out_dir=tmp_path, progress=False)
    assert resumed.resumed_epoch == 1


def test_resume_refuses_another_configuration(tmp_path):
    normal, outliers = toy((1, 28, 28), n=32)
    train_detector(DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16), normal, outliers, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train_detector(DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16, lr=0.1), normal, outliers, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="on_mismatch must be one of"):
        train_detector(DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16), normal, outliers, on_mismatch="ignore")
    # "restart" (the notebooks' choice after a changed profile): the old checkpoint is kept aside, training starts anew
    before = (tmp_path / "detector_last.pt").read_bytes()
    with pytest.warns(UserWarning, match="detector_last.stale.pt"):
        result = train_detector(DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16, lr=0.1), normal, outliers,
                                out_dir=tmp_path, progress=False, on_mismatch="restart")
    assert result.resumed_epoch == 0 and (tmp_path / "detector_last.stale.pt").read_bytes() == before
    assert torch.load(tmp_path / "detector_last.pt", weights_only=True)["train_config"]["lr"] == 0.1


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    normal, outliers = toy((1, 28, 28), n=32)
    train_detector(DetectorConfig(kind="bce", epochs=1, milestones=(), batch_size=16), normal, outliers,
                   out_dir=tmp_path, progress=False)
    good = (tmp_path / "detector_last.pt").read_bytes()
    # the resumed run diverges (on the same data: other data would not resume this checkpoint)
    monkeypatch.setattr(Detector, "loss", lambda self, x, y: (self(x) * float("nan")).mean())
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train_detector(DetectorConfig(kind="bce", epochs=3, milestones=(), batch_size=16), normal, outliers,
                       out_dir=tmp_path, progress=False)
    assert (tmp_path / "detector_last.pt").read_bytes() == good
