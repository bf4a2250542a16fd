"""Study configuration: schema validation with defaults, fidelity resolution, early sanity checks, and the
typed, frozen settings (memcurv.settings) built once from the result.

The schema (config.schema.yaml, shipped in the package; workflow/schemas/ links to it) is the one
source of keys, defaults and descriptions, for the command line and the Snakefile alike; the workflow
validates a config once, through `validate`, so its errors are this module's one-line messages.
"""

from __future__ import annotations

import copy
import difflib
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from memcurv.analysis.readings import resolve_defects
from memcurv.data import datasets
from memcurv.settings import MIN_TREND_EPSILONS, DatasetConfig, StudyConfig, check_arithmetic
from memcurv.training import architectures

# The experiments that train DP models, each a config section with its target epsilons.
EXPERIMENTS = ("dp_models", "mem_vs_epsilon", "audit")


def dataset_title(cfg: StudyConfig) -> str:
    """How tables and figures name the study's dataset (its module's TITLE)."""
    return datasets.title(cfg.dataset.name)


def dataset_as_run(cfg: StudyConfig) -> str:
    """The dataset as the study runs it, for reports and the results pages: its title, the classes and image size its
    options give, the training examples where the options fix them, and the share of labels flipped."""
    spec = datasets.spec(cfg.dataset.name)
    (_, height, width), classes = spec.input_dims(cfg.dataset.options)
    size = spec.train_size(cfg.dataset.options)
    text = f"{spec.title}, {classes} classes at {height}x{width}" + (f", {size:,} training images" if size else "")
    noise = cfg.dataset.label_noise.fraction
    return text + (f", {noise:.0%} of training labels flipped" if noise else "")


def format_epsilon(eps: float) -> str:
    """Canonical text of an epsilon in file names: 1 and 1.0 are both '1'."""
    return f"{float(eps):g}"


def num_shards(total: int, per_job: int) -> int:
    """Jobs needed for `total` models at `per_job` models a job."""
    return -(-total // per_job)


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the fix."""


def schema() -> dict[str, Any]:
    """The schema, with the dataset and model names it accepts filled in from the modules of memcurv.data.datasets
    and memcurv.training.architectures."""
    sch = yaml.safe_load(resources.files("memcurv").joinpath("config.schema.yaml").read_text())
    sch["properties"]["dataset"]["properties"]["name"]["enum"] = list(datasets.catalogue())
    archs = architectures.catalogue()
    sch["properties"]["model"]["enum"] = list(archs)
    sch["properties"]["model"]["description"] = ("Architecture by name, a module of memcurv.training.architectures: "
                                                 + "; ".join(a.title for a in archs.values()) + ".")
    return sch


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


def _nearest(error: jsonschema.ValidationError) -> str:
    """For an unknown key, the known key of its section nearest in spelling, as a hint; else nothing."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    known = list(error.schema.get("properties", {}))
    hints = [f"{key!r} -> did you mean {match[0]!r}?" for key in error.instance if key not in known
             for match in [difflib.get_close_matches(key, known, n=1)] if match]
    return f" ({'; '.join(hints)})" if hints else ""


def validate(config: dict[str, Any]) -> StudyConfig:
    """The study ``config`` describes, every default filled in and every defect switch resolved; the first
    invalid key raises a ConfigError that names it."""
    cfg = copy.deepcopy(config)
    cfg.pop("resolved_defects", None)
    errors = sorted(_validator_with_defaults()(schema()).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ConfigError(f"config key {_key_path(e)}: {e.message}{_nearest(e)}")
    cfg["resolved_defects"] = resolve_defects(cfg)
    study = StudyConfig.from_dict(cfg)
    _check_semantics(study)
    return study


BASE = Path("config/config.yaml")  # the Snakefile's configfile: every --configfile is deep-merged over it


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`overlay` deep-merged over `base`, as Snakemake merges a --configfile over the Snakefile's configfile: a
    mapping updates the mapping below it key by key, anything else replaces it."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, dict) else copy.deepcopy(value)
    return out


def study(path: str | Path, base: str | Path = BASE) -> StudyConfig:
    """The study `snakemake --configfile <path>` runs: `path` merged over the default config, validated."""
    return validate(merge(*(read_yaml(p) for p in (base, path))))


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; a missing, unreadable, empty or non-mapping file is a ConfigError naming it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{line}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise ConfigError(f"config file {path} is empty: a study config is a mapping of keys (see config/config.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds a YAML {type(data).__name__}, not a mapping of config keys")
    return data


def load(path: str | Path) -> StudyConfig:
    return validate(read_yaml(path))


def show(cfg: StudyConfig) -> None:
    """Print a validated config, every default filled in (the `validate` verb), and its warnings to stderr."""
    print(yaml.safe_dump(cfg.as_dict(), sort_keys=False), end="")
    for warning in warnings(cfg):
        print(f"memcurv validate: warning: {warning}", file=sys.stderr)


def warnings(cfg: StudyConfig) -> list[str]:
    """What a valid config will not do that a user may expect: a claim it cannot judge."""
    n = len(cfg.dp_models.epsilons)
    if n < MIN_TREND_EPSILONS:
        return [f"config key dp_models.epsilons has {n} epsilon(s): the trends with epsilon (link 2, the loss) need "
                f"at least {MIN_TREND_EPSILONS}, and the report will mark them not run"]
    return []


def train_size(dataset: DatasetConfig) -> int | None:
    """Number of training examples, where it can be known without reading a data folder (the dataset's module
    says); the options' names are checked on the way."""
    try:
        return datasets.train_size(dataset.name, dataset.options)
    except ValueError as e:
        raise ConfigError(f"config key dataset.options: {e}") from None


def _check_semantics(cfg: StudyConfig) -> None:
    """What the schema cannot say: settings that only work together, and sizes beyond the training set."""
    try:
        check_arithmetic(cfg.train, cfg.privacy.grad_sample_mode)
    except ValueError as e:
        raise ConfigError(f"config key {e}") from None
    if cfg.memorization.cscores and not datasets.spec(cfg.dataset.name).follows_cifar10_order:
        in_order = [name for name, s in datasets.catalogue().items() if s.follows_cifar10_order]
        raise ConfigError(f"config key memorization.cscores: C-scores map only to datasets whose ids follow CIFAR-10's "
                          f"official training order ({', '.join(in_order)}), not {cfg.dataset.name}")
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
