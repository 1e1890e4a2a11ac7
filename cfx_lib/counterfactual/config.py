"""The configuration of counterfactual training: architecture, losses and schedule in one place.

Defaults are the paper-scale ones (meant for a GPU); the ``quick`` and ``smoke`` profiles
override widths, batch size and iterations per image size (:mod:`cfx_lib.config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .losses import DEFAULT_SCORE_EPS, SCORE_SPACES
from .models import G_NORMS, R_INPUTS

#: ``CounterfactualConfig.alpha_range`` values: the paper's α over the whole range, or only up to the
#: image's own score.
ALPHA_RANGES = ("full", "below_score")
FAINT_FOCUSES = ("all", "descent")
#: which training passes of G update its batch norms' running averages (``CounterfactualConfig.g_running_stats``)
G_RUNNING_STATS = ("all", "transform")
#: ``CounterfactualConfig.precision`` values: of the training forward passes; losses stay float32.
PRECISIONS = ("float32", "bfloat16")
#: ``score_eps`` value that takes the clip from the detector's scores of normal training images.
AUTO = "auto"
#: ``score_eps="auto"`` resolves to at least ``DEFAULT_SCORE_EPS`` and at most this: a detector whose
#: typical normal image scores higher than this is barely a detector, and α = 0 should still ask for
#: a clearly low score.
MAX_AUTO_SCORE_EPS = 0.25


def _is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (a bool is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class LossWeights:
    """The λ's of the generator objective (defaults follow DISSECT: λ_gan 1, λ_rec 100, λ_φ 1,
    λ_con between 2 and 10).

    ``rec`` weighs both L1 terms, ‖x − G(x, s, k)‖₁ and ‖x − G(G(x, α, k), s, k)‖₁.

    ``distinct`` is **our addition, not in the paper** (0 by default, the paper's objective): it
    weighs :func:`~cfx_lib.counterfactual.losses.edit_overlap` between the edits G(x, α, k) − x and
    G(x, α, k′) − x of one image under two different concepts, so that the K counterfactuals of an
    anomaly are different changes, not the same change told apart by R through details. It costs
    one more generator pass per iteration. On ``colored_mnist`` (BCE-OE, λ 5) it made the edits
    different but not one factor each, and the figures worse (docs/experiments.md, "The two concepts make the
    same edit"; on a detector trained on shifted images too, "Session 20"; on the ideal diagnostic
    detector the two concepts took different routes for one anomaly but swapped them with its
    colour, "Session 22"), so no profile turns it on.

    ``proximity`` is **our addition, not in the paper** (0 by default): it weighs ‖x − G(x, α, k)‖₁,
    the size of the edit itself, the proximity term of counterfactual explanations outside GANs
    (Wachter et al., "Counterfactual Explanations without Opening the Black Box", 2017). The
    paper's L1 terms ask only that G leave an image alone at its own score (x_rec) and undo its edit
    (x_cyc); neither asks the edit toward α to be small. On ``colored_mnist`` (BCE-OE, λ 3, five
    generator seeds) it made the figures no better (oracle-normal 0.541 ± 0.221 against 0.587 ±
    0.141; docs/experiments.md, "Session 16"), so no profile turns it on. Whether or not it is
    weighed, the trainer logs the edit size as ``proximity``.

    ``edit_rank`` is **our addition, not in the paper** (0 by default): it weighs
    :func:`~cfx_lib.counterfactual.losses.edit_rank` of the edit G(x, α, k) − x, its distance from
    one spatial pattern along one colour direction. A recolouring and a shape redrawn in its own
    colour cost nothing; an edit of both, or an output in mixed shades, does. It is a prior for
    edits of one factor, which nothing in the paper's objective prefers (docs/experiments.md,
    "Session 30"). Whether or not it is weighed, the trainer logs it as ``edit_rank``.

    ``cycle`` is **our option, not the paper's** (``None`` by default: the cycle term takes ``rec``,
    the paper's one shared weight): a weight of ‖x − G(G(x, α, k), s, k)‖₁ of its own, while ``rec``
    keeps weighing ‖x − G(x, s, k)‖₁. The cycle asks G to undo its edit. A recolouring is undone
    from a few bits (which colour it was), a digit redrawn as another must hide the whole old shape
    in the new one, so the cycle prices the two routes to normal very differently. On ``colored_mnist``
    (BCE-OE, φ read through rotations, 900 iterations) a lighter cycle opened no digit route but φ's
    shortcuts: at 2, a multicoloured blob at the top (oracle-normal 0.453 → 0.037); at 5, on
    detectors whose OE carries marks, green-teal recolourings on one whole seed of three (−0.024 ±
    0.124 over three; docs/experiments.md, "Session 49"). So no profile sets it.

    ``faint`` is **our addition, not in the paper** (0 by default): an erasure guard. It weighs
    :func:`~cfx_lib.counterfactual.losses.faint_shortfall` of the counterfactuals G(x, α, k), how
    far their contrast falls below that of the faintest real training images (the
    :data:`~cfx_lib.metrics.visibility.FAINT_QUANTILE` quantile, the threshold of the faint metric).
    Erasing an anomaly lowers many detectors' scores and an oracle may read the empty image as
    normal; ``edit_rank`` does not object either, since an erasure is a rank-1 edit
    (docs/experiments.md, "Session 33"). Whether or not it is weighed, the trainer logs it as
    ``faint``.
    """

    gan: float = 1.0
    score: float = 1.0
    rec: float = 100.0
    con: float = 5.0
    distinct: float = 0.0
    proximity: float = 0.0
    edit_rank: float = 0.0
    faint: float = 0.0
    cycle: float | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "cycle" and value is None:  # the paper's shared weight, ``rec``
                continue
            if not _is_number(value) or value < 0:
                raise ValueError(f"loss weight {f.name!r} must be a non-negative number, got {value!r}")


@dataclass(frozen=True)
class CounterfactualConfig:
    """How the counterfactual generator is built and trained.

    Attributes:
        n_concepts: K, the number of concepts (counterfactuals per anomaly).
        g_widths: channels of the generator's encoder stages; each stage halves the resolution
            and the decoder mirrors it.
        g_res_blocks: conditional residual blocks at the lowest resolution.
        g_residual: G edits its input in tanh space instead of generating from scratch (see
            :class:`~cfx_lib.counterfactual.models.Generator`).
        g_skip: U-Net skips from the generator's encoder to its decoder (**our option, not the
            paper's**; see :class:`~cfx_lib.counterfactual.models.Generator`).
        g_mask: G paints through a gate per pixel, G(x, α, k) = m ⊙ c + (1 − m) ⊙ x, and keeps
            the image exactly where the gate is closed (**our option, not the paper's**; the
            attention mask of GANimation; see :class:`~cfx_lib.counterfactual.models.Generator`).
            On ``colored_mnist`` (BCE-OE, four pairs of whole seed and generator seed) one concept
            became a recolouring with less stroke damage, but the other broke the strokes or became
            the same recolouring; oracle-normal and purity rose on two pairs and fell on two
            (purity +0.019 ± 0.215), with no digit concept (docs/experiments.md, "Session 41"), so
            no profile turns it on.
        g_norm: the generator's normalisation: ``"batch"`` (the default, the paper's conditional
            batch norm) or ``"layer"`` (**our option, not the paper's**): the same conditional
            scales and shifts on features normalised per image (see
            :class:`~cfx_lib.counterfactual.models.Generator`), so that G computes the same function
            in training and when it explains. Why: with batch norm the α = 0 counterfactuals that
            explain (eval mode, running averages) and the ones G trained on (batch statistics)
            differed widely; under HSC-OE with the four cue removers 0.59 of the former were faint
            and 0.06 of the latter (docs/experiments.md, "Session 45"). Over four paired runs
            (BCE-OE, HSC-OE) it lowered the oracle-normal share on three (0.725 ± 0.160 → 0.557 ±
            0.184) and left purity where it was, so no profile turns it on.
        g_running_stats: which training passes of G update its batch norms' running averages, the
            statistics G normalises by when it explains (eval mode). ``"all"`` (the default, PyTorch's
            and the paper's): every pass, the transform G(x, α, k) and also the cycle G(x_t, s, k) and
            the reconstruction G(x, s, k). ``"transform"`` (**our option, not the paper's**): only the
            transform passes (the discriminator step's and the generator step's), so the averages
            describe the batches the counterfactuals were drawn in. Training itself is unchanged
            (training mode normalises by each batch's own statistics, so losses and weights are the
            same draw for draw); only the explaining generator differs. Why: the explaining G and the
            G the losses saw differ (docs/experiments.md, "Session 45"), partly because the averages
            mix the three kinds of pass. On ``colored_mnist`` (three paired runs, BCE-OE and HSC-OE)
            the weights were identical to the default's and the oracle-normal share about the same;
            purity fell on the two BCE-OE runs (0.601 → 0.497, 0.665 → 0.566) and stayed on HSC-OE
            (docs/experiments.md, "Session 46"): there the cycle and reconstruction passes made the
            explaining G recolour more cleanly, so no profile turns it on. No effect with
            ``g_norm="layer"``, which has no running averages.
        d_widths: channels of the discriminator's down-sampling blocks.
        r_widths: channels of the concept classifier's down-sampling blocks.
        r_input: what the concept classifier R reads: ``"pair"`` (the default, the paper's) the
            channel concatenation of (x, x′); ``"edit"`` (**our option, not the paper's**) only the
            map max_c |x′ − x| of where and how much x changed, in no particular colour (see
            :class:`~cfx_lib.counterfactual.models.ConceptClassifier`). On ``colored_mnist`` (BCE-OE,
            two generator seeds) one concept became a near-identity with a small mark that R reads,
            or, with λ_φ 5, both concepts the same recolouring (docs/experiments.md, "Session 21"),
            so no profile turns it on.
        cond_dim: size of the embedding of (α, k) that feeds the conditional batch norms.
        batch_size: images per iteration.
        iterations: generator updates.
        d_steps: discriminator updates per generator update.
        lr_g / lr_d: Adam learning rates of G+R and of D; ``betas`` for both.
        lr_decay: the share of ``iterations`` at the end of training over which both learning
            rates fall linearly to 0 (**our option, not the paper's**; 0, the default, keeps them
            constant). Common practice in image translation GANs (CycleGAN, StarGAN: the second
            half of training). The rates are a function of the iteration and of ``iterations``, so
            a run resumed with more iterations follows another schedule from where it resumes.
            On ``colored_mnist`` (BCE-OE, two paired runs at 900 iterations and one at 1,800) it
            kept the partial recolourings of the middle of training and lowered purity on every
            run (docs/experiments.md, "Session 42"), so no profile turns it on.
        g_ema: decay of an exponential moving average of G's weights and batch-norm statistics,
            updated after every generator step; the average, not the last weights, then explains
            (:attr:`CounterfactualTrainResult.generator`, the sample grids, ``explainer.pt``).
            **Our option, not the paper's** (0, the default, is off); common GAN practice
            (Yazıcı et al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019),
            done by :class:`torch.optim.swa_utils.AveragedModel`. The average has no bias
            correction: it starts at the first step's weights, so a decay whose half-life
            (ln 0.5 / ln decay iterations) is not well below ``iterations`` keeps much of them
            (:func:`~cfx_lib.counterfactual.train_counterfactual` warns above 1%).
        weights: the loss weights (:class:`LossWeights`).
        score_warmup: generator iterations at the start of training during which the score loss
            is not weighed (it is still computed and logged); from iteration ``score_warmup`` + 1 on
            it is weighed by ``weights.score``. **Our option, not the paper's** (0, the default, is
            the paper's objective from the first step). Why: on ``colored_mnist`` the route each
            concept takes is settled within the first few hundred iterations, while R first tells the
            concepts apart, and under BCE-OE the score loss's pull favours recolouring near the
            anomaly (docs/experiments.md, "Session 39"). With a warm-up, G, D and R first settle
            concepts under the GAN, L1 and concept losses alone (D's projection still relates images
            to their scores), and the score loss then steers concepts that already differ.
            The random draws are the same with and without a warm-up. On ``colored_mnist``
            (BCE-OE, warm-up 300 or 150, three pairs of whole seed and generator seed) the concepts
            did differ before the score loss acted, by thinning the strokes or turning their hue.
            But under the score loss none became a redrawing: a thinning concept faded and broke
            the anomalies. At 900 iterations oracle-normal fell on every pair (by 0.160 to 0.509),
            and purity did not rise (docs/experiments.md, "Session 40"). So no profile turns it
            on.
        score_noise / score_shift: the score loss reads φ on counterfactuals with Gaussian
            pixel noise of this std and a random shift of up to this many pixels (an expectation
            over transformations). A change that φ only notices pixel-exactly, i.e. an
            adversarial perturbation, then stops paying off; a real change of content survives.
            0 / 0 (the default) is the paper's plain φ(x_t).
        score_rotate / score_scale: the same reading also rotates each counterfactual about its
            centre by up to this many degrees and scales it by a factor in [1 − score_scale,
            1 + score_scale] (:func:`cfx_lib.data.transforms.random_affine`, after the shift, before
            the noise); **our option, not the paper's**, 0 / 0 by default. A shift moves a digit off
            the centre all MNIST digits share, and a detector trained on centred digits refuses a
            moved 1 while a moved cyan digit stays normal: through shifts of up to 4 pixels BCE-OE
            scores 62% of the real non-cyan 1s of its normal training data above 0.5, through
            rotations of up to 10° and scalings of up to 10% (with the noise) 14% (whole seed 2;
            docs/experiments.md, "Session 47"). A rotation keeps the digit where it is.
        cycle_noise: std of Gaussian pixel noise added to the counterfactual before G maps it back
            (x_cyc = G(x_t + noise, s, k)); **our option, not the paper's** (0, the default, is the
            paper's cycle). A generator trained with a cycle loss can hide what it removed in
            low-amplitude patterns of x_t and read them back (Chu et al., "CycleGAN, a Master of
            Steganography", 2017); noise makes such a hidden code unreadable, so the cycle pays
            only for what x_t visibly keeps.
        concept_noise: std of Gaussian pixel noise added to both images of every pair the concept
            classifier R reads; **our option, not the paper's** (0, the default, is the paper's R).
            The same steganography argument as ``cycle_noise``: without noise G can tell R which
            concept it applied through a faint signature, so R's accuracy says nothing about
            whether the K edits differ visibly; with noise only a visible difference is readable.
            On ``colored_mnist`` (BCE-OE, std 0.1, five generator seeds) it changed nothing on
            average (oracle-normal 0.593 ± 0.223 against 0.587 ± 0.141; docs/experiments.md,
            "Session 13"), so no profile turns it on.
        concept_jitter: every image of every pair R reads gets its own random gain per channel,
            uniform in [1 − j, 1 + j] (:func:`~cfx_lib.data.transforms.channel_gain`); **our option,
            not the paper's** (0, the default, is the paper's R). R then cannot tell two edits apart
            by a *shade* (two slightly different cyans), only by a change of hue family or of shape;
            two concepts that both recolour must then differ in something visible beyond the
            shade. Why: on ``colored_mnist`` the two concepts of every run so far both recolour,
            and R separates them by the shade they paint (docs/experiments.md, "Session 23").
            With j = 0.5 (BCE-OE, two detectors, three generator seeds each) the concepts then
            differed by marks at the top edge and damaged strokes, not by the digit, and purity fell
            on all six runs (−0.124 and −0.101 on average; docs/experiments.md, "Session 34"), so
            no profile turns it on.
        faint_focus: which counterfactuals the erasure guard (``weights.faint``) averages over
            (**our option, not the paper's**). ``"all"`` (the default): every G(x, α, k) of the batch
            alike, most of which are asked for little or no change of score (α near the image's own
            score, or normal images), so the α = 0 edits of anomalies, where erasure pays, weigh
            little. ``"descent"``: a mean weighted by the score descent (s − α)₊ asked of each,
            so the guard is the mean shortfall of the edits that make anomalies normal. Why: under
            HSC-OE, beside the gate, ``edit_rank`` and ``concept_jitter``, both concepts erased
            anomalies to fragments with ``faint`` 100 on, while the logged guard stayed at
            0.001-0.002 (docs/experiments.md, "Session 44"). Beside those three it made both HSC-OE
            pairs worse (oracle-normal 0.421 / 0.638 → 0.163 / 0.436); the fragments had been
            batch norm's eval mode, not training (docs/experiments.md, "Session 45"), so no profile
            turns it on.
        score_space: ``"probability"`` (the default, the paper's): α ~ U[0, 1] and the score loss
            is the BCE between α and φ. ``"logit"``: α is drawn uniformly in logit between
            logit(score_eps) and logit(1 − score_eps), G and D embed logit(α), and the score loss is
            a Huber distance between logits (:func:`~cfx_lib.counterfactual.losses.score_loss`).
            A detector trained with OE scores normal images near 0.0005 and half-normal ones
            near 0.03, a difference that BCE hardly sees; in logit space α = 0 asks for the former.
        alpha_range: which target scores α an image is asked for. ``"full"`` (the default, the
            paper's): α over the whole range for every image, so normal images are also asked to
            become anomalous. ``"below_score"`` (**our option, not the paper's**): α between 0 and
            the image's own score s = φ(x) (in logit space between logit(score_eps) and logit(s)), so G
            is only asked to make images *more* normal; the way back up is still trained by the
            cycle, x_cyc = G(x_t, s, k). Where the normal set is a union (on ``colored_mnist`` a 1 in
            any colour or any digit in cyan), α = 1 asks a cyan 3 to change its colour and a red 1
            its digit, whatever concept k is, which no concept of one factor can do for both.
            On ``colored_mnist`` (gated ideal detector, two generator seeds) it made every figure
            worse (oracle-normal 0.630 and 0.438 against 0.635 and 0.720, purity 0.21 and 0.41
            against 0.45 and 0.55, median φ of the α = 0 counterfactuals 0.19–0.24;
            docs/experiments.md, "Session 23"), so no profile turns it on.
        score_eps: the clip of the logit space: α = 0 asks for a score of at most ``score_eps``.
            ``"auto"``: the median score φ gives the normal training images (within
            [``DEFAULT_SCORE_EPS``, ``MAX_AUTO_SCORE_EPS``]), so that α = 0 asks for "as normal as
            typical normal data" whatever the detector's scale; resolve it with
            :func:`~cfx_lib.counterfactual.calibrate_score_eps` before training. A detector trained
            with OE scores normal images near 0.0005 (the clip stays 0.001), DSVDD near 0.05.
        score_eps_quantile: which quantile of the normal scores ``"auto"`` takes (0.5, the
            median, by default). A normal set made of several kinds of images (a digit in any
            colour ∪ any digit in one colour) can score one kind lower than the other; at the
            median α = 0 then asks for a score that only the dominant kind reaches, and a higher
            quantile asks for one that most normal images of every kind reach. On
            ``colored_mnist`` 0.9 made the counterfactuals worse (docs/experiments.md, "A higher clip does not
            help"), so the profiles keep the median.
        sample_every / checkpoint_every: iterations between sample grids / checkpoints.
        n_samples: anomalies shown in the sample grids.
        channels_last: train G, D and R with their images and convolution weights in the
            channels-last memory layout (``torch.channels_last``), in which oneDNN's CPU convolutions
            run G twice and a whole training step 1.3-1.5 times as fast at these sizes
            (``benchmarks/bench_counterfactual.py``; φ gains nothing and is left as it is); on a GPU
            cuDNN takes either. A speed setting like ``device``, not part of the model: the trained
            weights load into either layout, and a checkpoint resumes under either. The float
            results differ from the contiguous layout's in the last bits, which a GAN run amplifies
            like a change of thread count; a given layout, seed and thread count reproduce exactly.
        precision: ``"float32"`` (every profile) or ``"bfloat16"``: G, D, R and φ run their
            training forward passes under ``torch.autocast`` in bfloat16 and hand float32 outputs to
            the losses, which stay in float32 (a score clip such as 1 − 0.0005 does not exist in
            bfloat16); weights and optimiser states stay float32. A speed setting like
            ``channels_last``: on a CPU with AMX or AVX512-BF16 (Intel Sapphire Rapids and later,
            AMD Zen 4 and later) a training step ran 1.5-1.8 times as fast (README, "Benchmarks");
            on other CPUs bfloat16 is emulated and slower, so measure with
            ``benchmarks/bench_counterfactual.py --options '{"precision": "bfloat16"}'`` first. It
            changes a run far more than the layout does and is not quality-neutral for certain (on
            one detector it lowered the oracle-normal share on every generator seed; README), so
            the profiles and the study's figures are float32; a checkpoint resumes under either.
        seed, device: as everywhere.
    """

    n_concepts: int = 2
    g_widths: tuple[int, ...] = (64, 128)
    g_res_blocks: int = 2
    g_residual: bool = True
    g_skip: bool = False
    g_mask: bool = False
    g_norm: str = "batch"
    g_running_stats: str = "all"
    d_widths: tuple[int, ...] = (64, 128, 128)
    r_widths: tuple[int, ...] = (64, 128)
    r_input: str = "pair"
    cond_dim: int = 64
    batch_size: int = 64
    iterations: int = 20000
    d_steps: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    lr_decay: float = 0.0
    g_ema: float = 0.0
    weights: LossWeights = field(default_factory=LossWeights)
    score_warmup: int = 0
    score_noise: float = 0.0
    score_shift: int = 0
    score_rotate: float = 0.0
    score_scale: float = 0.0
    cycle_noise: float = 0.0
    concept_noise: float = 0.0
    concept_jitter: float = 0.0
    faint_focus: str = "all"
    score_space: str = "probability"
    alpha_range: str = "full"
    score_eps: float | str = DEFAULT_SCORE_EPS
    score_eps_quantile: float = 0.5
    sample_every: int = 500
    checkpoint_every: int = 250
    n_samples: int = 8
    channels_last: bool = True
    precision: str = "float32"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.weights, dict):
            object.__setattr__(self, "weights", LossWeights(**self.weights))
        for key in ("n_concepts", "g_res_blocks", "cond_dim", "batch_size", "iterations", "d_steps",
                    "sample_every", "checkpoint_every", "n_samples", "score_warmup"):
            value = getattr(self, key)
            least = 0 if key in ("g_res_blocks", "score_warmup") else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{key} must be a{' non-negative' if least == 0 else ' positive'} int, got {value!r}")
        for key in ("g_residual", "g_skip", "g_mask", "channels_last"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be True or False, got {getattr(self, key)!r}")
        if self.n_concepts < 1:
            raise ValueError(f"n_concepts (K) must be >= 1, got {self.n_concepts}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (batch norm), got {self.batch_size}")
        for key in ("g_widths", "d_widths", "r_widths"):
            widths = tuple(getattr(self, key))
            if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
                raise ValueError(f"{key} must be a non-empty tuple of positive ints, got {widths!r}")
            object.__setattr__(self, key, widths)
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not self.score_noise >= 0 or not isinstance(self.score_shift, int) or self.score_shift < 0:
            raise ValueError(f"score_noise must be >= 0 and score_shift a non-negative int, got "
                             f"{self.score_noise!r}, {self.score_shift!r}")
        for key, below in (("cycle_noise", None), ("concept_noise", None), ("concept_jitter", 1), ("score_scale", 1)):
            value = getattr(self, key)
            if not _is_number(value) or not value >= 0 or (below is not None and not value < below):
                raise ValueError(f"{key} must be a number >= 0{'' if below is None else f' and < {below}'}, "
                                 f"got {value!r}")
        if not _is_number(self.score_rotate) or not 0 <= self.score_rotate <= 180:
            raise ValueError(f"score_rotate must be a number of degrees in [0, 180], got {self.score_rotate!r}")
        for key, choices in (("r_input", R_INPUTS), ("g_norm", G_NORMS), ("g_running_stats", G_RUNNING_STATS),
                             ("faint_focus", FAINT_FOCUSES), ("precision", PRECISIONS), ("alpha_range", ALPHA_RANGES),
                             ("score_space", SCORE_SPACES)):
            if getattr(self, key) not in choices:
                raise ValueError(f"{key} must be one of {list(choices)}, got {getattr(self, key)!r}")
        if self.score_eps != AUTO and (not _is_number(self.score_eps) or not 0 < self.score_eps < 0.5):
            raise ValueError(f"score_eps must be a number in (0, 0.5) or {AUTO!r}, got {self.score_eps!r}")
        if not _is_number(self.score_eps_quantile) or not 0 < self.score_eps_quantile < 1:
            raise ValueError(f"score_eps_quantile must be a number in (0, 1), got {self.score_eps_quantile!r}")
        if not _is_number(self.g_ema) or not 0 <= self.g_ema < 1:
            raise ValueError(f"g_ema must be a decay in [0, 1) (0: off), got {self.g_ema!r}")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise ValueError("lr_g and lr_d must be > 0")
        if not _is_number(self.lr_decay) or not 0 <= self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be a share of the iterations in [0, 1] (0: off), got {self.lr_decay!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")

    def replace(self, **changes: Any) -> "CounterfactualConfig":
        """A copy with some fields changed (``weights`` may be given as a partial dict)."""
        if isinstance(changes.get("weights"), dict):
            changes["weights"] = dataclasses.replace(self.weights, **changes["weights"])
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown counterfactual option(s) {unknown}; valid: "
                             f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("g_widths", "d_widths", "r_widths", "betas"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CounterfactualConfig":
        """The configuration :meth:`to_dict` wrote (e.g. a checkpoint's); fields added since then read
        as their defaults, and a field this version does not know is a ValueError naming it."""
        d = dict(d)
        weights = dict(d.get("weights", {}))
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        unknown += [f"weights.{k}" for k in sorted(set(weights) - {f.name for f in dataclasses.fields(LossWeights)})]
        if unknown:
            raise ValueError(f"counterfactual configuration with field(s) {unknown} that this version of cfx does "
                             "not know (written by another version?); retrain, or remove them if they were at "
                             "their defaults")
        d["weights"] = LossWeights(**weights)
        for key in ("g_widths", "d_widths", "r_widths", "betas"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    @property
    def score_reading(self) -> dict[str, float]:
        """How the score loss reads φ: ``noise``, ``shift``, ``rotate`` and ``scale`` as keywords of
        :func:`cfx_lib.data.transforms.perturb`, :func:`cfx_lib.metrics.shift_probe`,
        :func:`cfx_lib.metrics.describe_reading` and :func:`cfx_lib.metrics.route_reading`, so that every
        reader of φ reads it as the loss does."""
        return {"noise": self.score_noise, "shift": self.score_shift, "rotate": self.score_rotate,
                "scale": self.score_scale}

    @property
    def alpha_logit_eps(self) -> float | None:
        """The clip with which G and D embed α in logit space, or None (probability space)."""
        if self.score_space != "logit":
            return None
        self.check_resolved()
        return float(self.score_eps)

    def check_resolved(self) -> None:
        """Raise a ValueError while ``score_eps`` is still ``"auto"`` (it needs the detector's scores)."""
        if self.score_eps == AUTO:
            raise ValueError('score_eps="auto" is resolved from the detector\'s scores of normal training images: '
                             "call cfx_lib.counterfactual.calibrate_score_eps(cfg, detector, normal_images) first")

    def with_normal_scores(self, normal_scores: Any) -> "CounterfactualConfig":
        """Resolve ``score_eps="auto"`` to the ``score_eps_quantile`` quantile (by default the median)
        of ``normal_scores`` (φ's scores of the normal training images), clamped to
        [``DEFAULT_SCORE_EPS``, ``MAX_AUTO_SCORE_EPS``]; any other configuration is returned unchanged."""
        if self.score_eps != AUTO:
            return self
        import torch

        scores = torch.as_tensor(normal_scores, dtype=torch.float64).flatten()
        if scores.numel() == 0 or not torch.isfinite(scores).all():
            raise ValueError("score_eps='auto' needs finite scores of at least one normal image")
        clip = float(scores.quantile(self.score_eps_quantile))
        return self.replace(score_eps=min(max(clip, DEFAULT_SCORE_EPS), MAX_AUTO_SCORE_EPS))

    def architecture(self) -> dict[str, Any]:
        """The fields that decide the networks' shapes (what a checkpoint must match)."""
        return {k: self.to_dict()[k] for k in ("n_concepts", "g_widths", "g_res_blocks", "g_residual", "g_skip", "g_mask",
                                                      "g_norm", "d_widths", "r_widths", "r_input", "cond_dim")}
