import math

import pytest
import torch

from cfx_lib.counterfactual import (
    ConceptClassifier, CounterfactualConfig, Discriminator, Explainer, Generator, calibrate_score_eps, explain,
    load_explainer, load_training_checkpoint, train_counterfactual, traverse, warm_start,
)
from cfx_lib.counterfactual import losses as L
from cfx_lib.counterfactual.explain import as_batch
from cfx_lib.counterfactual.trainer import LAST, _in_precision, lr_factor, perturb
from cfx_lib.detectors import Detector, TrainingDiverged, as_detector

TINY = dict(g_widths=(8, 16), g_res_blocks=1, d_widths=(8, 16, 16), r_widths=(8, 16), cond_dim=16, batch_size=8,
            sample_every=2, checkpoint_every=2, n_samples=2)


@pytest.mark.parametrize("skip, mask", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("shape", [(3, 28, 28), (1, 28, 28), (3, 32, 32)])
def test_model_shapes_and_ranges(shape, skip, mask):
    x = torch.rand(4, *shape)
    g = Generator(shape, n_concepts=3, widths=(8, 16), res_blocks=1, cond_dim=16, skip=skip, mask=mask)
    out = g(x, torch.rand(4), torch.tensor([0, 1, 2, 0]))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert g(x, 0.0, 1).shape == x.shape  # scalars broadcast
    d = Discriminator(shape, (8, 16, 16))
    assert d(x, torch.rand(4)).shape == (4,)
    r = ConceptClassifier(shape, 3, (8, 16))
    assert r(x, out).shape == (4, 3)


def test_generator_rejects_bad_input():
    g = Generator((3, 28, 28), 2, (8, 16), 1, 16)
    with pytest.raises(ValueError, match=r"\(B, 3, 28, 28\)"):
        g(torch.rand(2, 1, 28, 28), torch.rand(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="concepts k must be in 0..1"):
        g(torch.rand(2, 3, 28, 28), torch.rand(2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="divisible"):
        Generator((3, 30, 30), 2, (8, 16, 32))


def test_condition_changes_output():
    torch.manual_seed(0)
    g = Generator((3, 28, 28), 2, (8, 16), 1, 16)
    for m in g.modules():  # break the identity initialisation of the conditional norms
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.5)
    g.eval()
    x = torch.rand(2, 3, 28, 28)
    assert not torch.allclose(g(x, 0.0, 0), g(x, 0.0, 1))
    assert not torch.allclose(g(x, 0.0, 0), g(x, 1.0, 0))


def test_losses_minimal_where_they_should_be():
    x = torch.rand(4, 3, 8, 8)
    assert L.l1(x, x) == 0  # L_rec of an identity G
    assert L.d_hinge(torch.full((4,), 2.0), torch.full((4,), -2.0)) == 0
    assert L.d_hinge(torch.zeros(4), torch.zeros(4)) == 2
    assert L.g_hinge(torch.full((4,), 3.0)) == -3
    targets = torch.tensor([0.1, 0.5, 0.9, 0.3])
    exact = torch.logit(targets)
    assert L.score_loss_excess(exact, targets).abs() < 1e-5
    assert L.score_loss_excess(exact + 1.0, targets) > 0.01
    # the gradient survives saturated scores (logits far beyond float32 sigmoid saturation)
    z = torch.tensor([40.0], requires_grad=True)
    L.score_loss(z, torch.zeros(1)).backward()
    assert z.grad.abs() > 0.5
    k = torch.tensor([0, 1, 1, 0])
    perfect = torch.where(torch.nn.functional.one_hot(k, 2).bool(), 20.0, -20.0)
    assert L.concept_loss(perfect, k) < 1e-6
    assert L.concept_loss(torch.full((4, 2), -20.0), None) < 1e-6
    assert L.concept_loss(perfect, None) > 1


def test_perturb_keeps_shape_and_is_identity_when_off():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 8, 8, requires_grad=True)
    assert perturb(x, 0.0, 0, gen) is x
    y = perturb(x, 0.1, 2, gen)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    y.sum().backward()
    assert x.grad is not None
    # the score loss's reading, one set of keywords for every reader of φ
    cfg = CounterfactualConfig(score_noise=0.05, score_shift=4, score_rotate=10, score_scale=0.1)
    assert cfg.score_reading == {"noise": 0.05, "shift": 4, "rotate": 10, "scale": 0.1}
    assert torch.equal(perturb(x, gen=torch.Generator().manual_seed(1), **cfg.score_reading),
                       perturb(x, 0.05, 4, torch.Generator().manual_seed(1), 10, 0.1))


def _toy_detector():
    """φ = mean brightness of the red channel: anomalous when red."""
    return as_detector(lambda x: x[:, 0].mean(dim=(1, 2)).clamp(0, 1), (3, 28, 28))


def test_one_step_lowers_score_loss_on_toy_detector():
    torch.manual_seed(0)
    det = _toy_detector()
    g = Generator((3, 28, 28), 2, (8, 16), 1, 16)
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    x = torch.rand(8, 3, 28, 28)
    alpha, k = torch.zeros(8), torch.zeros(8, dtype=torch.long)

    def loss():
        return L.score_loss(det.score_logits(g(x, alpha, k)), alpha)

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    assert loss() < before


@pytest.fixture
def toy_data():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(24, 3, 28, 28, generator=gen)


def test_training_writes_outputs_and_resumes_identically(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=4, device="cpu")
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    full = train_counterfactual(cfg, det, toy_data, out_dir=tmp_path / "full", progress=False)
    assert (tmp_path / "full" / LAST).is_file() and (tmp_path / "full" / "losses.csv").is_file()
    assert len(full.sample_paths) == 2 and all(p.is_file() for p in full.sample_paths)
    assert plt.get_fignums() == open_before  # the sample grids' figures are closed once saved
    assert full.iters_per_second > 0
    header = (tmp_path / "full" / "losses.csv").read_text().splitlines()[0]
    assert header.startswith("iteration,d_loss,g_gan,score")
    # interrupted after 2 iterations, then resumed to 4: the same weights as the uninterrupted run
    train_counterfactual(cfg.replace(iterations=2), det, toy_data, out_dir=tmp_path / "part", progress=False)
    resumed = train_counterfactual(cfg, det, toy_data, out_dir=tmp_path / "part", progress=False)
    assert resumed.resumed_iteration == 2
    for a, b in zip(full.generator.state_dict().values(), resumed.generator.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    with pytest.raises(ValueError, match="another configuration"):
        train_counterfactual(cfg.replace(weights={"rec": 1.0}), det, toy_data, out_dir=tmp_path / "part", progress=False)
    # "restart": the stale checkpoint moves aside and a run of the new configuration starts from iteration 0
    with pytest.warns(UserWarning, match="cf_last.stale.pt"):
        fresh = train_counterfactual(cfg.replace(weights={"rec": 1.0}), det, toy_data, out_dir=tmp_path / "part",
                                     progress=False, on_mismatch="restart")
    assert fresh.resumed_iteration == 0 and (tmp_path / "part" / "cf_last.stale.pt").is_file()
    assert torch.load(tmp_path / "part" / LAST, weights_only=True)["config"]["weights"]["rec"] == 1.0
    # a checkpoint of a version with an unknown option is stale as well, not a crash
    state = torch.load(tmp_path / "part" / LAST, weights_only=True)
    state["config"]["g_attention"] = True
    torch.save(state, tmp_path / "part" / LAST)
    with pytest.raises(ValueError, match="another configuration"):
        train_counterfactual(cfg.replace(weights={"rec": 1.0}), det, toy_data, out_dir=tmp_path / "part", progress=False)


def _blue_detector():
    """φ = mean brightness of the blue channel: another detector of the same images."""
    return as_detector(lambda x: x[:, 2].mean(dim=(1, 2)).clamp(0, 1), (3, 28, 28))


def test_warm_start_continues_another_detectors_run_and_records_where_it_came_from(tmp_path, toy_data):
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", score_eps=0.01)
    first = train_counterfactual(cfg, _toy_detector(), toy_data, out_dir=tmp_path / "red", progress=False)
    # the same run resumed under another detector and its own clip: it starts from the red run's weights
    blue = _blue_detector()
    other = cfg.replace(score_eps=0.02)
    assert warm_start(tmp_path / "red" / LAST, tmp_path / "blue", other, blue, toy_data) == 2
    untrained = train_counterfactual(other, blue, toy_data, out_dir=tmp_path / "blue", progress=False)
    assert untrained.resumed_iteration == 2  # nothing more asked for: the copied weights themselves
    assert all(torch.equal(a, b) for a, b in zip(_weights(untrained.generator), _weights(first.generator)))
    more = train_counterfactual(other.replace(iterations=4), blue, toy_data, out_dir=tmp_path / "blue", progress=False)
    assert more.resumed_iteration == 2 and len(more.history) > len(first.history)
    state = torch.load(tmp_path / "blue" / LAST, weights_only=True)
    assert state["iteration"] == 4 and state["config"]["score_eps"] == 0.02
    assert state["warm_start"]["source"] == str(tmp_path / "red" / LAST) and state["warm_start"]["iteration"] == 2
    assert state["warm_start"]["score_eps"] == 0.01  # kept by the checkpoints written after the copy
    # the continued run trained under the blue detector, not the red one: a red-run resume differs
    red_more = train_counterfactual(cfg.replace(iterations=4), _toy_detector(), toy_data, out_dir=tmp_path / "red",
                                    progress=False)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_weights(red_more.generator), _weights(more.generator)))
    # the copy is bound to the data it was warm-started with (and to the detector's weights, which these
    # toy detectors do not have)
    with pytest.raises(ValueError, match="another configuration, dataset or detector"):
        train_counterfactual(other.replace(iterations=6), blue, toy_data * 0.5, out_dir=tmp_path / "blue",
                             progress=False)
    # refusals: an occupied folder, another architecture or loss setting, an unresolved clip, other images
    with pytest.raises(FileExistsError, match="empty folder"):
        warm_start(tmp_path / "red" / LAST, tmp_path / "blue", other, blue, toy_data)
    with pytest.raises(ValueError, match="weights differ"):
        warm_start(tmp_path / "red" / LAST, tmp_path / "w", other.replace(weights={"rec": 1.0}), blue, toy_data)
    with pytest.raises(ValueError, match="calibrate_score_eps"):
        warm_start(tmp_path / "red" / LAST, tmp_path / "w", other.replace(score_eps="auto"), blue, toy_data)
    gray = as_detector(lambda x: x.mean(dim=(1, 2, 3)), (1, 28, 28))
    with pytest.raises(ValueError, match=r"images \(3, 28, 28\)"):
        warm_start(tmp_path / "red" / LAST, tmp_path / "w", other, gray, toy_data[:, :1])
    with pytest.raises(FileNotFoundError, match="no counterfactual training checkpoint"):
        warm_start(tmp_path / "nowhere.pt", tmp_path / "w", other, blue, toy_data)
    torch.save({"state_dict": {}}, tmp_path / "detector.pt")  # e.g. a detector's checkpoint given by mistake
    with pytest.raises(ValueError, match="not a counterfactual training checkpoint"):
        warm_start(tmp_path / "detector.pt", tmp_path / "w", other, blue, toy_data)
    assert not (tmp_path / "w").exists()


def test_load_training_checkpoint_gives_the_trained_models_and_refuses_other_files(tmp_path, toy_data):
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", score_eps=0.01)
    result = train_counterfactual(cfg, _toy_detector(), toy_data, out_dir=tmp_path, progress=False)
    models, loaded_cfg, state = load_training_checkpoint(tmp_path / LAST)
    assert loaded_cfg == cfg and state["iteration"] == 2 and models.generator_ema is None
    for mine, theirs in ((models.generator, result.models.generator), (models.concept_classifier,
                                                                         result.models.concept_classifier)):
        assert not mine.training and all(torch.equal(a, b) for a, b in zip(_weights(mine), _weights(theirs)))
    with pytest.raises(FileNotFoundError, match="train_counterfactual writes cf_last.pt"):
        load_training_checkpoint(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a counterfactual training checkpoint"):
        load_training_checkpoint(tmp_path / "other.pt")


@pytest.mark.filterwarnings("ignore:g_ema=.*partly untrained")
def test_load_training_checkpoint_gives_the_moving_average_of_g(tmp_path, toy_data):
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", score_eps=0.01, g_ema=0.5)
    result = train_counterfactual(cfg, _toy_detector(), toy_data, out_dir=tmp_path, progress=False)
    models, _, _ = load_training_checkpoint(tmp_path / LAST)
    assert models.explaining_generator is models.generator_ema
    assert all(torch.equal(a, b) for a, b in zip(_weights(models.generator_ema), _weights(result.generator)))


def test_training_is_deterministic(toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu")
    a = train_counterfactual(cfg, det, toy_data, progress=False).generator.state_dict()
    b = train_counterfactual(cfg, det, toy_data, progress=False).generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_channels_last_layout_trains_alike_and_resumes_under_either_layout(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu")
    assert cfg.channels_last  # the default: 1.3-1.5 times as fast on a CPU
    fast = train_counterfactual(cfg, det, toy_data, out_dir=tmp_path, progress=False)
    conv = fast.models.generator.stem.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    plain = train_counterfactual(cfg.replace(channels_last=False), det, toy_data, progress=False)
    assert all(p.is_contiguous() for p in plain.models.generator.parameters())
    # the same computation up to float rounding: the two steps' losses agree to five digits (the
    # weights less closely: Adam's first steps move a weight by about lr whatever its gradient's size)
    for key in ("d_loss", "g_gan", "score", "rec", "con", "total"):
        assert fast.history[-1][key] == pytest.approx(plain.history[-1][key], rel=1e-4)
    # a speed setting like the device: a checkpoint of one layout resumes under the other
    resumed = train_counterfactual(cfg.replace(channels_last=False, iterations=4), det, toy_data, out_dir=tmp_path,
                                   progress=False)
    assert resumed.resumed_iteration == 2
    with pytest.raises(ValueError, match="channels_last must be True or False"):
        CounterfactualConfig(channels_last=1)


def test_bfloat16_precision_runs_the_networks_in_bfloat16_and_the_losses_in_float32(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", score_space="logit", score_eps=0.0005,
                               precision="bfloat16")
    fast = train_counterfactual(cfg, det, toy_data, out_dir=tmp_path, progress=False)
    assert all(p.dtype == torch.float32 for m in fast.models.modules() for p in m.parameters())
    plain = train_counterfactual(cfg.replace(precision="float32"), det, toy_data, progress=False)
    for key in ("d_loss", "score", "rec", "con", "total"):  # the same steps in coarser arithmetic
        assert math.isfinite(fast.history[-1][key])
        assert fast.history[-1][key] == pytest.approx(plain.history[-1][key], rel=0.05)
    assert fast.history[-1]["rec"] != plain.history[-1]["rec"]  # bfloat16 did run
    # a speed setting like the layout: a checkpoint resumes under the other precision
    resumed = train_counterfactual(cfg.replace(precision="float32", iterations=4), det, toy_data, out_dir=tmp_path,
                                   progress=False)
    assert resumed.resumed_iteration == 2
    with pytest.raises(ValueError, match="precision must be one of"):
        CounterfactualConfig(precision="float16")


def test_in_precision_hands_float32_outputs_to_the_losses():
    conv, x, cpu = torch.nn.Conv2d(3, 4, 3), torch.rand(2, 3, 8, 8), torch.device("cpu")
    assert _in_precision(conv, "float32", cpu) is conv
    out = _in_precision(conv, "bfloat16", cpu)(x)
    assert out.dtype == torch.float32  # a score clip such as logit(1 - 0.0005) is inf in bfloat16
    assert not torch.equal(out, conv(x)) and torch.allclose(out, conv(x), atol=0.05)  # computed in bfloat16


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [v.float() for v in model.state_dict().values()]


@pytest.mark.filterwarnings("ignore:g_ema=.*partly untrained")  # short runs: checked at the end
def test_generator_ema_explains_and_leaves_training_alone(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=4, device="cpu")
    off = train_counterfactual(cfg, det, toy_data, progress=False)
    assert off.models.generator_ema is None and off.generator is off.models.generator
    after_one = train_counterfactual(cfg.replace(iterations=1), det, toy_data, progress=False)
    # the average starts at the weights after the first step; a decay near 1 keeps them there,
    # one near 0 follows the last weights; either way G itself trains as without the average
    for decay, expected in ((1 - 1e-9, after_one.models.generator), (1e-9, off.models.generator)):
        on = train_counterfactual(cfg.replace(g_ema=decay), det, toy_data, progress=False)
        assert on.generator is on.models.generator_ema and not on.generator.training
        assert all(torch.equal(a, b) for a, b in zip(_weights(on.models.generator), _weights(off.models.generator)))
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(_weights(on.generator), _weights(expected)))
    assert not all(torch.allclose(a, b, atol=1e-3)
                   for a, b in zip(_weights(after_one.models.generator), _weights(off.models.generator)))
    # the average is part of the checkpoint: interrupted and resumed, the same average
    cfg = cfg.replace(g_ema=0.5)
    full = train_counterfactual(cfg, det, toy_data, out_dir=tmp_path / "full", progress=False)
    train_counterfactual(cfg.replace(iterations=2), det, toy_data, out_dir=tmp_path / "part", progress=False)
    resumed = train_counterfactual(cfg, det, toy_data, out_dir=tmp_path / "part", progress=False)
    assert resumed.resumed_iteration == 2
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_weights(full.generator), _weights(resumed.generator)))
    assert "generator_ema" in torch.load(tmp_path / "full" / LAST, weights_only=True)
    with pytest.warns(UserWarning, match="partly untrained"):  # 0.99³ of the first step's weights stay
        train_counterfactual(cfg.replace(g_ema=0.99), det, toy_data, progress=False)


def test_score_warmup_leaves_the_score_loss_out_at_first_and_weighs_it_after(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=3, device="cpu")
    no_score = cfg.replace(weights={"score": 0.0})
    with pytest.warns(UserWarning, match="never weighed"):
        all_warmup = train_counterfactual(cfg.replace(score_warmup=3), det, toy_data, progress=False)
    # during the warm-up, exactly the training without the score loss (same random draws), score still logged
    assert all(torch.equal(a, b) for a, b in zip(_weights(all_warmup.models.generator),
                                                 _weights(train_counterfactual(no_score, det, toy_data,
                                                                               progress=False).models.generator)))
    assert all_warmup.history[-1]["score"] > 0
    # after it, the score loss acts: one warm-up iteration, then two with it, differs from both neighbours
    warm = cfg.replace(score_warmup=1)
    one = train_counterfactual(warm, det, toy_data, out_dir=tmp_path / "full", progress=False)
    for other in (no_score, cfg):
        trained = train_counterfactual(other, det, toy_data, progress=False).models.generator
        assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_weights(one.models.generator), _weights(trained)))
    # the warm-up belongs to the configuration a checkpoint resumes under, and resumes at its iteration
    with pytest.warns(UserWarning, match="never weighed"):  # cut off within the warm-up
        train_counterfactual(warm.replace(iterations=1), det, toy_data, out_dir=tmp_path / "part", progress=False)
    resumed = train_counterfactual(warm, det, toy_data, out_dir=tmp_path / "part", progress=False)
    assert resumed.resumed_iteration == 1
    assert all(torch.equal(a, b) for a, b in zip(_weights(one.models.generator), _weights(resumed.models.generator)))
    with pytest.raises(ValueError, match="only more iterations"):
        train_counterfactual(cfg, det, toy_data, out_dir=tmp_path / "part", progress=False)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="score_warmup must be a non-negative int"):
            CounterfactualConfig(score_warmup=bad)


def test_lr_decay_lowers_both_learning_rates_linearly_over_the_last_share(tmp_path, toy_data):
    cfg = CounterfactualConfig(**TINY, iterations=10, device="cpu")
    assert [lr_factor(cfg, it) for it in range(10)] == [1.0] * 10  # off: constant rates
    half = cfg.replace(lr_decay=0.5)  # the last 5 iterations: 5/5 ... 1/5
    assert [lr_factor(half, it) for it in range(10)] == pytest.approx([1.0] * 6 + [0.8, 0.6, 0.4, 0.2])
    det = _toy_detector()
    short = half.replace(iterations=4, lr_g=1e-3, lr_d=3e-3)  # rates of the 4th and last iteration: 1/2 of the base
    decayed = train_counterfactual(short, det, toy_data, out_dir=tmp_path / "decay", progress=False)
    state = torch.load(tmp_path / "decay" / LAST, weights_only=True)
    assert [g["lr"] for g in state["opt_g"]["param_groups"]] == pytest.approx([5e-4])
    assert [g["lr"] for g in state["opt_d"]["param_groups"]] == pytest.approx([1.5e-3])
    # only the last iteration took a smaller step, and that changed G
    plain = train_counterfactual(short.replace(lr_decay=0.0), det, toy_data, progress=False)
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_weights(decayed.models.generator),
                                                                    _weights(plain.models.generator)))
    for bad in (-0.1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="lr_decay must be a share"):
            CounterfactualConfig(lr_decay=bad)


def test_nan_stops_training_and_keeps_last_checkpoint(tmp_path, toy_data):
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        s = x[:, 0].mean(dim=(1, 2))
        return s * float("nan") if calls["n"] > 12 else s

    det = as_detector(flaky, (3, 28, 28), check_range=False)
    cfg = CounterfactualConfig(**TINY, iterations=50, device="cpu")
    with pytest.raises(TrainingDiverged, match="became nan"):
        train_counterfactual(cfg, det, toy_data, out_dir=tmp_path, progress=False)
    assert (tmp_path / LAST).is_file()  # the last good state is kept


def test_training_input_errors(toy_data):
    det = _toy_detector()
    with pytest.raises(ValueError, match="like the detector's input"):
        train_counterfactual(CounterfactualConfig(**TINY, iterations=1), det, toy_data[:, :1], progress=False)
    with pytest.raises(ValueError, match="at least batch_size"):
        train_counterfactual(CounterfactualConfig(**TINY, iterations=1), det, toy_data[:4], progress=False)


def test_config_validation():
    with pytest.raises(ValueError, match="n_concepts"):
        CounterfactualConfig(n_concepts=0)
    with pytest.raises(ValueError, match="loss weight 'rec'"):
        CounterfactualConfig(weights={"rec": -1})
    with pytest.raises(ValueError, match="unknown counterfactual option"):
        CounterfactualConfig().replace(widths=(1,))
    with pytest.raises(ValueError, match="g_skip must be True or False"):
        CounterfactualConfig(g_skip="yes")
    for bad in (1.0, -0.1, True):
        with pytest.raises(ValueError, match=r"g_ema must be a decay in \[0, 1\)"):
            CounterfactualConfig(g_ema=bad)
    for bad in (-1, True, "2"):
        with pytest.raises(ValueError, match="loss weight 'cycle'"):
            CounterfactualConfig(weights={"cycle": bad})
    assert CounterfactualConfig().weights.cycle is None  # the paper's one shared weight
    cfg = CounterfactualConfig(weights={"rec": 3.0, "cycle": 0.5}, g_skip=True)
    assert CounterfactualConfig.from_dict(cfg.to_dict()) == cfg
    older = cfg.to_dict()  # a checkpoint written before the option existed reads as the paper's
    del older["weights"]["cycle"]
    assert CounterfactualConfig.from_dict(older).weights.cycle is None
    cfg = CounterfactualConfig(weights={"rec": 3.0}, g_skip=True)
    assert CounterfactualConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(weights={"con": 1.0}).weights.rec == 3.0
    # a checkpoint of another version: unknown fields are named, not a TypeError
    with pytest.raises(ValueError, match=r"\['weights.cyc'\]"):
        CounterfactualConfig.from_dict({**cfg.to_dict(), "weights": {"rec": 3.0, "cyc": None}})
    with pytest.raises(ValueError, match=r"\['g_attention'\]"):
        CounterfactualConfig.from_dict({**cfg.to_dict(), "g_attention": True})


def _explainer():
    torch.manual_seed(0)
    det = Detector("bce", (3, 28, 28)).eval()
    cfg = CounterfactualConfig(**TINY)
    gen = Generator((3, 28, 28), cfg.n_concepts, cfg.g_widths, cfg.g_res_blocks, cfg.cond_dim).eval()
    r = ConceptClassifier((3, 28, 28), cfg.n_concepts, cfg.r_widths)
    return Explainer(det, gen, cfg, meta={"dataset": "toy"}, concept_classifier=r)


def test_explain_batches_and_flags_anomalous_counterfactuals():
    ex = _explainer()
    x = torch.rand(5, 3, 28, 28)
    full = explain(ex.detector, ex.generator, x, batch_size=256)
    small = explain(ex.detector, ex.generator, x, batch_size=2)
    assert full.counterfactuals.shape == (5, 2, 3, 28, 28) and full.cf_scores.shape == (5, 2)
    assert torch.allclose(full.counterfactuals, small.counterfactuals, atol=1e-5)
    strict = explain(ex.detector, ex.generator, x, threshold=-1.0)  # nothing can be normal
    assert not strict.is_normal.any()
    assert "still anomalous" in strict.summary()
    lax = explain(ex.detector, ex.generator, x, threshold=2.0)
    assert lax.is_normal.all() and "still anomalous" not in lax.summary()


def test_traverse_shapes_and_errors():
    ex = _explainer()
    t = traverse(ex.detector, ex.generator, torch.rand(3, 3, 28, 28), concept=1, alphas=[0, 0.5, 1])
    assert t.images.shape == (3, 3, 3, 28, 28) and t.scores.shape == (3, 3)
    with pytest.raises(ValueError, match="concept must be in 0..1"):
        traverse(ex.detector, ex.generator, torch.rand(1, 3, 28, 28), concept=2)
    with pytest.raises(ValueError, match="alphas"):
        traverse(ex.detector, ex.generator, torch.rand(1, 3, 28, 28), concept=0, alphas=[1.5])


def test_explainer_round_trip(tmp_path):
    ex = _explainer()
    ex.save(tmp_path / "explainer.pt")
    loaded = load_explainer(tmp_path / "explainer.pt", threshold=0.3)
    x = torch.rand(2, 3, 28, 28)
    assert torch.allclose(ex.explain(x).counterfactuals, loaded.explain(x).counterfactuals)
    assert loaded.threshold == 0.3 and loaded.meta == {"dataset": "toy"}
    y = ex.explain(x).counterfactuals[:, 0]
    assert torch.allclose(ex.concept_classifier(x, y), loaded.concept_classifier(x, y))
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cfx explainer checkpoint"):
        load_explainer(tmp_path / "other.pt")


def test_skip_generator_round_trips_and_its_skips_carry_the_input(tmp_path):
    from cfx_lib.counterfactual.models import build_generator

    torch.manual_seed(0)
    cfg = CounterfactualConfig(**TINY, g_skip=True)
    gen = build_generator(cfg, (3, 28, 28)).eval()
    assert gen.skip and "g_skip" in cfg.architecture()
    x = torch.rand(2, 3, 28, 28)
    # the option travels with the explainer checkpoint
    Explainer(Detector("bce", (3, 28, 28)).eval(), gen, cfg).save(tmp_path / "explainer.pt")
    loaded = load_explainer(tmp_path / "explainer.pt")
    assert loaded.generator.skip and torch.allclose(loaded.generator(x, 0.0, 1), gen(x, 0.0, 1))
    # with a bottleneck that forgets its input (down blocks that output zeros) and no residual, the
    # plain decoder draws the same image for every input; the skips still pass the input through
    plain = build_generator(cfg.replace(g_skip=False), (3, 28, 28)).eval()
    plain.load_state_dict(gen.state_dict())
    for g in (gen, plain):
        g.residual = False
        for block in g.down:
            for conv in (block.c2, block.skip):
                torch.nn.init.zeros_(conv.weight)
                torch.nn.init.zeros_(conv.bias)
    x2 = x.clone()
    x2[:, :, 14, 14] += 0.5
    assert torch.allclose(plain(x, 0.0, 0), plain(x2, 0.0, 0))
    assert not torch.allclose(gen(x, 0.0, 0), gen(x2, 0.0, 0))


def test_mask_generator_keeps_the_image_where_its_gate_is_closed_and_paints_where_it_is_open(tmp_path):
    from cfx_lib.counterfactual.models import MASK_INIT_BIAS, build_generator

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="g_mask must be True or False"):
        CounterfactualConfig(g_mask=1)
    cfg = CounterfactualConfig(**TINY, g_mask=True, g_residual=False)
    assert "g_mask" in cfg.architecture() and not CounterfactualConfig().g_mask
    gen = build_generator(cfg, (3, 28, 28)).eval()
    assert gen.mask and gen.out.out_channels == 4 and gen.out.bias[-1].item() == MASK_INIT_BIAS
    x = torch.rand(2, 3, 28, 28)
    # nearly closed at initialisation (gate ≈ 0.05): G stays within 0.06 of x, where the plain G does not
    plain = build_generator(cfg.replace(g_mask=False), (3, 28, 28)).eval()
    assert (gen(x, 0.0, 0) - x).abs().max() < 0.06 < (plain(x, 0.0, 0) - x).abs().max()
    out = gen.out
    with torch.no_grad():
        out.weight.zero_()  # a constant paint
        out.bias[:3] = torch.tensor([2.0, -2.0, 0.0])
        out.bias[-1] = -30.0  # gate closed: the image exactly
        assert torch.allclose(gen(x, 0.0, 0), x, atol=1e-6)
        out.bias[-1] = 30.0  # gate open: the paint everywhere, whatever the input
        paint = torch.tensor([(math.tanh(2.0) + 1) / 2, (math.tanh(-2.0) + 1) / 2, 0.5]).view(1, 3, 1, 1)
        assert torch.allclose(gen(x, 0.0, 1), paint.expand_as(x), atol=1e-6)
    # the option travels with the explainer checkpoint
    gen = build_generator(cfg, (3, 28, 28)).eval()
    Explainer(Detector("bce", (3, 28, 28)).eval(), gen, cfg).save(tmp_path / "explainer.pt")
    loaded = load_explainer(tmp_path / "explainer.pt")
    assert loaded.generator.mask and torch.allclose(loaded.generator(x, 0.0, 1), gen(x, 0.0, 1))


def test_layer_norm_generator_computes_the_same_function_in_training_and_when_it_explains(tmp_path, toy_data):
    from cfx_lib.counterfactual.models import build_generator

    with pytest.raises(ValueError, match="g_norm must be one of"):
        CounterfactualConfig(g_norm="instance")
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", g_norm="layer")
    assert "g_norm" in cfg.architecture() and CounterfactualConfig().g_norm == "batch"  # the paper's by default
    torch.manual_seed(0)
    x, others = torch.rand(2, 3, 28, 28), torch.rand(6, 3, 28, 28)
    alpha, k = torch.tensor([0.0, 0.3]), torch.tensor([0, 1])

    def in_batch(gen, companions):  # the first two images' outputs, in training mode, beside companions
        gen.train()
        with torch.no_grad():
            return gen(torch.cat([x, companions]), torch.cat([alpha, torch.rand(len(companions))]),
                       torch.cat([k, torch.zeros(len(companions), dtype=torch.long)]))[:2]

    def explained(gen):
        gen.eval()
        with torch.no_grad():
            return gen(x, alpha, k)

    batch_g = build_generator(cfg.replace(g_norm="batch"), (3, 28, 28))
    for m in batch_g.modules():  # non-trivial conditional scales, as after training
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.5)
    layer_g = build_generator(cfg, (3, 28, 28))
    layer_g.load_state_dict({k_: v for k_, v in batch_g.state_dict().items()
                             if "running" not in k_ and "num_batches" not in k_}, strict=False)
    # batch norm: an image's output depends on its batch, and eval mode gives yet another
    assert not torch.allclose(in_batch(batch_g, others), in_batch(batch_g, others.flip(1) * 0.5), atol=1e-4)
    assert not torch.allclose(in_batch(batch_g, others), explained(batch_g), atol=1e-4)
    # layer norm: one function of the image, α and k
    assert torch.allclose(in_batch(layer_g, others), in_batch(layer_g, others.flip(1) * 0.5), atol=1e-5)
    assert torch.allclose(in_batch(layer_g, others), explained(layer_g), atol=1e-5)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in layer_g.modules())
    # it trains, and the option travels with the checkpoint and the explainer
    result = train_counterfactual(cfg, _toy_detector(), toy_data, out_dir=tmp_path, progress=False)
    assert result.models.generator.out_norm.bn.num_groups == 1
    Explainer(Detector("bce", (3, 28, 28)).eval(), result.generator, cfg).save(tmp_path / "explainer.pt")
    loaded = load_explainer(tmp_path / "explainer.pt")
    assert torch.allclose(loaded.generator(x, 0.0, 1), result.generator(x, 0.0, 1))
    with pytest.raises(ValueError, match="another configuration|g_norm"):
        train_counterfactual(cfg.replace(g_norm="batch", iterations=3), _toy_detector(), toy_data, out_dir=tmp_path,
                             progress=False)


def test_as_batch_accepts_user_formats_and_refuses_wrong_sizes():
    import numpy as np
    from PIL import Image

    shape = (3, 28, 28)
    u8 = (np.random.rand(28, 28, 3) * 255).astype(np.uint8)
    assert as_batch(u8, shape).shape == (1, 3, 28, 28)
    assert as_batch(Image.fromarray(u8), shape).shape == (1, 3, 28, 28)
    assert as_batch([torch.rand(3, 28, 28), torch.rand(3, 28, 28)], shape).shape == (2, 3, 28, 28)
    assert math.isclose(float(as_batch(np.full((28, 28, 3), 255, np.uint8), shape).max()), 1.0)
    with pytest.raises(ValueError, match="size 28×28"):
        as_batch(torch.rand(1, 3, 32, 32), shape)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_batch(torch.rand(1, 3, 28, 28) * 5, shape)


# --- the logit score space ---------------------------------------------------------------------


def test_logit_score_loss_is_zero_at_targets_and_one_sided_at_the_clip():
    eps = 1e-3
    targets = torch.tensor([0.1, 0.5, 0.9])
    assert L.score_loss(torch.logit(targets), targets, "logit", eps) < 1e-8
    assert L.score_loss(torch.logit(targets) + 2.0, targets, "logit", eps) > 1.0
    # α = 0 asks for a score of at most eps: more normal than that costs nothing, less does
    assert L.score_loss(torch.tensor([-12.0]), torch.zeros(1), "logit", eps) == 0
    assert L.score_loss(torch.tensor([-3.0]), torch.zeros(1), "logit", eps) > 1.0
    assert L.score_loss(torch.tensor([12.0]), torch.ones(1), "logit", eps) == 0
    assert L.score_loss(torch.tensor([3.0]), torch.ones(1), "logit", eps) > 1.0
    assert L.score_loss_excess(torch.tensor([-3.0]), torch.zeros(1), "logit", eps) == \
        L.score_loss(torch.tensor([-3.0]), torch.zeros(1), "logit", eps)
    with pytest.raises(ValueError, match="unknown score space"):
        L.score_loss(torch.zeros(1), torch.zeros(1), "log")


def test_logit_score_loss_keeps_pulling_where_bce_has_stopped():
    # a score of 0.03 against a target of 0: BCE's gradient is the score itself, the logit space's
    # is that of an L1 distance (1)
    grads = {}
    for space in ("probability", "logit"):
        z = torch.tensor([math.log(0.03 / 0.97)], requires_grad=True)
        L.score_loss(z, torch.zeros(1), space).backward()
        grads[space] = float(z.grad)
    assert grads["probability"] == pytest.approx(0.03, rel=1e-3)
    assert grads["logit"] == pytest.approx(1.0)


def test_sample_alphas():
    a = L.sample_alphas(1000, torch.Generator().manual_seed(1))
    assert torch.equal(a, torch.rand(1000, generator=torch.Generator().manual_seed(1)))  # the paper's U[0, 1]
    b = L.sample_alphas(20000, torch.Generator().manual_seed(1), "logit", 1e-3)
    assert b.min() >= 1e-3 - 1e-7 and b.max() <= 1 - 1e-3 + 1e-7
    # uniform in logit: P(α < 0.05) = (logit(0.05) − logit(eps)) / (2·logit(1 − eps)) ≈ 0.287
    share = (b < 0.05).float().mean().item()
    assert share == pytest.approx((math.log(0.05 / 0.95) + math.log(999)) / (2 * math.log(999)), abs=0.015)
    assert share > 5 * (a < 0.05).float().mean().item()


def test_sample_alphas_below_score_caps_each_alpha_at_its_image_score():
    upper = torch.linspace(0.0, 1.0, 11)
    full = L.sample_alphas(11, torch.Generator().manual_seed(3))
    capped = L.sample_alphas(11, torch.Generator().manual_seed(3), upper=upper)
    assert torch.allclose(capped, full * upper)  # the same uniform draw, mapped onto [0, s]
    assert (capped <= upper).all() and capped[0] == 0
    eps = 1e-3
    many = torch.full((5000,), 0.2)
    b = L.sample_alphas(5000, torch.Generator().manual_seed(4), "logit", eps, upper=many)
    assert b.min() >= eps - 1e-7 and b.max() <= 0.2 + 1e-6 and b.max() > 0.19
    # uniform in logit between logit(eps) and logit(0.2): its median sits halfway in logit
    mid = (math.log(eps / (1 - eps)) + math.log(0.2 / 0.8)) / 2
    assert torch.logit(b).median().item() == pytest.approx(mid, abs=0.1)
    # a score at (or beyond) the clip gives the plain logit draw; one below it asks for eps exactly
    plain = L.sample_alphas(7, torch.Generator().manual_seed(5), "logit", eps)
    assert torch.allclose(L.sample_alphas(7, torch.Generator().manual_seed(5), "logit", eps, upper=torch.ones(7)), plain)
    assert torch.allclose(L.sample_alphas(7, torch.Generator().manual_seed(5), "logit", eps, upper=torch.zeros(7)),
                          torch.full((7,), eps))
    with pytest.raises(ValueError, match="one score per image"):
        L.sample_alphas(4, torch.Generator(), upper=torch.ones(3))


def test_alpha_range_below_score_draws_alpha_up_to_each_batch_score(toy_data, monkeypatch):
    with pytest.raises(ValueError, match="alpha_range must be one of"):
        CounterfactualConfig(alpha_range="above")
    assert CounterfactualConfig().alpha_range == "full"  # the paper's α by default
    torch.manual_seed(0)
    det = Detector("bce", (3, 28, 28)).eval()
    scores = det.score_images(toy_data)
    drawn = []

    def spy(*args, **kwargs):
        alpha = real(*args, **kwargs)
        drawn.append((kwargs.get("upper"), alpha))
        return alpha

    real = L.sample_alphas
    monkeypatch.setattr(L, "sample_alphas", spy)
    for alpha_range in ("full", "below_score"):
        drawn.clear()
        cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", alpha_range=alpha_range)
        train_counterfactual(cfg, det, toy_data, progress=False)
        assert len(drawn) == 4  # one D and one G draw per iteration
        for upper, alpha in drawn:
            if alpha_range == "full":
                assert upper is None
            else:  # the caps are the detector's scores of the batch's images, and no α exceeds its cap
                upper = upper.cpu()
                assert upper.shape == (8,)
                assert ((upper[:, None] - scores[None, :]).abs().min(1).values < 1e-6).all()
                assert (alpha <= upper + 1e-6).all() and not torch.equal(alpha, upper)


def test_alpha_features_in_logit_space():
    from cfx_lib.counterfactual.models import alpha_features

    freq = torch.tensor([1.0, 2.0])
    near = torch.tensor([0.001, 0.03])
    plain, logit = alpha_features(near, freq), alpha_features(near, freq, 1e-3)
    assert (logit[0] - logit[1]).abs().max() > 10 * (plain[0] - plain[1]).abs().max()
    # α = 0 reads as the clip edge, scaled to −1
    assert torch.allclose(alpha_features(torch.tensor([0.0, 1.0]), freq, 1e-3)[:, 0], torch.tensor([-1.0, 1.0]))


def test_logit_space_config_trains_and_round_trips(tmp_path, toy_data):
    with pytest.raises(ValueError, match="score_space"):
        CounterfactualConfig(score_space="log")
    with pytest.raises(ValueError, match="score_eps"):
        CounterfactualConfig(score_eps=0.7)
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", score_space="logit", score_eps=1e-2)
    assert CounterfactualConfig.from_dict(cfg.to_dict()) == cfg and cfg.alpha_logit_eps == 1e-2
    assert CounterfactualConfig().alpha_logit_eps is None
    torch.manual_seed(0)
    det = Detector("bce", (3, 28, 28)).eval()
    result = train_counterfactual(cfg, det, toy_data, progress=False)
    assert result.generator.embed.logit_eps == 1e-2 and result.models.discriminator.alpha_logit_eps == 1e-2
    Explainer(det, result.generator.eval(), cfg).save(tmp_path / "explainer.pt")
    loaded = load_explainer(tmp_path / "explainer.pt")
    assert loaded.generator.embed.logit_eps == 1e-2
    x = toy_data[:3]
    assert torch.allclose(loaded.explain(x).counterfactuals, explain(det, result.generator, x).counterfactuals, atol=1e-6)


def test_auto_score_clip_is_the_median_normal_score_within_bounds():
    auto = CounterfactualConfig(**TINY, iterations=2, device="cpu", score_space="logit", score_eps="auto")
    with pytest.raises(ValueError, match="score_eps"):
        CounterfactualConfig(score_eps="median")
    with pytest.raises(ValueError, match="calibrate_score_eps"):
        auto.alpha_logit_eps
    assert auto.with_normal_scores(torch.tensor([0.04, 0.05, 0.9])).score_eps == pytest.approx(0.05)
    # a detector trained with OE scores normal images below the default clip: it stays the default
    assert auto.with_normal_scores(torch.full((5,), 1e-4)).score_eps == L.DEFAULT_SCORE_EPS
    assert auto.with_normal_scores(torch.full((5,), 0.7)).score_eps == 0.25  # MAX_AUTO_SCORE_EPS
    fixed = auto.replace(score_eps=0.01)
    assert fixed.with_normal_scores(torch.tensor([0.2])) is fixed
    with pytest.raises(ValueError, match="finite"):
        auto.with_normal_scores(torch.tensor([float("nan")]))
    assert CounterfactualConfig.from_dict(auto.to_dict()) == auto
    # another quantile: the upper quartile of 0.01 .. 0.05
    q75 = auto.replace(score_eps_quantile=0.75)
    assert q75.with_normal_scores(torch.tensor([0.01, 0.02, 0.03, 0.04, 0.05])).score_eps == pytest.approx(0.04)
    assert CounterfactualConfig.from_dict(q75.to_dict()) == q75
    for bad in (0, 1, 1.5, "0.9", True):
        with pytest.raises(ValueError, match="score_eps_quantile"):
            auto.replace(score_eps_quantile=bad)


def test_training_refuses_an_unresolved_auto_clip_and_calibration_resolves_it(toy_data):
    det = _toy_detector()  # φ = mean red brightness
    auto = CounterfactualConfig(**TINY, iterations=1, device="cpu", score_space="logit", score_eps="auto")
    with pytest.raises(ValueError, match="calibrate_score_eps"):
        train_counterfactual(auto, det, toy_data, progress=False)
    normal = torch.zeros(6, 3, 28, 28)
    normal[:, 0] = torch.tensor([0.02, 0.03, 0.04, 0.05, 0.06, 0.07])[:, None, None]
    cfg = calibrate_score_eps(auto, det, normal)
    assert cfg.score_eps == pytest.approx(0.045) and cfg.alpha_logit_eps == pytest.approx(0.045)
    assert train_counterfactual(cfg, det, toy_data, progress=False).generator.embed.logit_eps == pytest.approx(0.045)
    with pytest.raises(ValueError, match="normal training images"):
        calibrate_score_eps(auto, det, normal[0])


def test_checkpoints_from_before_the_score_space_option_resume(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu")
    train_counterfactual(cfg, det, toy_data, out_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / LAST, weights_only=True)
    for key in ("score_space", "score_eps"):  # a checkpoint written before these options existed
        del state["config"][key]
    del state["config"]["weights"]["distinct"]
    for row in state["history"]:  # and before the loss history had the distinct column
        del row["distinct"]
    torch.save(state, tmp_path / LAST)
    assert train_counterfactual(cfg.replace(iterations=4), det, toy_data, out_dir=tmp_path,
                                progress=False).resumed_iteration == 2
    rows = (tmp_path / "losses.csv").read_text().splitlines()
    distinct = rows[0].split(",").index("distinct")
    assert rows[1].split(",")[distinct] == "nan" and rows[-1].split(",")[distinct] == "0"


def test_edit_overlap_is_one_for_the_same_change_and_zero_for_different_ones():
    gen = torch.Generator().manual_seed(0)
    edit = torch.randn(4, 3, 8, 8, generator=gen)
    assert L.edit_overlap(edit, edit) == pytest.approx(1.0, abs=1e-6)
    assert L.edit_overlap(edit, 0.1 * edit) == pytest.approx(1.0, abs=1e-6)  # the strength does not matter
    assert L.edit_overlap(edit, -edit) == 0  # opposite changes are different changes
    assert L.edit_overlap(edit, torch.zeros_like(edit)) == 0
    colour, shape = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    colour[:, 0, 1:3, 1:3], colour[:, 2, 1:3, 1:3] = -1, 1  # the same stroke, red → blue
    shape[:, 0, 0, :] = 1  # a new red stroke elsewhere
    assert L.edit_overlap(colour, shape) == 0
    assert 0 < L.edit_overlap(colour, colour + shape) < 1
    with pytest.raises(ValueError, match="same shape"):
        L.edit_overlap(edit, edit[:2])


def test_distinct_term_separates_the_concepts_edits():
    torch.manual_seed(0)
    g = Generator((3, 28, 28), 2, (8, 16), 1, 16)
    for m in g.modules():  # break the identity initialisation so that the two concepts edit alike
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.5)
    x = torch.rand(8, 3, 28, 28)
    alpha = torch.zeros(8)

    def overlap():
        return L.edit_overlap(g(x, alpha, 0) - x, g(x, alpha, 1) - x)

    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    before = overlap().item()
    for _ in range(5):
        opt.zero_grad()
        overlap().backward()
        opt.step()
    assert overlap().item() < before


def test_distinct_weight_is_logged_and_off_by_default(tmp_path, toy_data):
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu")
    assert cfg.weights.distinct == 0
    off = train_counterfactual(cfg, det, toy_data, progress=False)
    assert all(row["distinct"] == 0 for row in off.history)
    on = train_counterfactual(cfg.replace(weights={"distinct": 5.0}), det, toy_data, out_dir=tmp_path, progress=False)
    assert all(0 < row["distinct"] <= 1 for row in on.history)
    assert "distinct" in (tmp_path / "losses.csv").read_text().splitlines()[0].split(",")
    # with one concept there is no second edit to compare
    single = train_counterfactual(cfg.replace(n_concepts=1, weights={"distinct": 5.0}), det, toy_data, progress=False)
    assert all(row["distinct"] == 0 for row in single.history)


@pytest.mark.parametrize("term, weight", [("proximity", 7.0), ("edit_rank", 5.0), ("faint", 3.0)])
def test_optional_term_is_logged_always_and_shrinks_when_weighed(toy_data, term, weight):
    """proximity (the edit size), edit_rank (its distance from one factor) and faint (the erasure
    guard): off in the paper's objective, logged all the same, added as λ times themselves, and
    lowered when weighed."""
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=1, device="cpu")
    assert getattr(cfg.weights, term) == 0  # the paper's objective
    off = train_counterfactual(cfg, det, toy_data, progress=False).history[0]
    on = train_counterfactual(cfg.replace(weights={term: weight}), det, toy_data, progress=False).history[0]
    assert off[term] > 0  # logged even when it is not weighed
    # no random draw of its own: the first step is the same, plus the weighted term
    assert on[term] == pytest.approx(off[term]) and on["score"] == off["score"]
    assert on["total"] == pytest.approx(off["total"] + weight * off[term], rel=1e-5)
    longer = cfg.replace(iterations=8)
    plain = train_counterfactual(longer, det, toy_data, progress=False).history[-1][term]
    weighed = train_counterfactual(longer.replace(weights={term: 100.0}), det, toy_data, progress=False).history[-1][term]
    assert weighed < plain


def test_cycle_weight_weighs_the_cycle_term_apart(toy_data):
    """weights.cycle: None is the paper's shared weight; set, it replaces λ_rec on ‖x − x_cyc‖₁ only,
    which the trainer logs as ``cycle`` (a part of ``rec``) either way."""
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=1, device="cpu")
    lam = cfg.weights.rec
    paper = train_counterfactual(cfg, det, toy_data, progress=False).history[0]
    assert 0 < paper["cycle"] < paper["rec"]
    same = train_counterfactual(cfg.replace(weights={"cycle": lam}), det, toy_data, progress=False).history[0]
    assert same["total"] == pytest.approx(paper["total"], rel=1e-6) and same["cycle"] == paper["cycle"]
    for weight in (0.0, 3 * lam):
        row = train_counterfactual(cfg.replace(weights={"cycle": weight}), det, toy_data, progress=False).history[0]
        assert row["cycle"] == paper["cycle"] and row["rec"] == paper["rec"]  # the first step's passes are the same
        assert row["total"] == pytest.approx(paper["total"] + (weight - lam) * paper["cycle"], rel=1e-5)


def test_faint_shortfall_is_zero_above_the_floor_and_one_for_an_erased_image():
    from cfx_lib.metrics.visibility import contrast, faint_threshold
    digit = torch.zeros(1, 3, 8, 8)
    digit[:, 1:, 2:6, 3:5] = 1.0  # a cyan bar on black
    real = torch.cat([digit * v for v in torch.linspace(0.5, 1.0, 50)])
    floor = faint_threshold(real)
    assert L.faint_shortfall(contrast(real[10:]), floor).item() == 0  # real images above the floor cost nothing
    erased = torch.full_like(digit, 0.3)  # uniform: contrast 0, whatever its colour
    assert L.faint_shortfall(contrast(erased), floor).item() == pytest.approx(1.0)
    faded = digit * 0.25  # half the contrast of the faintest real image
    assert L.faint_shortfall(contrast(faded), floor).item() == pytest.approx(0.5, abs=0.02)
    # the mean over a batch, and a gradient that raises the contrast of what is below the floor
    both = torch.cat([faded, digit]).requires_grad_(True)
    shortfall = L.faint_shortfall(contrast(both), floor)
    assert shortfall.item() == pytest.approx(0.25, abs=0.01)
    shortfall.backward()
    assert both.grad[1].abs().sum() == 0 and (both.grad[0] * digit[0]).sum() < 0
    assert L.faint_shortfall(contrast(erased), 0.0).item() == 0  # a zero floor puts nothing below it
    with pytest.raises(ValueError, match=r"one value per image"):
        L.faint_shortfall(contrast(both).view(1, -1), floor)


def test_faint_shortfall_weighted_is_the_weighted_mean_of_the_weighed_images():
    from cfx_lib.metrics.visibility import contrast

    digit = torch.zeros(1, 3, 8, 8)
    digit[:, 1:, 2:6, 3:5] = 1.0
    floor = float(contrast(digit)[0])
    images = torch.cat([digit, digit * 0.5, torch.zeros_like(digit)]).requires_grad_(True)  # shortfall 0, 0.5, 1
    c = contrast(images)
    assert L.faint_shortfall(c, floor).item() == pytest.approx(0.5)  # the plain mean
    assert L.faint_shortfall(c, floor, torch.ones(3)).item() == pytest.approx(0.5)  # equal weights: the same
    weighted = L.faint_shortfall(c, floor, torch.tensor([0.0, 1.0, 3.0]))
    assert weighted.item() == pytest.approx((0.5 + 3.0) / 4)
    weighted.backward()  # an image of weight 0 gets no gradient, however faint
    assert images.grad[0].abs().sum() == 0 and (images.grad[1] * digit[0]).sum() < 0
    assert L.faint_shortfall(c, floor, torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(0.5)
    assert L.faint_shortfall(c, floor, torch.zeros(3)).item() == 0  # no edit weighed: nothing to guard
    with pytest.raises(ValueError, match="non-negative, one per image"):
        L.faint_shortfall(c, floor, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="non-negative, one per image"):
        L.faint_shortfall(c, floor, torch.ones(2))


def test_faint_focus_descent_weighs_each_counterfactual_by_its_score_descent(toy_data, monkeypatch):
    with pytest.raises(ValueError, match="faint_focus must be one of"):
        CounterfactualConfig(faint_focus="anomalies")
    assert CounterfactualConfig().faint_focus == "all"  # the plain mean by default
    torch.manual_seed(0)
    det = Detector("bce", (3, 28, 28)).eval()
    scores = det.score_images(toy_data)
    alphas, weights = [], []
    real_alphas, real_shortfall = L.sample_alphas, L.faint_shortfall
    monkeypatch.setattr(L, "sample_alphas", lambda *a, **kw: alphas.append(real_alphas(*a, **kw)) or alphas[-1])
    monkeypatch.setattr(L, "faint_shortfall",
                        lambda c, floor, w=None: weights.append(w) or real_shortfall(c, floor, w))
    cfg = CounterfactualConfig(**TINY, iterations=1, device="cpu", faint_focus="descent")
    off = train_counterfactual(cfg, det, toy_data, progress=False).history[0]
    w, alpha = weights[-1].cpu(), alphas[-1]  # the generator step's draw is the iteration's last
    assert w.shape == (8,) and (w >= 0).all() and (w > 0).any() and (w == 0).any()
    # each weight is the batch image's own score minus α, or 0 where α lies above that score
    descended = w > 0
    assert ((w + alpha)[descended, None] - scores[None, :]).abs().min(1).values.max() < 1e-5
    assert ((alpha[~descended, None] - scores[None, :]) >= -1e-6).any(1).all()
    plain = train_counterfactual(cfg.replace(faint_focus="all"), det, toy_data, progress=False).history[0]
    assert weights[-1] is None and plain["faint"] != off["faint"]  # "all" is the plain mean
    on = train_counterfactual(cfg.replace(weights={"faint": 3.0}), det, toy_data, progress=False).history[0]
    # no random draw of its own: the same step, plus the weighted term
    assert [on[key] for key in ("d_loss", "score", "rec", "faint")] == [off[key] for key in ("d_loss", "score", "rec", "faint")]
    assert on["total"] == pytest.approx(off["total"] + 3.0 * off["faint"], rel=1e-5)


def test_the_erasure_guard_refuses_data_without_contrast(toy_data):
    flat = torch.full((64, *toy_data.shape[1:]), 0.5)
    cfg = CounterfactualConfig(**TINY, iterations=1, device="cpu", weights={"faint": 1.0})
    with pytest.raises(ValueError, match="uniform"):
        train_counterfactual(cfg, _toy_detector(), flat, progress=False)
    # off, the same data trains and the guard is logged as 0
    assert train_counterfactual(cfg.replace(weights={"faint": 0.0}), _toy_detector(), flat,
                                progress=False).history[0]["faint"] == 0


def test_edit_rank_is_zero_for_one_factor_edits_and_positive_for_two():
    stroke, other = torch.zeros(1, 1, 6, 6), torch.zeros(1, 1, 6, 6)
    stroke[..., 1:5, 2] = torch.tensor([0.5, 1.0, 1.0, 0.7])  # an anti-aliased vertical stroke
    other[..., 3, 1:5] = 1.0  # a horizontal one
    red, cyan = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1), torch.tensor([0, 1.0, 1.0]).view(1, 3, 1, 1)
    x = stroke * red
    recolour, redraw, both = stroke * cyan - x, other * red - x, other * cyan - x
    assert L.edit_rank(recolour).item() == pytest.approx(0, abs=1e-3)
    assert L.edit_rank(redraw).item() == pytest.approx(0, abs=1e-3)
    assert L.edit_rank(torch.zeros_like(x)).item() == pytest.approx(0, abs=1e-3)
    assert L.edit_rank(both).item() > 0.1
    # the residual of a two-factor edit grows with it: 2·edit has twice the residual
    assert L.edit_rank(2 * both).item() == pytest.approx(2 * L.edit_rank(both).item(), rel=1e-3)
    # one channel: every edit is rank 1
    assert L.edit_rank(torch.randn(3, 1, 6, 6)).item() == pytest.approx(0, abs=1e-3)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.edit_rank(both[0])


@pytest.mark.parametrize("option, changed, unchanged", [
    # the first discriminator step is the same; the cycle reads a noisy x_t, so its L1 and score differ
    ("cycle_noise", ("rec", "score"), ("d_loss",)),
    # R reads noisy pairs, so its loss differs; everything computed before R in the step does not
    ("concept_noise", ("con",), ("d_loss", "g_gan", "score", "rec")),
    # R reads each image of its pairs through its own channel gains: the same, for colour
    ("concept_jitter", ("con",), ("d_loss", "g_gan", "score", "rec")),
    # φ reads x_t and x_cyc turned and scaled about their centres: only the score loss differs
    ("score_rotate", ("score",), ("d_loss", "g_gan", "rec", "con")),
    ("score_scale", ("score",), ("d_loss", "g_gan", "rec", "con")),
])
def test_random_input_options_reach_their_term_and_stay_deterministic(toy_data, option, changed, unchanged):
    too_large = {"concept_jitter": (1.0,), "score_scale": (1.0,), "score_rotate": (181,)}.get(option, ())
    for bad in (-0.1, True, "0.1", *too_large):
        with pytest.raises(ValueError, match=option):
            CounterfactualConfig(**{option: bad})
    det = _toy_detector()
    cfg = CounterfactualConfig(**TINY, iterations=1, device="cpu")
    assert getattr(cfg, option) == 0  # the paper's objective
    plain = train_counterfactual(cfg, det, toy_data, progress=False).history[0]
    noisy = [train_counterfactual(cfg.replace(**{option: 0.5}), det, toy_data, progress=False).history[0]
             for _ in range(2)]
    losses = ("d_loss", "g_gan", "score", "rec", "con", "total")
    assert [noisy[0][key] for key in losses] == [noisy[1][key] for key in losses]
    assert all(noisy[0][key] != plain[key] for key in changed)
    assert [noisy[0][key] for key in unchanged] == [plain[key] for key in unchanged]


def test_edit_map_reads_where_an_image_changed_in_no_particular_colour():
    from cfx_lib.counterfactual.models import edit_map

    stroke = torch.zeros(1, 1, 28, 28)
    stroke[..., 8:20, 12:16] = 1.0
    paint = lambda rgb: stroke * torch.tensor(rgb, dtype=torch.float).view(1, 3, 1, 1)  # noqa: E731
    red, blue, cyan = paint((1, 0, 0)), paint((0, 0, 1)), paint((0, 1, 1))
    # recolouring red → cyan and blue → cyan: the same map, the digit's silhouette
    assert torch.equal(edit_map(red, cyan), stroke) and torch.equal(edit_map(blue, cyan), stroke)
    assert torch.equal(edit_map(red, red), torch.zeros_like(stroke))
    torch.manual_seed(0)
    r_edit = ConceptClassifier((3, 28, 28), 2, (8, 16), input="edit").eval()  # eval: no power-iteration step
    r_pair = ConceptClassifier((3, 28, 28), 2, (8, 16)).eval()
    assert r_edit.features.blocks[0].c1.weight.shape[1] == 1 and r_pair.input == "pair"
    # R on the edit cannot tell a red anomaly recoloured from a blue one; R on the pair can
    assert torch.allclose(r_edit(red, cyan), r_edit(blue, cyan))
    assert not torch.allclose(r_pair(red, cyan), r_pair(blue, cyan))
    with pytest.raises(ValueError, match=r"\['pair', 'edit'\]"):
        ConceptClassifier((3, 28, 28), 2, (8, 16), input="diff")


def test_edit_input_of_r_trains_and_travels_with_the_explainer(tmp_path, toy_data):
    with pytest.raises(ValueError, match="r_input must be one of"):
        CounterfactualConfig(r_input="diff")
    cfg = CounterfactualConfig(**TINY, iterations=2, device="cpu", r_input="edit")
    assert CounterfactualConfig.from_dict(cfg.to_dict()) == cfg and cfg.architecture()["r_input"] == "edit"
    assert CounterfactualConfig().r_input == "pair"  # the paper's R by default
    torch.manual_seed(0)
    det = Detector("bce", (3, 28, 28)).eval()
    result = train_counterfactual(cfg, det, toy_data, progress=False)
    r = result.models.concept_classifier
    assert r.input == "edit" and math.isfinite(result.history[-1]["con"])
    Explainer(det, result.generator.eval(), cfg, concept_classifier=r).save(tmp_path / "explainer.pt")
    loaded = load_explainer(tmp_path / "explainer.pt")
    x, y = toy_data[:3], toy_data[3:6]
    assert loaded.concept_classifier.input == "edit"
    assert torch.allclose(loaded.concept_classifier(x, y), r(x, y))


def test_standing_statistics_are_the_statistics_of_the_batches_drawn_and_in_batch_reads_training_mode():
    from cfx_lib.counterfactual import InBatchGenerator, standing_statistics
    from cfx_lib.counterfactual.batchnorm import _batch_norms
    from cfx_lib.counterfactual.models import build_generator

    torch.manual_seed(0)
    cfg = CounterfactualConfig(**{**TINY, "batch_size": 64}, device="cpu")
    g = build_generator(cfg, (3, 28, 28))  # at initialisation α and k do not move the features (γ = β = 0)
    image = torch.rand(1, 3, 28, 28)
    images = image.expand(64, -1, -1, -1).clone()  # every batch drawn is this image 64 times
    before = {k: v.clone() for k, v in g.state_dict().items()}
    standing = standing_statistics(g, images, cfg, batches=3)
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())  # G itself is left alone
    g.train()
    with torch.no_grad():
        trained = g(images, torch.zeros(64), torch.zeros(64, dtype=torch.long))[:1]
    # eval mode with standing statistics of batches of this image = training mode on such a batch
    # (up to running_var's unbiased estimate)
    assert not standing.training
    assert torch.allclose(standing(image, 0.0, 0), trained, atol=1e-3)
    g.eval()
    assert not torch.allclose(g(image, 0.0, 0), trained, atol=1e-2)  # fresh running averages are not
    # in-batch: training mode beside training images, deterministic given its seed, G's averages untouched
    x = torch.rand(5, 3, 28, 28)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    reads = [InBatchGenerator(g, images, cfg, per_batch=2, seed=1)(x, 0.0, 1) for _ in range(2)]
    assert reads[0].shape == x.shape and torch.equal(reads[0], reads[1])
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())
    # the passes of a training iteration: with α and k moving nothing, the transform and the reconstruction
    # are one pass, the cycle reads the transform's output; of four passes per iteration three are
    # transform-like and one a cycle, so the averages are ¾ the transform's and ¼ the cycle's
    steady = {"batches": 2, "seed": 3}
    scores = torch.full((64,), 0.3)
    every = standing_statistics(g, images, cfg, passes="training", scores=scores, **steady)
    with torch.no_grad():
        g.train()
        x_t = g(images, torch.zeros(64), torch.zeros(64, dtype=torch.long))
    cycle = standing_statistics(g, x_t, cfg, **steady)
    for a, b, c in zip(_batch_norms(every), _batch_norms(standing_statistics(g, images, cfg, **steady)),
                       _batch_norms(cycle)):
        assert torch.allclose(a.running_mean, 0.75 * b.running_mean + 0.25 * c.running_mean, atol=1e-5)
        assert torch.allclose(a.running_var, 0.75 * b.running_var + 0.25 * c.running_var, atol=1e-4)
    with pytest.raises(ValueError, match="passes must be one of"):
        standing_statistics(g, images, cfg, passes="cycle")
    with pytest.raises(ValueError, match="needs the detector's scores"):
        standing_statistics(g, images, cfg, passes="training", scores=scores[:3])
    layer = build_generator(cfg.replace(g_norm="layer"), (3, 28, 28)).eval()
    assert torch.allclose(InBatchGenerator(layer, images, cfg, per_batch=2)(x, 0.0, 1), layer(x, 0.0, 1), atol=1e-5)
    with pytest.raises(ValueError, match="no batch norm"):
        standing_statistics(layer, images, cfg)
    with pytest.raises(ValueError, match="per_batch"):
        InBatchGenerator(g, images, cfg, per_batch=65)


def test_transform_only_running_stats_leave_training_alone_and_change_only_the_explaining_statistics(tmp_path, toy_data):
    from cfx_lib.counterfactual import running_stats_frozen
    from cfx_lib.counterfactual.batchnorm import _batch_norms
    from cfx_lib.counterfactual.models import build_generator

    with pytest.raises(ValueError, match="g_running_stats must be one of"):
        CounterfactualConfig(g_running_stats="cycle")
    assert CounterfactualConfig().g_running_stats == "all"  # PyTorch's and the paper's by default
    # the context: training-mode outputs as always, running averages and batch counts untouched, restored after
    cfg = CounterfactualConfig(**TINY, iterations=4, device="cpu")
    g = build_generator(cfg, (3, 28, 28)).train()
    x, alpha, k = toy_data[:8], torch.rand(8), torch.randint(2, (8,))
    buffers = {name: b.clone() for name, b in g.named_buffers()}
    with torch.no_grad(), running_stats_frozen(g):
        inside = g(x, alpha, k)
    assert all(torch.equal(b, buffers[name]) for name, b in g.named_buffers())
    assert all(bn.track_running_stats for bn in _batch_norms(g))
    with torch.no_grad(), running_stats_frozen(g, frozen=False):
        outside = g(x, alpha, k)
    assert torch.equal(inside, outside)
    assert not all(torch.equal(b, buffers[name]) for name, b in g.named_buffers())
    # training: the same losses and weights draw for draw, other running averages
    det = _toy_detector()
    runs = {mode: train_counterfactual(cfg.replace(g_running_stats=mode), det, toy_data, progress=False)
            for mode in ("all", "transform")}
    history = {mode: [{k: v for k, v in row.items() if k != "seconds"} for row in run.history]
               for mode, run in runs.items()}
    assert history["all"] == history["transform"]
    assert all(torch.equal(a, b) for a, b in zip(runs["all"].generator.parameters(), runs["transform"].generator.parameters()))
    means = {mode: [bn.running_mean for bn in _batch_norms(run.generator)] for mode, run in runs.items()}
    counts = {mode: [int(bn.num_batches_tracked) for bn in _batch_norms(run.generator)] for mode, run in runs.items()}
    assert not all(torch.allclose(a, b) for a, b in zip(means["all"], means["transform"]))
    # four passes of G per iteration update the averages (D's transform, G's transform, cycle,
    # reconstruction), two with "transform"
    assert set(counts["all"]) == {16} and set(counts["transform"]) == {8}
    # part of what a checkpoint must share: a run of one mode does not resume the other's
    train_counterfactual(cfg.replace(iterations=2), det, toy_data, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train_counterfactual(cfg.replace(g_running_stats="transform"), det, toy_data, out_dir=tmp_path, progress=False)
