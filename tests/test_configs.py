"""Every shipped study's config as Snakemake runs it: merged over config/config.yaml (the Snakefile's configfile) and
validated; overlays change only what they say; the schema's defaults are the settings' defaults."""

from pathlib import Path

import pytest
import yaml

from memcurv import config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "config").glob("*.yaml")) + [REPO / ".ci" / "fault.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_study_validates_as_snakemake_merges_it(path):
    cfg = config.study(path, REPO / "config" / "config.yaml")
    assert cfg.study == (yaml.safe_load(path.read_text()).get("study") or "digits")


def test_merge_is_snakemakes_deep_merge():
    from snakemake.utils import update_config

    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3, "e": {"f": {"g": 1}}}
    overlay = {"a": {"c": [5]}, "e": {"f": {"h": 2}}, "i": None}
    expected = yaml.safe_load(yaml.safe_dump(base))
    update_config(expected, overlay)
    assert config.merge(base, overlay) == expected and base["a"]["c"] == [1, 2]  # the base left as it was


@pytest.mark.parametrize("overlay, changed", [
    ("audit.yaml", {"study", "audit"}), ("label_noise.yaml", {"study", "dataset"})])
def test_overlays_are_the_default_study_plus_what_they_say(overlay, changed):
    default = config.study(REPO / "config" / "config.yaml", REPO / "config" / "config.yaml").as_dict()
    merged = config.study(REPO / "config" / overlay, REPO / "config" / "config.yaml").as_dict()
    assert {k for k in default if default[k] != merged[k]} == changed


def test_an_overlay_alone_is_not_the_study_it_runs():
    """Validated alone, the audit overlay would train other models (the schema's defaults, not the default
    study's): the reason tests and docs validate the merged config."""
    alone = config.load(REPO / "config" / "audit.yaml")
    merged = config.study(REPO / "config" / "audit.yaml", REPO / "config" / "config.yaml")
    assert alone.dp_models != merged.dp_models


def test_reports_name_the_dataset_as_run():
    """Not "Tiny ImageNet-200" for 20 of its classes at 32x32: the classes, resolution, training size and flipped
    labels the options give."""
    assert config.dataset_as_run(config.load(REPO / "paper/imagenet_cpu/config.yaml")) == (
        "Tiny ImageNet-200, 20 classes at 32x32, 3,000 training images")
    assert config.dataset_as_run(config.load(REPO / "paper/digits_noise/config.yaml")).endswith(
        "3% of training labels flipped")
