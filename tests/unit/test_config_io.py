import json
import os

import pytest
import torch

from cfx_lib.config import PROFILES, DetectorConfig, get_profile
from cfx_lib.io import atomic_path, load_torch, save_torch, write_json, write_metrics
from cfx_lib.notebook import normal_tag, run_id, start


def test_profiles_give_valid_detector_configs():
    for profile in PROFILES.values():
        for size in (28, 32):
            cfg = profile.detector_config("hsc", size)
            assert cfg.epochs >= 1 and all(0 < m < cfg.epochs for m in cfg.milestones)
    assert PROFILES["paper"].detector_config("bce", 28).milestones == (100, 150)


def test_unknown_profile_and_bad_configs():
    with pytest.raises(ValueError, match="unknown profile 'fast'; valid"):
        get_profile("fast")
    with pytest.raises(ValueError, match="unknown detector kind 'svm'"):
        DetectorConfig(kind="svm")
    with pytest.raises(ValueError, match="milestones"):
        DetectorConfig(milestones=(5, 2))
    with pytest.raises(ValueError, match="no detector schedule"):
        get_profile("quick").detector_config("bce", 64)
    with pytest.raises(ValueError, match=r"unknown detector option\(s\) \['shift'\]; valid: .*shift_augment"):
        get_profile("quick").detector_config("bce", 28, shift=4)  # a notebook's DETECTOR_OPTIONS with a typo
    assert get_profile("quick").detector_config("bce", 28, shift_augment=4).shift_augment == 4


def test_retraining_adds_at_most_the_profiles_cap():
    import dataclasses

    quick = PROFILES["quick"]
    assert quick.retrain_added(960) == 960  # fewer normal images than the cap: as many as there are
    assert quick.retrain_added(3006) == quick.retrain_max_added
    assert PROFILES["paper"].retrain_added(3006) == 3006  # no cap
    with pytest.raises(ValueError, match="retrain_max_added must be a positive int or None"):
        dataclasses.replace(quick, retrain_max_added=0)


def test_profile_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("CFX_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.delenv("CFX_PROFILE")
    assert get_profile().name == "quick"


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "m.json"
    write_json({"a": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["m.json"]


def test_checkpoints_load_with_weights_only(tmp_path):
    save_torch({"w": torch.ones(2), "n": 3}, tmp_path / "c.pt")
    assert load_torch(tmp_path / "c.pt")["n"] == 3


def test_metrics_must_be_numbers(tmp_path):
    write_metrics({"detector_auroc": 0.9, "n": 3, "t": torch.tensor(1.5)}, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"detector_auroc": 0.9, "n": 3.0, "t": 1.5}
    with pytest.raises(TypeError, match="'x' must be a number"):
        write_metrics({"x": "high"}, tmp_path / "bad.json")


def test_run_ids_are_stable_and_readable():
    assert run_id("signs", {}, 0, "bce") == "signs-default-bce-s0"
    assert normal_tag({"normal_digits": [1]}) == normal_tag({"normal_digits": [1]}) != normal_tag({"normal_digits": [2]})


def test_notebook_start_validates_parameters(tmp_path):
    with pytest.raises(ValueError, match="unknown DATASET 'cmnist'; valid"):
        start("01_data", {"PROFILE": "smoke"}, dataset="cmnist", normal={}, seed=0, output_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown DETECTOR 'svm'"):
        start("02_detector", {"PROFILE": "smoke"}, dataset="signs", normal={}, seed=0, detector="svm", output_dir=tmp_path)
    with pytest.raises(ValueError, match="normal colour 'pink'"):
        start("01_data", {"PROFILE": "smoke"}, dataset="colored_mnist", normal={"normal_colors": ["pink"]}, seed=0, output_dir=tmp_path)
    run = start("01_data", {"PROFILE": "smoke", "DATASET": "signs", "lower": 1}, dataset="signs", normal={}, seed=0, output_dir=tmp_path)
    assert json.loads((tmp_path / "params.json").read_text()) == {"DATASET": "signs", "PROFILE": "smoke"}
    env = json.loads((tmp_path / "environment.json").read_text())
    assert env["threads"] == torch.get_num_threads() >= 1 and env["torch"] == torch.__version__
    assert run.profile.name == "smoke"


def test_environment_records_the_thread_count():
    from cfx_lib.notebook import environment

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert environment()["threads"] == 1
    finally:
        torch.set_num_threads(before)
    assert environment()["threads"] == before


def test_environment_records_the_processor():
    from cfx_lib.notebook import cpu_name, environment

    env = environment()
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() != ""
    assert env["cpu"] == cpu_name() and isinstance(env["cpu"], str) and env["cpu"].strip()


def test_cpu_name_falls_back_without_proc_cpuinfo(monkeypatch):
    import platform
    from pathlib import Path

    from cfx_lib.notebook import cpu_name

    def unreadable(self, *args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(Path, "read_text", unreadable)
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_name() == "unknown"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert cpu_name() == "arm"


def test_profiles_give_counterfactual_configs_per_image_size():
    from cfx_lib.config import get_profile

    quick = get_profile("quick")
    cfg = quick.counterfactual_config(28, seed=3, weights={"con": 2.0})
    assert cfg.g_widths == (32, 64) and cfg.seed == 3 and cfg.weights.con == 2.0 and cfg.weights.rec == 10.0
    assert cfg.score_eps == "auto"  # resolved from the detector's normal scores before training
    # U-Net skips where they were measured (28×28), the plain encoder–decoder at 32×32 and in the paper's profile
    assert cfg.g_skip and not quick.counterfactual_config(32).g_skip
    assert not get_profile("paper").counterfactual_config(28).g_skip
    # cycle noise likewise: measured on colored_mnist, no gain on signs, off in the paper's objective
    assert cfg.cycle_noise == 0.1 and get_profile("smoke").counterfactual_config(28).cycle_noise == 0.1
    assert quick.counterfactual_config(32).cycle_noise == 0 == get_profile("paper").counterfactual_config(28).cycle_noise
    # 900 iterations where three whole seeds were measured (28×28, session 28); signs at 32×32 and smoke keep theirs
    assert cfg.iterations == 900 and quick.counterfactual_config(32).iterations == 600
    assert get_profile("smoke").counterfactual_config(28).iterations == 6
    import dataclasses

    per_size = dataclasses.replace(quick, counterfactual={28: {"iterations": 5}, 32: {"iterations": 7}})
    assert (per_size.counterfactual_config(28).iterations, per_size.counterfactual_config(32).iterations) == (5, 7)
    paper = get_profile("paper").counterfactual_config(32)
    assert paper.weights.rec == 100.0 and paper.score_noise == 0.0 and paper.g_widths == (64, 128)
    with pytest.raises(ValueError, match="unknown counterfactual option"):
        quick.counterfactual_config(28, epochs=3)


def test_oe_images_take_overrides_of_the_draw(tmp_path):
    from cfx_lib.notebook import oe_images

    run = start("02_detector", {"PROFILE": "smoke"}, dataset="colored_mnist", normal={}, seed=0, detector="bce",
                output_dir=tmp_path)
    plain = oe_images(run, "colored_mnist", "bce", 0, (3, 28, 28))
    marked = oe_images(run, "colored_mnist", "bce", 0, (3, 28, 28), oe={"marks": 0.5})
    assert plain.shape == marked.shape and 0.3 < (marked != plain).flatten(1).any(dim=1).float().mean() < 0.7
    assert torch.equal(oe_images(run, "colored_mnist", "bce", 0, (3, 28, 28), oe={}), plain)
    assert oe_images(run, "colored_mnist", "dsvdd", 0, (3, 28, 28), oe={"marks": 0.5}) is None
    with pytest.raises(ValueError, match=r"unknown OE options \['blobs'\]; valid: \['colors', 'marks', 'strokes'\]"):
        oe_images(run, "colored_mnist", "bce", 0, (3, 28, 28), oe={"blobs": 0.5})


def test_obtain_detector_trains_on_the_oe_it_is_given(tmp_path, monkeypatch):
    import cfx_lib.detectors
    from cfx_lib.data import load_dataset
    from cfx_lib.notebook import obtain_detector, oe_images

    seen = []

    class Trained(Exception):
        pass

    def fake_train(cfg, normal, outliers, **kwargs):
        seen.append((cfg, outliers))
        raise Trained

    monkeypatch.setattr(cfx_lib.detectors, "train_detector", fake_train)
    run = start("03_counterfactual", {"PROFILE": "smoke"}, dataset="colored_mnist", normal={}, seed=0, detector="bce",
                output_dir=tmp_path)
    train = load_dataset("colored_mnist", "train", seed=0, **run.profile.dataset_kwargs("colored_mnist", "train"))
    with pytest.raises(Trained):
        obtain_detector(run, "colored_mnist", None, "bce", 0, train, options={"shift_augment": 2}, oe={"marks": 0.5})
    cfg, outliers = seen[0]
    assert cfg.shift_augment == 2
    assert torch.equal(outliers, oe_images(run, "colored_mnist", "bce", 0, train.image_shape, oe={"marks": 0.5}))
    assert not torch.equal(outliers, oe_images(run, "colored_mnist", "bce", 0, train.image_shape))
    with pytest.raises(ValueError, match="cannot change the checkpoint"):
        obtain_detector(run, "colored_mnist", None, "bce", 0, train, checkpoint=tmp_path / "d.pt", oe={"marks": 0.5})
