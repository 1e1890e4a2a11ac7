"""The three networks of the counterfactual path (after DISSECT / the paper's GAN path).

- :class:`Generator` G(x, α, k): a ResNet encoder–decoder whose decoder is conditioned on the
  target score α ∈ [0, 1] and the concept k through conditional batch norm; tanh output mapped
  to the data range [0, 1].
- :class:`Discriminator` D(x, α): a spectral-normed ResNet with a projection term on α, so it
  judges "a realistic image with score α" (hinge loss).
- :class:`ConceptClassifier` R(x, x′): spectral-normed, on the channel concatenation of a pair
  (or, our option, on the map of where x changed), K logits: which concept turned x into x′.

Sizes: any square image whose side is divisible by 2^len(widths) (28×28 and 32×32 with two
stages; 32×32 with three).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from .losses import logit_bound


def check_images(x: torch.Tensor, image_shape: tuple[int, int, int], what: str = "images") -> None:
    """Raise a ValueError naming the expected shape when ``x`` is not a batch of such images."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of {what}, got {type(x).__name__}")
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image_shape):
        c, h, w = image_shape
        raise ValueError(f"expected {what} of shape (B, {c}, {h}, {w}), got {tuple(x.shape)}")


def alpha_features(alpha: torch.Tensor, freq: torch.Tensor, logit_eps: float | None = None) -> torch.Tensor:
    """Fourier features (B, 2·len(freq) + 1) of target scores α (B,) in [0, 1].

    With ``logit_eps`` the features are those of logit(α) clipped to [eps, 1 − eps] and scaled to
    [−1, 1] (the ``"logit"`` score space), so that α = 0.001 and α = 0.03 are as far apart for the
    networks as they are for a detector's logit; otherwise those of α itself.
    """
    a = alpha.float().reshape(-1, 1)
    if logit_eps is not None:
        a = torch.logit(a.clamp(logit_eps, 1 - logit_eps)) / logit_bound(logit_eps)
    return torch.cat([a, torch.sin(a * freq), torch.cos(a * freq)], dim=1)


class ConditionEmbedding(nn.Module):
    """(α, k) → a vector: an embedding of k concatenated with Fourier features of α
    (:func:`alpha_features`) passed through a small MLP."""

    def __init__(self, n_concepts: int, dim: int, n_freq: int = 8, logit_eps: float | None = None) -> None:
        super().__init__()
        self.n_concepts = n_concepts
        self.logit_eps = logit_eps
        self.concept = nn.Embedding(n_concepts, dim)
        self.register_buffer("freq", math.pi * 2.0 ** torch.arange(n_freq).float() / 2.0)
        self.alpha = nn.Sequential(nn.Linear(2 * n_freq + 1, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, alpha: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        feats = alpha_features(alpha, self.freq, self.logit_eps)
        return torch.cat([self.concept(k.long()), self.alpha(feats)], dim=1)


#: the generator's normalisations (``CounterfactualConfig.g_norm``)
G_NORMS = ("batch", "layer")


def plain_norm(channels: int, kind: str = "batch", affine: bool = True) -> nn.Module:
    """The generator's normalisation of ``channels`` feature maps: batch norm (``"batch"``, which
    normalises by the statistics of the batch in training and by running averages in eval mode) or
    layer norm over channels and pixels of each image (``"layer"``: ``GroupNorm`` with one group,
    the same computation in training and in eval mode, whatever else is in the batch)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=affine)
    if kind == "layer":
        return nn.GroupNorm(1, channels, affine=affine)
    raise ValueError(f"the generator's normalisation must be one of {list(G_NORMS)}, got {kind!r}")


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are predicted from the condition vector (identity at
    initialisation: γ = 1, β = 0); with ``norm="layer"`` layer norm instead (see :func:`plain_norm`)."""

    def __init__(self, channels: int, cond_dim: int, norm: str = "batch") -> None:
        super().__init__()
        self.bn = plain_norm(channels, norm, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(cond).chunk(2, dim=1)
        return self.bn(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class GBlock(nn.Module):
    """Pre-activation residual block: (C)BN → ReLU → conv → (C)BN → ReLU → conv, with an
    optional 2× down- or up-sampling; conditional when ``cond_dim`` is given; layer norm instead of
    batch norm with ``norm_kind="layer"`` (see :func:`plain_norm`)."""

    def __init__(self, cin: int, cout: int, resample: str | None = None, cond_dim: int | None = None,
                 norm_kind: str = "batch") -> None:
        super().__init__()
        self.resample = resample
        self.conditional = cond_dim is not None
        norm = ((lambda c: ConditionalBatchNorm2d(c, cond_dim, norm_kind)) if self.conditional
                else (lambda c: plain_norm(c, norm_kind)))
        self.n1, self.n2 = norm(cin), norm(cout)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout or resample else nn.Identity()

    def _norm(self, norm: nn.Module, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return norm(h, cond) if self.conditional else norm(h)

    def _resample(self, h: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(h, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(h, 2)
        return h

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self._norm(self.n1, x, cond))
        if self.resample == "up":
            h = self._resample(h)
        h = self.c1(h)
        h = self.c2(F.relu(self._norm(self.n2, h, cond)))
        if self.resample == "down":
            h = self._resample(h)
        return h + self._resample(self.skip(x)) if self.resample == "down" else h + self.skip(self._resample(x))


#: inputs are clamped to [eps, 1 − eps] before atanh in the residual generator
RESIDUAL_EPS = 0.01
#: initial bias of the masked generator's gate logit: sigmoid(−3) ≈ 0.05, so G starts near the identity
MASK_INIT_BIAS = -3.0


def per_image(x: torch.Tensor, alpha: float | torch.Tensor, k: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """α and k as one value per image of ``x``: a number or a 0-d tensor is repeated, a vector is kept."""
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).expand(len(x)) if not torch.is_tensor(alpha) or alpha.ndim == 0 else alpha
    k = torch.as_tensor(k, dtype=torch.long, device=x.device).expand(len(x)) if not torch.is_tensor(k) or k.ndim == 0 else k
    return alpha, k


class Generator(nn.Module):
    """G(x, α, k): images (B, C, H, W) in [0, 1], target scores α (B,) in [0, 1], concepts
    k (B,) in {0..K−1} → images (B, C, H, W) in [0, 1].

    With ``residual=True`` (the default) the network's output is added to atanh(2x − 1) before
    the tanh, so G is close to the identity at initialisation and learns edits: the output stays
    in the data range, and training skips the long phase in which a GAN first learns to
    reproduce its input (that phase costs most of a CPU budget). ``residual=False`` is the plain
    encoder–decoder. ``alpha_logit_eps`` embeds α in logit space (see :func:`alpha_features`).

    With ``skip=True`` (U-Net skips, **our option, not the paper's**; off by default) each decoder
    stage adds the encoder's features of the same resolution to its output, so the conditional batch
    norms that follow modulate features that still know where the strokes are, pixel by pixel.
    Without them everything the decoder draws passes through the lowest resolution (7×7 for 28×28
    images with two stages).

    With ``mask=True`` (**our option, not the paper's**; off by default) the last convolution also
    gives a gate m ∈ (0, 1) per pixel, and G paints: G(x, α, k) = m ⊙ c + (1 − m) ⊙ x, where the
    content c is the output described above (drawn from scratch, or with ``residual`` an edit of x).
    This is the attention mask of GANimation (Pumarola et al., ECCV 2018), common in image-to-image
    editing: wherever the gate stays closed the image is kept exactly, so an edit is a region
    painted over, not a change spread over every pixel. The gate starts nearly closed
    (sigmoid(:data:`MASK_INIT_BIAS`) ≈ 0.05), so G starts near the identity.

    ``norm`` is ``"batch"`` (the default: conditional batch norm, as in the paper) or ``"layer"``
    (**our option, not the paper's**): the same scales and shifts from the condition, on features
    normalised per image over channels and pixels (:func:`plain_norm`). With batch norm, an
    image's output in training depends on the rest of its batch, and in eval mode on running
    averages that also average the cycle and reconstruction passes, so the G that explains is
    not quite the G that trained; with layer norm it is.
    """

    def __init__(self, image_shape: tuple[int, int, int], n_concepts: int = 2, widths: tuple[int, ...] = (64, 128),
                 res_blocks: int = 2, cond_dim: int = 64, residual: bool = True,
                 alpha_logit_eps: float | None = None, skip: bool = False, mask: bool = False,
                 norm: str = "batch") -> None:
        super().__init__()
        self.residual = residual
        self.skip = skip
        self.mask = mask
        c, h, w = image_shape
        if h != w or h % 2 ** len(widths):
            raise ValueError(f"generator needs square images with a side divisible by {2 ** len(widths)} "
                             f"({len(widths)} stages), got {h}×{w}")
        self.image_shape = tuple(image_shape)
        self.n_concepts = n_concepts
        self.embed = ConditionEmbedding(n_concepts, cond_dim // 2, logit_eps=alpha_logit_eps)
        self.stem = nn.Conv2d(c, widths[0], 3, padding=1)
        chans = [widths[0], *widths]
        self.down = nn.ModuleList(GBlock(chans[i], chans[i + 1], "down", None, norm) for i in range(len(widths)))
        self.mid = nn.ModuleList(GBlock(widths[-1], widths[-1], None, cond_dim, norm) for _ in range(res_blocks))
        self.up = nn.ModuleList(GBlock(chans[i + 1], chans[i], "up", cond_dim, norm)
                                for i in reversed(range(len(widths))))
        self.out_norm = ConditionalBatchNorm2d(widths[0], cond_dim, norm)
        self.out = nn.Conv2d(widths[0], c + 1 if mask else c, 3, padding=1)
        if mask:
            with torch.no_grad():
                self.out.bias[-1] = MASK_INIT_BIAS

    def forward(self, x: torch.Tensor, alpha: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        check_images(x, self.image_shape)
        alpha, k = per_image(x, alpha, k)
        if len(alpha) != len(x) or len(k) != len(x):
            raise ValueError(f"alpha and k need one value per image ({len(x)}), got {len(alpha)} and {len(k)}")
        if (k < 0).any() or (k >= self.n_concepts).any():
            raise ValueError(f"concepts k must be in 0..{self.n_concepts - 1}, got {k.tolist()}")
        cond = self.embed(alpha.to(x.device), k.to(x.device))
        h = self.stem(x * 2 - 1)
        encoded = [h]  # the encoder's features at each resolution, for the skips
        for block in self.down:
            h = block(h)
            encoded.append(h)
        for block in self.mid:
            h = block(h, cond)
        for i, block in enumerate(self.up):
            h = block(h, cond)
            if self.skip:  # up-block i ends at the resolution (and width) of encoder stage len(widths)−1−i
                h = h + encoded[-2 - i]
        h = self.out(F.relu(self.out_norm(h, cond)))
        if self.mask:  # the last channel is the gate's logit, the others the content
            h, gate = h[:, :-1], torch.sigmoid(h[:, -1:])
        if self.residual:  # an edit of the input in tanh space: G starts near the identity
            h = h + torch.atanh(x.clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS) * 2 - 1)
        out = (torch.tanh(h) + 1) / 2
        return gate * out + (1 - gate) * x if self.mask else out


class DBlock(nn.Module):
    """Spectral-normed residual block (ReLU → conv → ReLU → conv), optionally 2× down-sampling."""

    def __init__(self, cin: int, cout: int, down: bool = True, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.c1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.c2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1)) if cin != cout or down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        s = x
        if self.down:
            h = F.avg_pool2d(h, 2)
            s = F.avg_pool2d(self.skip(s), 2) if self.first else self.skip(F.avg_pool2d(s, 2))
        elif self.skip is not None:
            s = self.skip(s)
        return h + s


class SNResNet(nn.Module):
    """A spectral-normed ResNet feature extractor: down blocks, then global sum pooling."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        chans = [in_channels, *widths]
        self.blocks = nn.Sequential(*(DBlock(chans[i], chans[i + 1], down=True, first=i == 0) for i in range(len(widths))),
                                    DBlock(widths[-1], widths[-1], down=False))
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))


class Discriminator(nn.Module):
    """D(x, α) → a realism logit (B,): linear(h) + ⟨v(α), h⟩, the projection term judging whether
    x looks like a real image whose detector score is α. ``alpha_logit_eps``: as for the
    :class:`Generator`."""

    def __init__(self, image_shape: tuple[int, int, int], widths: tuple[int, ...] = (64, 128, 128), n_freq: int = 8,
                 alpha_logit_eps: float | None = None) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.alpha_logit_eps = alpha_logit_eps
        self.features = SNResNet(image_shape[0], widths)
        self.linear = spectral_norm(nn.Linear(self.features.out_dim, 1))
        self.register_buffer("freq", math.pi * 2.0 ** torch.arange(n_freq).float() / 2.0)
        self.alpha = nn.Sequential(spectral_norm(nn.Linear(2 * n_freq + 1, self.features.out_dim)), nn.ReLU(),
                                   spectral_norm(nn.Linear(self.features.out_dim, self.features.out_dim)))

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        check_images(x, self.image_shape)
        h = self.features(x * 2 - 1)
        v = self.alpha(alpha_features(alpha, self.freq, self.alpha_logit_eps))
        return self.linear(h).squeeze(1) + (v * h).sum(dim=1)


R_INPUTS = ("pair", "edit")


def edit_map(x: torch.Tensor, x_prime: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W): per pixel, the largest absolute change over the channels, max_c |x′ − x|.

    Where and how much an image changed, not in which colour: a change between two saturated
    colours reads 1 whichever they are (red → cyan as blue → cyan), so the map of a recolouring is
    the silhouette of the digit, that of a digit edit its added and removed strokes."""
    return (x_prime - x).abs().amax(dim=1, keepdim=True)


class ConceptClassifier(nn.Module):
    """R(x, x′) → K logits: which concept changed x into x′ (spectral-normed).

    ``input``: ``"pair"`` (the paper's, DISSECT's) reads the channel concatenation of x and x′.
    ``"edit"`` (**our option, not the paper's**) reads only :func:`edit_map` (x, x′), where and how
    much x changed in any colour: R then cannot tell the concepts apart by what the anomaly looks
    like (its colour) and has to by the form of the edit, so a concept that recolours some
    anomalies and reshapes others is no longer one R can recognise.
    """

    def __init__(self, image_shape: tuple[int, int, int], n_concepts: int = 2, widths: tuple[int, ...] = (64, 128),
                 input: str = "pair") -> None:
        super().__init__()
        if input not in R_INPUTS:
            raise ValueError(f"the concept classifier's input must be one of {list(R_INPUTS)}, got {input!r}")
        self.image_shape = tuple(image_shape)
        self.input = input
        self.features = SNResNet(2 * image_shape[0] if input == "pair" else 1, widths)
        self.head = spectral_norm(nn.Linear(self.features.out_dim, n_concepts))

    def forward(self, x: torch.Tensor, x_prime: torch.Tensor) -> torch.Tensor:
        check_images(x, self.image_shape)
        check_images(x_prime, self.image_shape, "counterfactuals")
        h = torch.cat([x, x_prime], dim=1) if self.input == "pair" else edit_map(x, x_prime)
        return self.head(self.features(h * 2 - 1))


def build_generator(cfg, image_shape: tuple[int, int, int]) -> Generator:
    """The generator a :class:`~cfx_lib.counterfactual.config.CounterfactualConfig` describes."""
    return Generator(image_shape, cfg.n_concepts, cfg.g_widths, cfg.g_res_blocks, cfg.cond_dim, cfg.g_residual,
                     alpha_logit_eps=cfg.alpha_logit_eps, skip=cfg.g_skip, mask=cfg.g_mask, norm=cfg.g_norm)


def build_discriminator(cfg, image_shape: tuple[int, int, int]) -> Discriminator:
    """The discriminator a :class:`~cfx_lib.counterfactual.config.CounterfactualConfig` describes."""
    return Discriminator(image_shape, cfg.d_widths, alpha_logit_eps=cfg.alpha_logit_eps)


def build_concept_classifier(cfg, image_shape: tuple[int, int, int]) -> ConceptClassifier:
    """The concept classifier R a :class:`~cfx_lib.counterfactual.config.CounterfactualConfig` describes."""
    return ConceptClassifier(image_shape, cfg.n_concepts, cfg.r_widths, cfg.r_input)
