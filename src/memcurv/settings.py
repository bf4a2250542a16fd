"""A study's settings as typed, frozen objects, built once from the validated config (memcurv.config), so that code
reads `cfg.memorization.num_models` instead of string keys, and no job can change a setting another job reads.

It imports nothing but the standard library, so any module (and the workflow, while it parses) can use it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# The claims of a trend with epsilon (link 2, the loss) need the DP models at this many epsilons at least: fewer
# cannot tell a curve's shape from noise (memcurv.analysis.claims; `memcurv validate` warns of fewer).
MIN_TREND_EPSILONS = 4
OPTIMIZERS = ("sgd", "rmsprop", "adam")
# hooks, ew, functorch: per-example gradients are materialised, then clipped by the optimizer.  ghost:
# per-example gradient norms (computed without the gradients for Linear layers; conv and GroupNorm layers
# fall back to materialised per-example gradients) scale each loss before a second, clipped backward pass.
GRAD_SAMPLE_MODES = ("hooks", "ew", "functorch", "ghost")
# Opacus 1.6's conv grad sampler (used by hooks, and by ghost for conv layers) unfolds activations with
# strides that assume NCHW memory: on channels_last inputs its per-example gradients are wrong.
CHANNELS_LAST_MODES = ("ew", "functorch")
# auto: TF32 on a GPU, IEEE fp32 elsewhere (CPUs have no TF32).  bf16: autocast around the forward pass, which
# PyTorch's expanded weights (grad_sample_mode ew) do not support: their backward mixes bf16 and fp32 operands.
PRECISIONS = ("auto", "fp32", "tf32", "bf16")
BF16_MODES = ("hooks", "functorch", "ghost")


@dataclass(frozen=True)
class TrainSettings:
    """How one model is trained: its schedule, optimizer, batches (logical and physical) and arithmetic."""
    epochs: int = 30
    batch_size: int = 256
    physical_batch_size: int | None = None
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = (0.6, 0.8)
    lr_gamma: float = 0.1
    channels_last: bool = False  # NHWC memory for convolutions: the same results; meant for cuDNN (untimed on a GPU)
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown train.precision {self.precision!r}; choose one of {PRECISIONS}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("train.epochs and train.batch_size must be >= 1")
        if self.physical_batch_size is not None and self.physical_batch_size < 1:
            raise ValueError("train.physical_batch_size must be >= 1 (or null for the logical batch)")


def check_arithmetic(settings: TrainSettings, grad_sample_mode: str | None) -> None:
    """Refuse memory formats and arithmetic that Opacus's per-example gradients (grad_sample_mode; None when not
    private) get wrong or fail under, before any step is taken."""
    if settings.channels_last and grad_sample_mode is not None and grad_sample_mode not in CHANNELS_LAST_MODES:
        raise ValueError(f"train.channels_last needs privacy.grad_sample_mode in {CHANNELS_LAST_MODES}, not "
                         f"{grad_sample_mode!r}: Opacus's conv grad sampler gives wrong per-example gradients on "
                         "channels-last inputs (or use channels_last: false)")
    if settings.precision == "bf16" and grad_sample_mode is not None and grad_sample_mode not in BF16_MODES:
        raise ValueError(f"train.precision = bf16 needs privacy.grad_sample_mode in {BF16_MODES}, not "
                         f"{grad_sample_mode!r}: PyTorch's expanded weights (ew) do not support autocast "
                         "(or use precision: tf32)")


@dataclass(frozen=True)
class LabelNoise:
    """A seeded fraction of the training labels flipped to another class (memcurv.data.label_noise)."""
    fraction: float
    seed: int


@dataclass(frozen=True)
class DatasetConfig:
    """Which dataset (a module of memcurv.data.datasets), where it lives, and its own options."""
    name: str
    options: Mapping[str, Any]
    label_noise: LabelNoise
    root: str | None
    download: bool
    verify_checksums: bool
    seed: int


@dataclass(frozen=True)
class PrivacyConfig:
    """DP-SGD's fixed settings; the noise multiplier comes from calibrating each target epsilon."""
    accountant: str
    delta: float
    max_grad_norm: float
    grad_sample_mode: str


@dataclass(frozen=True)
class ReleasedBatchSize:
    """Batch sizes of the released code's curvature scorers, which its batch-mean loss divides by (defect 2)."""
    dp_models: int  # the DP models' scorer (128 in the released code)
    memorization: int  # the subset models' scorer (1,024)


@dataclass(frozen=True)
class CurvatureConfig:
    """Probes of the input loss curvature (memcurv.estimators.curvature), and the training and test examples each
    DP model is scored on."""
    probes: int
    residual_probes: int
    split_trace: bool
    train_examples: int | None
    test_examples: int | None
    method: str
    h: float
    batch_size: int
    released_batch_size: ReleasedBatchSize
    seed: int


@dataclass(frozen=True)
class DpModelsConfig:
    """The DP models on the full training set: one per epsilon and seed (links 2 and the loss claim)."""
    epsilons: tuple[float, ...]
    seeds: tuple[int, ...]
    models_per_job: int


@dataclass(frozen=True)
class MemorizationConfig:
    """The non-private subset models that memorization and per-example curvature are estimated from (link 1)."""
    num_models: int
    models_per_job: int
    curvature_models: int | None
    train: TrainSettings
    subset_ratio: float
    seed: int
    stacked: bool
    norm: str
    published_scores: str | None
    published_index_map: str | None
    cscores: str | None
    score: str


@dataclass(frozen=True)
class MemVsEpsilonConfig:
    """The DP subset models that measure memorization of the top-k against epsilon (link 3)."""
    epsilons: tuple[float, ...]
    num_models: int
    models_per_job: int
    top_k: int
    topk_source: str
    subset_ratio: float
    subsets: str
    seed: int
    control: bool


@dataclass(frozen=True)
class AuditConfig:
    """The empirical DP audit with canaries (memcurv.jobs.audit), beyond the paper."""
    enabled: bool
    epsilons: tuple[float, ...]
    canaries: int
    num_models: int
    models_per_job: int
    selection_fraction: float
    guess_fractions: tuple[float, ...]
    confidence: float
    control_epsilon: float
    seed: int
    control_train: TrainSettings


@dataclass(frozen=True)
class FiguresConfig:
    """What the extremes figure shows, and whether figures draw the other fidelity's reading beside the run's."""
    extremes_classes: int
    extremes_per_class: int
    most_memorized: int
    side_by_side: bool


@dataclass(frozen=True)
class ClaimsConfig:
    """What the report judges the claims against (memcurv.analysis.claims.Judging)."""
    min_effect: float
    alpha: float


@dataclass(frozen=True)
class StudyConfig:
    """One study, every default filled in and every defect switch resolved (memcurv.config.validate builds it)."""
    study: str
    dataset: DatasetConfig
    model: str
    device: str
    train: TrainSettings
    privacy: PrivacyConfig
    curvature: CurvatureConfig
    dp_models: DpModelsConfig
    memorization: MemorizationConfig
    mem_vs_epsilon: MemVsEpsilonConfig
    fidelity: str
    defects: Mapping[str, str | None]
    deterministic: bool
    audit: AuditConfig
    figures: FiguresConfig
    claims: ClaimsConfig
    resolved_defects: Mapping[str, str]

    @classmethod
    def from_dict(cls, validated: dict[str, Any]) -> StudyConfig:
        return _build(cls, validated)

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data (what it was built from): what is hashed for provenance and written for every
        job to read."""
        return _plain(self)


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    """`cls` from a section of the validated config: nested sections become their dataclasses, lists tuples and
    mappings read-only.  A key without a field (or a field without a key) is a schema the code does not know."""
    fields = {f.name for f in dataclasses.fields(cls)}
    if set(data) != fields:
        raise KeyError(f"{cls.__name__} and the config schema disagree on {sorted(set(data) ^ fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        value, hint = data[name], hints[name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = MappingProxyType(dict(value))
        values[name] = value
    return cls(**values)


class UnreadSection:
    """A config section that a job declared it does not read (memcurv.jobs.reads): it stands in for the section, so
    that a job reading it anyway fails at once instead of letting a change of that section go unnoticed by the
    workflow (which reruns a job only when the settings it declares it reads change)."""

    def __init__(self, section: str, verb: str) -> None:
        self.section, self.verb = section, verb

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe for dunders: not a read of the section
            raise AttributeError(name)
        raise RuntimeError(f"`memcurv {self.verb}` read config section {self.section}.{name}, which memcurv.jobs.reads"
                           f" declares it does not read: add {self.section!r} to the verb's sections there")


def _plain(value: Any) -> Any:
    """Settings as the plain data of a config file: dataclasses and mappings as dicts, tuples as lists; a section a
    job does not read is left out."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not isinstance(getattr(value, f.name), UnreadSection)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
