"""A study's settings: built once from the validated config, typed, frozen, and the same data as the config."""

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from memcurv import config
from memcurv.analysis.readings import resolve_defects
from memcurv.settings import StudyConfig, TrainSettings

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "config").glob("*.yaml"))


def _schema_dict(raw: dict) -> dict:
    """The validated config as plain data, the schema's way: defaults filled in, defect switches resolved."""
    cfg = copy.deepcopy(raw)
    assert not list(config._validator_with_defaults()(config.schema()).iter_errors(cfg))
    return {**cfg, "resolved_defects": resolve_defects(cfg)}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_settings_hold_exactly_the_validated_config(path):
    raw = yaml.safe_load(path.read_text())
    study = config.validate(raw)
    assert study.as_dict() == _schema_dict(raw)
    assert isinstance(study.memorization.train, TrainSettings) and isinstance(study.dp_models.epsilons, tuple)


def test_settings_are_frozen():
    study = config.validate({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.train.epochs = 1
    with pytest.raises(TypeError):
        study.dataset.options["n_train"] = 10  # read-only mapping
    changed = dataclasses.replace(study, train=dataclasses.replace(study.train, lr=0.5))
    assert changed.as_dict()["train"]["lr"] == 0.5 and study.as_dict()["train"]["lr"] != 0.5


def test_a_schema_key_without_a_setting_is_an_error():
    validated = _schema_dict({})
    with pytest.raises(KeyError, match="extra"):
        StudyConfig.from_dict({**validated, "train": {**validated["train"], "extra": 1}})


@pytest.mark.parametrize("section, key", [({"train": {"channels_last": True}, "privacy": {"grad_sample_mode": "hooks"}},
                                           "train.channels_last needs privacy.grad_sample_mode"),
                                          ({"train": {"precision": "bf16"}, "privacy": {"grad_sample_mode": "ew"}},
                                           "train.precision = bf16 needs privacy.grad_sample_mode")])
def test_settings_that_only_work_together_are_checked_once_with_the_key(section, key):
    with pytest.raises(config.ConfigError, match=f"^config key {key}"):
        config.validate(section)


def _dataclass_defaults(cls: type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _schema_defaults(section: dict) -> dict:
    return {key: tuple(v) if isinstance(v := sub.get("default"), list) else v
            for key, sub in section["properties"].items() if "default" in sub}


def test_the_settings_classes_default_to_what_the_schema_defaults_to():
    """Configs are validated with the schema's defaults; direct Python callers (tests, benchmarks) get the
    dataclasses' own: they must be the same values, so a default has one meaning whichever way a model is trained."""
    from memcurv.training.train import PrivacySettings

    sch = config.schema()
    assert _dataclass_defaults(TrainSettings) == _schema_defaults(sch["$defs"]["train"])
    assert _dataclass_defaults(PrivacySettings) == _schema_defaults(sch["properties"]["privacy"])
