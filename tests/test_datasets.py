"""The dataset catalogue: every module declares what the rest of the package reads, the schema accepts exactly the
catalogue's names, nothing outside a dataset's module names it, and a new dataset is one module (end to end)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from memcurv import config
from memcurv.data import datasets
from memcurv.data.datasets import FIELDS, catalogue
from memcurv.data.loading import load_dataset
from memcurv.jobs import resources

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"
NAMES = tuple(catalogue())  # read from the registry: a new dataset's module is checked here without editing this file
SHIPPED = ("cifar10", "cifar100", "cifar10_jpeg", "digits", "imagenet", "synthetic", "tiny_imagenet")
# Where a dataset's name may appear outside its module in src/ and workflow/, and why.
NAMED_ELSEWHERE = {
    "src/memcurv/config.schema.yaml": "the descriptions of dataset.name and dataset.options list the datasets",
    "workflow/profiles/slurm/config.yaml": "a usage example names config/cifar10.yaml",
}


def test_the_catalogue_holds_every_dataset_and_each_declares_every_field():
    specs = catalogue()
    assert set(SHIPPED) <= set(specs)
    for name, spec in specs.items():
        module = sys.modules[f"memcurv.data.datasets.{name}"]
        assert all(hasattr(module, f) for f in FIELDS), name
        assert isinstance(module.TITLE, str) and module.TITLE, name
        for flag in ("DOWNLOADS", "SLOW_TO_DECODE", "FOLLOWS_CIFAR10_ORDER"):
            assert isinstance(getattr(module, flag), bool), (name, flag)
        if spec.normalization is not None:
            mean, std = spec.normalization
            assert len(mean) == len(std) == spec.input_dims({})[0][0] and min(std) > 0, name
    shipped = {n: s for n, s in specs.items() if n in SHIPPED}
    assert [n for n, s in shipped.items() if s.follows_cifar10_order] == ["cifar10", "cifar10_jpeg"]
    assert [n for n, s in shipped.items() if s.downloads] == ["cifar10", "cifar100"]
    assert [n for n, s in shipped.items() if s.slow_to_decode] == ["imagenet", "tiny_imagenet"]
    assert datasets.title("cifar10_jpeg") == "CIFAR-10 (JPEG re-encoded)"
    assert datasets.title("tiny_imagenet") == "Tiny ImageNet-200"


def test_a_module_that_misses_a_field_is_refused_naming_it():
    module = SimpleNamespace(__name__="memcurv.data.datasets.half", TITLE="Half", read=lambda source: None)
    with pytest.raises(TypeError, match=r"memcurv.data.datasets.half does not declare \['NORMALIZATION', 'input_dims'"):
        datasets._spec("half", module)


def test_the_schema_accepts_exactly_the_catalogues_names():
    name = config.schema()["properties"]["dataset"]["properties"]["name"]
    assert name["enum"] == list(catalogue()) and name["default"] in catalogue()
    raw = yaml.safe_load((REPO / "src" / "memcurv" / "config.schema.yaml").read_text())
    assert "enum" not in raw["properties"]["dataset"]["properties"]["name"]  # filled in, never a second list
    for n in NAMES:
        assert config.validate({"dataset": {"name": n}}).dataset.name == n
    with pytest.raises(config.ConfigError, match="config key dataset.name: 'mnist' is not one of"):
        config.validate({"dataset": {"name": "mnist"}})


def test_options_are_checked_by_name_when_a_config_is_validated():
    with pytest.raises(config.ConfigError, match=r"dataset.options: unknown option\(s\) \['bogus'\] for dataset "
                                                 r"cifar10_jpeg; valid: \['test_per_class', 'train_per_class'\]"):
        config.validate({"dataset": {"name": "cifar10_jpeg", "options": {"bogus": 1}}})
    with pytest.raises(config.ConfigError, match="dataset cifar10 takes no options"):
        config.validate({"dataset": {"name": "cifar10", "options": {"resolution": 32}}})
    with pytest.raises(config.ConfigError, match="dataset option resolution must be one of"):
        config.validate({"dataset": {"name": "tiny_imagenet", "options": {"resolution": 48}}})


def test_train_sizes_and_input_dims_need_no_files():
    sizes = {"cifar10": ({}, 50_000), "cifar10_jpeg": ({"train_per_class": 7}, 70), "imagenet": ({}, None),
             "tiny_imagenet": ({"classes": ["n01443537", "n01629819"], "train_per_class": 5}, 10),
             "digits": ({"test_fraction": 0.5}, 898), "synthetic": ({"n_train": 40}, 40)}
    for name, (options, n) in sizes.items():
        assert datasets.train_size(name, options) == n, name
    assert datasets.train_size("tiny_imagenet", {}) == 30_000
    assert resources.input_dims("tiny_imagenet", {"classes": 10, "resolution": 32}) == ((3, 32, 32), 10)
    assert resources.input_dims("tiny_imagenet", {}) == ((3, 64, 64), 200)
    assert resources.input_dims("cifar100", {}) == ((3, 32, 32), 100)
    for name, options in (("digits", {"test_fraction": 0.5}), ("synthetic", {"n_train": 40, "image_shape": [3, 4, 5]})):
        ds = load_dataset(name, **options)
        assert resources.input_dims(name, options) == (ds.input_shape, ds.num_classes)
        assert datasets.train_size(name, options) == len(ds.y_train)


def _names_a_dataset(text: str, name: str) -> bool:
    """`name` as a word of its own (not part of cifar10-jpeg.tar.gz or tiny-imagenet-200)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_nothing_outside_a_datasets_module_names_it():
    files = [p for p in (*(REPO / "src").rglob("*"), *(REPO / "workflow").rglob("*"), REPO / "Snakefile")
             if p.is_file() and not p.is_symlink() and p.suffix in (".py", ".smk", ".yaml", ".rst", "")
             and "__pycache__" not in p.parts and not any(part.endswith(".egg-info") for part in p.parts)]
    # workflow/schemas/ links to the package's schema; pip install -e writes src/memcurv.egg-info/
    found = []
    for path in files:
        rel, text = str(path.relative_to(REPO)), path.read_text()
        for name in NAMES:
            own = rel == f"src/memcurv/data/datasets/{name}.py"
            if not own and rel not in NAMED_ELSEWHERE and _names_a_dataset(text, name):
                found.append(f"{rel}: {name}")
    assert not found, found
    for rel in NAMED_ELSEWHERE:  # the exceptions are still needed
        assert any(_names_a_dataset((REPO / rel).read_text(), name) for name in NAMES), rel
    assert _names_a_dataset("config/cifar10.yaml", "cifar10") and not _names_a_dataset("cifar10-jpeg.tar.gz", "cifar10")


THROWAWAY = '''"""A throwaway dataset: two classes of 4x4 colour squares, bright or dark, with noise."""

import numpy as np

from memcurv.data.datasets._common import Raw, Source

TITLE = "Throwaway squares (a test dataset)"
NORMALIZATION = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
DOWNLOADS = False
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = False


def read(source: Source, *, n_train: int = 200) -> Raw:
    rng = np.random.default_rng(source.seed)

    def draw(n):
        y = rng.integers(0, 2, n)
        x = 0.3 + 0.4 * y[:, None, None, None] + 0.15 * rng.standard_normal((n, 4, 4, 3))
        return np.clip(x, 0, 1), y

    (x_tr, y_tr), (x_te, y_te) = draw(n_train), draw(100)
    return Raw(x_tr, y_tr, x_te, y_te, ("dark", "bright"))


def input_dims(options):
    return (3, 4, 4), 2


def train_size(options):
    return options.get("n_train", 200)
'''


@pytest.mark.slow
def test_a_new_dataset_needs_only_its_module(tmp_path):
    """A copy of the package and the workflow with one dataset module added: a tiny study on it runs end to end,
    and its figures and report name the dataset by its title."""
    src, repo = tmp_path / "src", tmp_path / "repo"
    shutil.copytree(REPO / "src" / "memcurv", src / "memcurv", ignore=shutil.ignore_patterns("__pycache__"))
    repo.mkdir()
    for part in ("Snakefile", "workflow", "config", "environment.yml"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, repo / part)
    (src / "memcurv" / "data" / "datasets" / "throwaway.py").write_text(THROWAWAY)
    study = yaml.safe_load(SMOKE.read_text())
    study.update(study="throwaway", dataset={"name": "throwaway", "options": {"n_train": 200}})
    study["dp_models"]["seeds"] = [0]
    (tmp_path / "throwaway.yaml").write_text(yaml.safe_dump(study))
    env = {"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "w"),
                          "--configfile", str(tmp_path / "throwaway.yaml"), "--cores", "2"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    figures = tmp_path / "w" / "figures" / "throwaway"
    for name in ("mem_vs_curvature", "curvature_vs_epsilon", "loss_vs_epsilon", "memorization_vs_epsilon"):
        assert (figures / f"{name}.png").stat().st_size > 0, name
    report = (tmp_path / "w" / "paper" / "throwaway.md").read_text()
    assert "Dataset Throwaway squares (a test dataset), 2 classes at 4x4, 200 training images (`throwaway`)" in report
