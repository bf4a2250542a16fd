"""Study configuration: schema validation with defaults, fidelity resolution, early sanity checks, and the
typed, frozen settings (memcurv.settings) built once from the result.

The schema (config.schema.yaml, shipped in the package; workflow/schemas/ links to it) is the one
source of keys, defaults and descriptions, for the command line and the Snakefile alike; the workflow
validates a config once, through `validate`, so its errors are this module's one-line messages.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from memcurv.readings import resolve_defects
from memcurv.settings import DatasetConfig, StudyConfig, check_arithmetic

# The experiments that train DP models, each a config section with its target epsilons.
EXPERIMENTS = ("dp_models", "mem_vs_epsilon", "audit")

# How tables, figures and reports name a dataset whose config name would mislead a reader.
_DISPLAY_NAMES = {"cifar10_jpeg": "CIFAR-10 (JPEG re-encoded)"}


def dataset_title(cfg: StudyConfig) -> str:
    return _DISPLAY_NAMES.get(cfg.dataset.name, cfg.dataset.name)


# Datasets whose training ids follow CIFAR-10's official order within each class (memcurv.cscores).
_CIFAR10_ORDER = ("cifar10", "cifar10_jpeg")

# Training-set sizes of datasets whose size is fixed, for checks before any job starts.
_FIXED_TRAIN_SIZES = {"cifar10": 50_000, "cifar100": 50_000}


def format_epsilon(eps: float) -> str:
    """Canonical text of an epsilon in file names: 1 and 1.0 are both '1'."""
    return f"{float(eps):g}"


def num_shards(total: int, per_job: int) -> int:
    """Jobs needed for `total` models at `per_job` models a job."""
    return -(-total // per_job)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the fix."""


def schema() -> dict[str, Any]:
    return yaml.safe_load(resources.files("memcurv").joinpath("config.schema.yaml").read_text())


def _validator_with_defaults() -> type:
    base = jsonschema.Draft202012Validator

    def set_defaults(validator: Any, properties: dict, instance: Any, sch: dict) -> Any:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from base.VALIDATORS["properties"](validator, properties, instance, sch)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate(config: dict[str, Any]) -> StudyConfig:
    """The study ``config`` describes, every default filled in and every defect switch resolved; the first
    invalid key raises a ConfigError that names it."""
    cfg = copy.deepcopy(config)
    cfg.pop("resolved_defects", None)
    errors = sorted(_validator_with_defaults()(schema()).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ConfigError(f"config key {_key_path(e)}: {e.message}")
    cfg["resolved_defects"] = resolve_defects(cfg)
    study = StudyConfig.from_dict(cfg)
    _check_semantics(study)
    return study


def load(path: str | Path) -> StudyConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    return validate(yaml.safe_load(path.read_text()) or {})


def show(cfg: StudyConfig) -> None:
    """Print a validated config, every default filled in (the `validate` verb)."""
    print(yaml.safe_dump(cfg.as_dict(), sort_keys=False), end="")


def train_size(dataset: DatasetConfig) -> int | None:
    """Number of training examples, where it can be known without reading a data folder."""
    if dataset.name in _FIXED_TRAIN_SIZES:
        return _FIXED_TRAIN_SIZES[dataset.name]
    if dataset.name == "cifar10_jpeg":
        return 10 * dataset.options.get("train_per_class", 5000)
    if dataset.name in ("digits", "synthetic"):  # generated: their size is their options'
        from memcurv.data import load_dataset

        return len(load_dataset(dataset.name, seed=dataset.seed, **dataset.options).y_train)
    return None


def _check_semantics(cfg: StudyConfig) -> None:
    """What the schema cannot say: settings that only work together, and sizes beyond the training set."""
    try:
        check_arithmetic(cfg.train, cfg.privacy.grad_sample_mode)
    except ValueError as e:
        raise ConfigError(f"config key {e}") from None
    if cfg.memorization.cscores and cfg.dataset.name not in _CIFAR10_ORDER:
        raise ConfigError(f"config key memorization.cscores: C-scores map only to datasets whose ids follow CIFAR-10's "
                          f"official training order ({', '.join(_CIFAR10_ORDER)}), not {cfg.dataset.name}")
    if cfg.mem_vs_epsilon.topk_source == "published" and not cfg.memorization.published_scores:
        raise ConfigError("config key mem_vs_epsilon.topk_source = published needs memorization.published_scores "
                          "(the path of the published score file)")
    n = train_size(cfg.dataset)
    if n is None:
        return
    checks = [
        ("mem_vs_epsilon.top_k", cfg.mem_vs_epsilon.top_k),
        ("train.batch_size", cfg.train.batch_size),
        ("memorization.train.batch_size", cfg.memorization.train.batch_size),
    ]
    for key, value in checks:
        if value > n:
            raise ConfigError(f"config key {key} = {value} exceeds the {n} training examples of {cfg.dataset.name}")
