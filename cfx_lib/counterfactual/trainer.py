"""Training of the counterfactual generator G with its discriminator D and concept classifier R.

One iteration (``d_steps`` discriminator updates, then one update of G and R together), with
s = φ(x), α ~ U[0, 1], k ~ U{0..K−1}, x_t = G(x, α, k), x_cyc = G(x_t, s, k), x_rec = G(x, s, k):

- D: hinge(D(x, s), D(x_t, α));
- G+R: λ_gan·(−D(x_t, α)) + λ_score·(BCE(φ(x_t), α) + BCE(φ(x_cyc), s))
  + λ_rec·(‖x − x_rec‖₁ + ‖x − x_cyc‖₁)   (the cycle term weighed apart when ``weights.cycle`` is set)
  + λ_con·(CE(R(x, x_t), k) + CE(R(x_t, x_cyc), k) + CE(R(x, x_cyc), 0) + CE(R(x, x_rec), 0))
  [+ λ_distinct·overlap(x_t − x, G(x, α, k′) − x) with k′ ≠ k: our addition, off by default]
  [+ λ_proximity·‖x − x_t‖₁: our addition, off by default]
  [+ λ_edit_rank·edit_rank(x_t − x): our addition, off by default]
  [+ λ_faint·faint_shortfall(contrast(x_t), floor): our addition, off by default; the floor is the
  contrast of the faintest 1 in 100 real training images; with ``faint_focus="descent"`` (our
  option) a mean weighted by the score descent (s − α)₊ asked of each counterfactual].
With ``score_warmup`` > 0 (our option, off by default) λ_score is 0 for the first ``score_warmup``
generator iterations.

With ``score_space="logit"`` α is drawn uniformly in logit instead and the two BCE terms become
Huber distances between logits (:func:`~cfx_lib.counterfactual.losses.score_loss`).
With ``alpha_range="below_score"`` (our option, off by default) α is drawn between 0 and the image's
own score s, so G is only asked to make images more normal.
With ``g_ema`` > 0 a moving average of G's weights (our option, off by default) explains instead of
the last weights. With ``g_running_stats="transform"`` (our option, off by default) only the passes
G(x, α, k) update G's batch-norm running averages, not the cycle and reconstruction passes.

The detector φ is frozen. Checkpoints (``cf_last.pt``) are written atomically every
``checkpoint_every`` iterations and training resumes from them; the loss history goes to
``losses.csv``, sample grids (anomaly | its K counterfactuals at α = 0) to ``samples/``. Notebook 03
bundles the detector and the trained generator into ``explainer.pt`` for :func:`load_explainer`;
:func:`load_training_checkpoint` reads G, D and R back from ``cf_last.pt``, and :func:`warm_start`
copies one so that training continues under another detector (a diagnostic).
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data.transforms import channel_gain, perturb
from ..detectors.detector import BaseDetector
from ..detectors.trainer import TrainingDiverged
from ..device import resolve_device, seed_everything
from ..io import load_torch, resumable_state, save_torch, write_text
from ..metrics.visibility import contrast, faint_threshold
from . import losses as L
from .batchnorm import running_stats_frozen
from .config import AUTO, CounterfactualConfig
from .explain import generate
from .models import ConceptClassifier, Discriminator, Generator, build_concept_classifier, build_discriminator, build_generator

LAST = "cf_last.pt"  # full training state, for resume
LOSS_COLUMNS = ("iteration", "d_loss", "g_gan", "score", "score_excess", "rec", "cycle", "con", "distinct", "proximity", "edit_rank", "faint", "r_acc", "total", "seconds")


@dataclass
class CounterfactualModels:
    """G, D and R for one image shape and configuration, and the moving average of G when the
    configuration's ``g_ema`` is on (set by :func:`train_counterfactual`)."""

    generator: Generator
    discriminator: Discriminator
    concept_classifier: ConceptClassifier
    generator_ema: Generator | None = None

    @property
    def explaining_generator(self) -> Generator:
        """The generator that explains: the moving average of G when there is one, else G."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @classmethod
    def build(cls, cfg: CounterfactualConfig, image_shape: tuple[int, int, int]) -> "CounterfactualModels":
        return cls(build_generator(cfg, image_shape), build_discriminator(cfg, image_shape),
                   build_concept_classifier(cfg, image_shape))

    def modules(self) -> list[torch.nn.Module]:
        """G, D, R and the moving average of G when there is one."""
        return [m for m in (self.generator, self.discriminator, self.concept_classifier, self.generator_ema)
                if m is not None]

    def to(self, device: torch.device) -> "CounterfactualModels":
        for m in self.modules():
            m.to(device)
        return self


@dataclass
class CounterfactualTrainResult:
    """What :func:`train_counterfactual` returns."""

    models: CounterfactualModels
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    iterations: int = 0
    resumed_iteration: int = 0
    sample_paths: list[Path] = field(default_factory=list)

    @property
    def generator(self) -> Generator:
        """The generator to explain with (:attr:`CounterfactualModels.explaining_generator`)."""
        return self.models.explaining_generator

    @property
    def iters_per_second(self) -> float:
        return self.iterations / self.train_seconds if self.train_seconds > 0 else float("nan")


def _fingerprint(images: torch.Tensor, detector: BaseDetector) -> dict[str, Any]:
    h = hashlib.sha1()
    for v in detector.state_dict().values():
        h.update(v.detach().cpu().float().numpy().tobytes())
    return {"n_images": len(images), "images_sum": round(float(images.double().sum()), 3), "detector": h.hexdigest()[:16]}


def counterfactual_grid(generator: Generator, anomalies: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Rows of (anomaly, its K counterfactuals at ``alpha``) as one batch (N·(K+1), C, H, W)."""
    cfs = [generate(generator, anomalies, alpha, k) for k in range(generator.n_concepts)]
    return torch.stack([anomalies.cpu(), *cfs], dim=1).flatten(0, 1)


def _save_samples(models: CounterfactualModels, anomalies: torch.Tensor, path: Path, iteration: int) -> Path:
    import matplotlib.pyplot as plt

    from ..viz.plots import image_grid, save_figure

    k = models.generator.n_concepts
    fig = image_grid(counterfactual_grid(models.explaining_generator, anomalies), nrow=k + 1,
                     title=f"iteration {iteration}: anomaly | concept 1..{k} at α = 0", scale=1.6)
    save_figure(fig, path)
    plt.close(fig)  # else every grid of a long run stays open (and a notebook shows them all at the cell's end)
    return path


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    lines = [",".join(LOSS_COLUMNS)]
    # rows resumed from a checkpoint written before a column existed read it as nan
    lines += [",".join(f"{row.get(c, math.nan):.6g}" for c in LOSS_COLUMNS) for row in history]
    write_text("\n".join(lines) + "\n", path)


def _state(models: CounterfactualModels, opt_g, opt_d, cfg: CounterfactualConfig, iteration: int, history: list,
           gen: torch.Generator, elapsed: float, fingerprint: dict, perm: torch.Tensor, cursor: int,
           ema: AveragedModel | None, warm_started: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **({"generator_ema": ema.state_dict()} if ema is not None else {}),
        **({"warm_start": warm_started} if warm_started is not None else {}),
        "perm": perm,
        "cursor": cursor,
        "format": "cfx-cf-training/1",
        "generator": models.generator.state_dict(),
        "discriminator": models.discriminator.state_dict(),
        "concept_classifier": models.concept_classifier.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "config": cfg.to_dict(),
        "image_shape": list(models.generator.image_shape),
        "iteration": iteration,
        "history": history,
        "fingerprint": fingerprint,
        "torch_rng": torch.get_rng_state(),
        "generator_rng": gen.get_state(),
        "elapsed": elapsed,
    }


EXECUTION_SETTINGS = ("iterations", "device", "channels_last", "precision")  # a checkpoint resumes under any
DETECTOR_SETTINGS = ("score_eps",)  # resolved from the detector (calibrate_score_eps): a warm start may change them


def lr_factor(cfg: CounterfactualConfig, iteration: int) -> float:
    """The share of the base learning rates used for the (0-based) generator iteration ``iteration``:
    1 until the last ``cfg.lr_decay`` share of ``cfg.iterations``, then falling linearly, to
    1 / (that many iterations) for the last one."""
    span = cfg.lr_decay * cfg.iterations
    return 1.0 if span <= 0 else min(1.0, (cfg.iterations - iteration) / span)


def _resumable(cfg: CounterfactualConfig, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a checkpoint must share with ``cfg`` to be resumed (all but the execution settings and ``ignore``)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_SETTINGS + ignore}


def _read_training_state(path: str | Path) -> dict[str, Any]:
    """The raw state of a ``cf_last.pt``, with clear errors for a missing file or another kind of file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no counterfactual training checkpoint at {path} (train_counterfactual writes "
                                f"{LAST} into its out_dir)")
    state = load_torch(path)
    if not isinstance(state, dict) or state.get("format") != "cfx-cf-training/1":
        raise ValueError(f"{path} is not a counterfactual training checkpoint (format cfx-cf-training/1)")
    return state


def load_training_checkpoint(path: str | Path) -> tuple[CounterfactualModels, CounterfactualConfig, dict[str, Any]]:
    """G, D and R (and G's moving average, when trained with one) of a training checkpoint
    (``cf_last.pt`` of :func:`train_counterfactual`), in eval mode on the CPU, with the configuration it
    was trained under and the raw state (``iteration``, ``history``, ``fingerprint``, ...). For
    diagnostics that read a generator during or after training; notebook 03's ``explainer.pt``
    (:func:`~cfx_lib.counterfactual.load_explainer`) is the bundle to explain with."""
    state = _read_training_state(path)
    cfg = CounterfactualConfig.from_dict(state["config"])
    models = CounterfactualModels.build(cfg, tuple(state["image_shape"]))
    models.generator.load_state_dict(state["generator"])
    models.discriminator.load_state_dict(state["discriminator"])
    models.concept_classifier.load_state_dict(state["concept_classifier"])
    if "generator_ema" in state:  # AveragedModel's state: the averaged module's under "module.", and n_averaged
        models.generator_ema = build_generator(cfg, tuple(state["image_shape"]))
        models.generator_ema.load_state_dict({k.removeprefix("module."): v for k, v in state["generator_ema"].items()
                                              if k.startswith("module.")})
    for m in models.modules():
        m.eval()
    return models, cfg, state


def warm_start(source: str | Path, out_dir: str | Path, cfg: CounterfactualConfig, detector: BaseDetector,
               images: torch.Tensor) -> int:
    """Prepare ``out_dir`` so that :func:`train_counterfactual` (``cfg``, ``detector``, ``images``,
    ``out_dir``) continues the training of another run's checkpoint ``source`` under ``detector``: G,
    D, R, their optimisers, random state and iteration count are copied into ``out_dir/cf_last.pt``,
    bound to the new detector and data (a diagnostic: does a solution G found for one detector
    survive training under another?). ``cfg`` must be the configuration ``source`` was trained under
    apart from the detector-bound settings (:data:`DETECTOR_SETTINGS`: the resolved ``score_eps``,
    see :func:`calibrate_score_eps`) and the execution settings, and ``cfg.iterations`` (what
    ``train_counterfactual`` will be asked for) must be at least the checkpoint's. The copy records where it came from under ``warm_start``
    (kept by later checkpoints). Returns the checkpoint's iteration.

    Raises:
        FileExistsError: ``out_dir`` already holds a checkpoint.
        FileNotFoundError: there is no ``source``.
        ValueError: ``source`` is not a training checkpoint, the configurations or image shapes
            differ, ``cfg.iterations`` is below the checkpoint's, or ``cfg.score_eps`` is unresolved.
    """
    cfg.check_resolved()
    out = Path(out_dir)
    if (out / LAST).exists():
        raise FileExistsError(f"{out / LAST} exists: warm-start into an empty folder (or resume that run instead)")
    state = _read_training_state(source)
    saved = CounterfactualConfig.from_dict(state["config"])
    wanted = _resumable(cfg, DETECTOR_SETTINGS)
    differ = sorted(k for k, v in _resumable(saved, DETECTOR_SETTINGS).items() if wanted[k] != v)
    if differ:
        raise ValueError(f"{source} was trained under another configuration ({', '.join(differ)} differ); a warm "
                         f"start may change only {', '.join(DETECTOR_SETTINGS)} and the execution settings")
    if tuple(state["image_shape"]) != tuple(detector.image_shape):
        raise ValueError(f"{source} was trained on images {tuple(state['image_shape'])}, the detector reads "
                         f"{tuple(detector.image_shape)}")
    if cfg.iterations < state["iteration"]:
        raise ValueError(f"{source} has trained {state['iteration']} iterations: ask for at least as many "
                         f"(iterations={cfg.iterations})")
    previous = {"source": str(source), "iteration": int(state["iteration"]), "fingerprint": state["fingerprint"],
                "score_eps": saved.score_eps}
    state["warm_start"] = previous if "warm_start" not in state else {**previous, "before": state["warm_start"]}
    state["config"] = cfg.replace(iterations=int(state["iteration"])).to_dict()
    state["fingerprint"] = _fingerprint(images, detector)
    out.mkdir(parents=True, exist_ok=True)
    save_torch(state, out / LAST)
    return int(state["iteration"])


def _in_precision(fn: Callable[..., torch.Tensor], precision: str, device: torch.device) -> Callable[..., torch.Tensor]:
    """``fn`` run under ``torch.autocast`` in ``precision`` (``fn`` itself for float32), its output
    handed back in float32 so that the losses stay float32 (see ``CounterfactualConfig.precision``)."""
    if precision == "float32":
        return fn
    dtype = getattr(torch, precision)

    def run(*args: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype):
            return fn(*args).float()

    return run


def calibrate_score_eps(cfg: CounterfactualConfig, detector: BaseDetector, normal_images: torch.Tensor,
                        device: str | torch.device | None = None) -> CounterfactualConfig:
    """Resolve ``cfg.score_eps="auto"`` from φ's scores of ``normal_images`` (the normal training
    images): the clip becomes their ``cfg.score_eps_quantile`` quantile (the median by default), so that
    α = 0 asks for a score as low as a typical normal image's (see :class:`CounterfactualConfig`).
    Returns ``cfg`` unchanged when it is not ``"auto"``."""
    if cfg.score_eps != AUTO:
        return cfg
    if normal_images.ndim != 4 or len(normal_images) == 0:
        raise ValueError(f"score_eps='auto' needs a batch (N, C, H, W) of normal training images, got {tuple(normal_images.shape)}")
    return cfg.with_normal_scores(detector.score_images(normal_images, device=device))


def train_counterfactual(
    cfg: CounterfactualConfig, detector: BaseDetector, images: torch.Tensor, out_dir: str | Path | None = None,
    sample_images: torch.Tensor | None = None, progress: bool = True, resume: bool = True,
    on_mismatch: str = "error", callback: Callable[[int, dict[str, float]], None] | None = None,
) -> CounterfactualTrainResult:
    """Train G, D and R to explain ``detector``.

    Args:
        cfg: architecture, loss weights and schedule (:class:`CounterfactualConfig`).
        detector: the frozen detector φ (images in [0, 1] → scores in [0, 1]).
        images: training images (N, C, H, W) in [0, 1]; use the detector's training data,
            normal and anomalous/OE alike, so that G sees the whole score range.
        out_dir: where ``cf_last.pt``, ``losses.csv`` and ``samples/`` go; None: in memory.
        sample_images: anomalies shown in the periodic sample grids (default: the
            ``cfg.n_samples`` training images φ scores highest).
        progress: show a tqdm bar.
        resume: continue from ``out_dir/cf_last.pt`` when it was written for the same
            configuration (only ``iterations`` may grow), data and detector.
        on_mismatch: what to do with a ``cf_last.pt`` written for another configuration, data or
            detector: ``"error"`` (a ValueError) or ``"restart"`` (move it to ``cf_last.stale.pt``,
            warn and train anew; the notebooks' choice, so that a rerun after a changed profile
            retrains instead of failing).
        callback: called as ``callback(iteration, row)`` after each logged iteration.

    Raises:
        TrainingDiverged: a loss became NaN/inf; the last good checkpoint stays on disk.
    """
    from tqdm.auto import tqdm

    cfg.check_resolved()
    if cfg.score_warmup >= cfg.iterations:
        warnings.warn(f"score_warmup={cfg.score_warmup} covers all {cfg.iterations} iterations: the score loss is "
                      "never weighed, so G is not trained toward the target scores α", stacklevel=2)
    first_step_share = cfg.g_ema ** (cfg.iterations - 1)  # the average starts there, without bias correction
    if cfg.g_ema > 0 and first_step_share > 0.01:
        warnings.warn(f"g_ema={cfg.g_ema} keeps {first_step_share:.0%} of the generator's first-step "
                      f"weights in its average after {cfg.iterations} iterations, so the explaining generator is "
                      "partly untrained; choose a decay whose half-life (ln 0.5 / ln decay iterations) is well below "
                      "the iteration count", stacklevel=2)
    shape = tuple(detector.image_shape)
    if images.ndim != 4 or tuple(images.shape[1:]) != shape:
        raise ValueError(f"training images must be (N, {', '.join(map(str, shape))}) like the detector's input, "
                         f"got {tuple(images.shape)}")
    if len(images) < cfg.batch_size:
        raise ValueError(f"need at least batch_size={cfg.batch_size} training images, got {len(images)}")
    device = resolve_device(cfg.device)
    gen = seed_everything(cfg.seed)
    detector = detector.to(device).eval()
    for p in detector.parameters():
        p.requires_grad_(False)
    models = CounterfactualModels.build(cfg, shape).to(device)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    for m in models.modules():
        m.to(memory_format=layout)
    G, D, R = models.generator, models.discriminator, models.concept_classifier
    ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(cfg.g_ema), use_buffers=True) if cfg.g_ema > 0 else None
    if ema is not None:
        models.generator_ema = ema.module
    opt_g = torch.optim.Adam([*G.parameters(), *R.parameters()], lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    fingerprint = _fingerprint(images, detector)
    floor = faint_threshold(images)  # the erasure guard's floor (weights.faint), logged whether or not weighed
    if cfg.weights.faint > 0 and floor <= 0:
        raise ValueError("weights.faint guards against erased counterfactuals by the contrast of the faintest real "
                         "training images, but 1 in 100 of these images is uniform (contrast 0): turn the term off")
    scores_all = detector.score_images(images, device=device)
    if sample_images is None:
        sample_images = images[scores_all.argsort(descending=True)[: cfg.n_samples]]
    history: list[dict[str, float]] = []
    start, elapsed = 0, 0.0
    out = Path(out_dir) if out_dir is not None else None
    sample_paths: list[Path] = []
    warm_started: dict[str, Any] | None = None  # where a checkpoint of another detector came from (warm_start)

    current = _resumable(cfg)

    def mismatch(state: dict[str, Any]) -> str | None:
        try:  # through from_dict, so that options added since the checkpoint read as their defaults
            saved = _resumable(CounterfactualConfig.from_dict(state["config"]))
        except ValueError:  # fields this version does not know
            saved = None
        if saved == current and state["fingerprint"] == fingerprint and state["iteration"] <= cfg.iterations:
            return None
        return "was written for another configuration, dataset or detector (only more iterations may be asked for)"

    state = resumable_state(out / LAST if out is not None else None, resume, on_mismatch, mismatch)
    if state is not None:
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        R.load_state_dict(state["concept_classifier"])
        if ema is not None:
            ema.load_state_dict(state["generator_ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["torch_rng"])
        gen.set_state(state["generator_rng"])
        history, start, elapsed = list(state["history"]), int(state["iteration"]), float(state["elapsed"])
        warm_started = state.get("warm_start")
        if (out / "samples").is_dir():
            sample_paths = sorted((out / "samples").glob("iter_*.png"))

    run_g, run_d, run_r, phi = (_in_precision(fn, cfg.precision, device)
                                for fn in (G, D, R, detector.score_logits))
    n, bs, K = len(images), cfg.batch_size, cfg.n_concepts
    w = cfg.weights
    space = dict(space=cfg.score_space, eps=cfg.score_eps)
    below = cfg.alpha_range == "below_score"
    if start > 0:  # the data order continues where the checkpoint left it
        perm, cursor = state["perm"], int(state["cursor"])
    else:
        perm, cursor = torch.randperm(n, generator=gen), 0

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal perm, cursor
        if cursor + bs > n:
            perm, cursor = torch.randperm(n, generator=gen), 0
        idx = perm[cursor : cursor + bs]
        cursor += bs
        return images[idx].to(device).contiguous(memory_format=layout), scores_all[idx].to(device)

    def check(name: str, value: torch.Tensor, iteration: int) -> None:
        if not torch.isfinite(value):
            where = f"; the last good checkpoint is {out / LAST}" if out is not None and (out / LAST).exists() else ""
            raise TrainingDiverged(f"counterfactual training: {name} became {value.item()} at iteration "
                                   f"{iteration}{where}. Try lower learning rates or loss weights.")

    def r(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """R on the pair (a, b), each image given its own channel gains when ``concept_jitter`` > 0
        and noised when ``concept_noise`` > 0 (no random draw when both are off)."""
        a, b = (channel_gain(v, cfg.concept_jitter, gen) for v in (a, b))
        return run_r(perturb(a, cfg.concept_noise, 0, gen), perturb(b, cfg.concept_noise, 0, gen))

    def faint_weights(s: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor | None:
        """The erasure guard's weight per counterfactual: None (a plain mean) for ``faint_focus="all"``,
        the score descent (s − α)₊ asked of it for ``"descent"``."""
        return (s - alpha).clamp(min=0) if cfg.faint_focus == "descent" else None

    log_every = max(1, min(25, cfg.checkpoint_every))
    running: dict[str, float] = {}
    counted = 0
    G.train(), D.train(), R.train()
    bar = tqdm(range(start, cfg.iterations), desc="counterfactual G", disable=not progress, initial=start,
               total=cfg.iterations)
    t_last = time.perf_counter()
    for it in bar:
        if cfg.lr_decay > 0:
            factor = lr_factor(cfg, it)
            for opt, base in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = base * factor
        # --- discriminator -----------------------------------------------------------
        for _ in range(cfg.d_steps):
            x, s = next_batch()
            alpha = L.sample_alphas(bs, gen, **space, upper=s if below else None).to(device)
            k = torch.randint(K, (bs,), generator=gen).to(device)
            with torch.no_grad():
                x_t = run_g(x, alpha, k)
            d_loss = L.d_hinge(run_d(x, s), run_d(x_t, alpha))
            check("the discriminator loss", d_loss, it + 1)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        # --- generator and concept classifier -----------------------------------------
        x, s = next_batch()
        alpha = L.sample_alphas(bs, gen, **space, upper=s if below else None).to(device)
        k = torch.randint(K, (bs,), generator=gen).to(device)
        x_t = run_g(x, alpha, k)
        with running_stats_frozen(G, cfg.g_running_stats == "transform"):  # eval-mode statistics of transforms only
            x_cyc = run_g(perturb(x_t, cfg.cycle_noise, 0, gen), s, k)  # x_t itself unless cycle_noise > 0
            x_rec = run_g(x, s, k)
        g_gan = L.g_hinge(run_d(x_t, alpha))
        phi_t = phi(perturb(x_t, gen=gen, **cfg.score_reading))
        phi_cyc = phi(perturb(x_cyc, gen=gen, **cfg.score_reading))
        score = L.score_loss(phi_t, alpha, **space) + L.score_loss(phi_cyc, s, **space)
        own, cycle = L.l1(x, x_rec), L.l1(x, x_cyc)
        rec = own + cycle
        logits_t = r(x, x_t)
        con = (L.concept_loss(logits_t, k) + L.concept_loss(r(x_t, x_cyc), k)
               + L.concept_loss(r(x, x_cyc), None) + L.concept_loss(r(x, x_rec), None))
        proximity = L.l1(x, x_t)
        # off (λ_score 0, or within score_warmup): logged only, and no backward pass through φ
        weighed_score = w.score * score if w.score > 0 and it >= cfg.score_warmup else 0.0
        if w.cycle is None:  # the paper's one weight for both L1 terms (kept as one product, bit for bit)
            weighed_rec = w.rec * rec
        else:
            weighed_rec = w.rec * own + w.cycle * cycle
        total = w.gan * g_gan + weighed_score + weighed_rec + w.con * con + w.proximity * proximity
        priors = {}  # our optional terms: logged always, weighed only when on
        for name, term in (("edit_rank", lambda: L.edit_rank(x_t - x)),
                           ("faint", lambda: L.faint_shortfall(contrast(x_t), floor, faint_weights(s, alpha)))):
            weight = getattr(w, name)
            with torch.set_grad_enabled(weight > 0):  # off: logged only, the paper's gradients stay exact
                priors[name] = term()
            if weight > 0:
                total = total + weight * priors[name]
        distinct = torch.zeros((), device=device)
        if w.distinct > 0 and K > 1:  # drawn only when on, so the paper's objective keeps its random stream
            k_other = (k + torch.randint(1, K, (bs,), generator=gen).to(device)) % K
            distinct = L.edit_overlap(x_t - x, run_g(x, alpha, k_other) - x)
            total = total + w.distinct * distinct
        check("the generator loss", total, it + 1)
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        opt_g.step()
        if ema is not None:
            ema.update_parameters(G)

        with torch.no_grad():
            row = {"d_loss": d_loss.item(), "g_gan": g_gan.item(), "score": score.item(),
                   "score_excess": (L.score_loss_excess(phi_t, alpha, **space)
                                    + L.score_loss_excess(phi_cyc, s, **space)).item(),
                   "rec": rec.item(), "cycle": cycle.item(), "con": con.item(), "distinct": distinct.item(),
                   "proximity": proximity.item(), **{name: value.item() for name, value in priors.items()},
                   "r_acc": (logits_t.argmax(1) == k).float().mean().item(), "total": total.item()}
        for key, value in row.items():
            running[key] = running.get(key, 0.0) + value
        counted += 1
        iteration = it + 1
        elapsed += time.perf_counter() - t_last
        if iteration % log_every == 0 or iteration == cfg.iterations:
            avg = {"iteration": iteration, **{key: v / counted for key, v in running.items()}, "seconds": elapsed}
            history.append(avg)
            running, counted = {}, 0
            bar.set_postfix(score=f"{avg['score_excess']:.3f}", rec=f"{avg['rec']:.3f}", r_acc=f"{avg['r_acc']:.2f}")
            if callback is not None:
                callback(iteration, avg)
        if out is not None and (iteration % cfg.sample_every == 0 or iteration == cfg.iterations):
            sample_paths.append(_save_samples(models, sample_images, out / "samples" / f"iter_{iteration:06d}.png", iteration))
        if out is not None and (iteration % cfg.checkpoint_every == 0 or iteration == cfg.iterations):
            save_torch(_state(models, opt_g, opt_d, cfg, iteration, history, gen, elapsed, fingerprint, perm, cursor, ema,
                              warm_started), out / LAST)
            _write_history(history, out / "losses.csv")
        t_last = time.perf_counter()  # do not count checkpoints and sample grids as training time

    for m in models.modules():
        m.eval()
    if history and not all(math.isfinite(v) for v in history[-1].values()):  # pragma: no cover - guarded above
        raise TrainingDiverged("final losses are not finite")
    return CounterfactualTrainResult(models, history, elapsed, cfg.iterations, start, sample_paths)
