"""GPU jobs sharing one card: memory estimates, GPU detection, the resources rules declare, the cap."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from memcurv.data.loading import load_dataset
from memcurv.jobs import resources
from memcurv.training.architectures import catalogue as architectures
from memcurv.training.models import build_model

REPO = Path(__file__).resolve().parents[1]
GPU_RULES = ("train_dp_models", "train_subset_models", "train_dp_subset_models")


def _saved_mb_per_input(model: torch.nn.Module, shape: tuple[int, int, int]) -> float:
    """MB autograd saves for the backward pass per input: the difference between two batch sizes."""
    def saved(batch: int) -> int:
        sizes = {}
        def pack(t: torch.Tensor) -> torch.Tensor:
            sizes[t.data_ptr(), t.numel()] = t.numel() * t.element_size()
            return t
        x = torch.randn(batch, *shape, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            F.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long), reduction="sum")
        return sum(sizes.values())
    return (saved(6) - saved(2)) / 4 / resources.MB


@pytest.mark.parametrize("name", list(architectures()))
def test_model_sizes_match_the_models(name):
    for shape, classes in (((3, 32, 32), 10), ((1, 8, 8), 7), ((3, 64, 64), 100)):
        model = build_model(name, shape, classes)
        assert resources.parameter_count(name, shape, classes) == sum(p.numel() for p in model.parameters())
    measured = _saved_mb_per_input(build_model(name, (3, 32, 32), 10), (3, 32, 32))
    assert resources.activation_mb(name, (3, 32, 32)) / resources.OVERHEAD == pytest.approx(measured, rel=0.1)


def test_resnet18_curvature_estimate_matches_the_measured_25_gb():
    """GPU.md: ResNet-18 curvature jobs on CIFAR at batch 256 x 10 probes took about 25 GB each."""
    assert resources.curvature_mb("resnet18", (3, 32, 32), 10, 256, 10) == pytest.approx(25_000, rel=0.05)
    assert resources.curvature_mb("resnet18", (3, 32, 32), 10, 256, 10, "hvp") > 45_000


def test_input_dims_match_the_loaded_datasets():
    for section in ({"name": "digits"}, {"name": "synthetic", "options": {"image_shape": [3, 6, 4], "num_classes": 4,
                                                                          "n_train": 40, "n_test": 10}}):
        ds = load_dataset(section["name"], **section.get("options", {}))
        assert resources.input_dims(section["name"], section.get("options", {})) == (ds.input_shape, ds.num_classes)
    assert resources.input_dims("imagenet", {"resolution": 96, "classes": ["a", "b"]}) == (
        (3, 96, 96), 2)
    with pytest.raises(ValueError, match="no input shape known for dataset 'mnist'"):
        resources.input_dims("mnist", {})


def test_job_estimates_follow_batches_privacy_and_curvature():
    from memcurv.config import load

    cfg = load(REPO / "config" / "cifar10.yaml")
    n = 50_000
    curvature = resources.curvature_mb("resnet18", (3, 32, 32), 10, 256, 10)
    dp = resources.job_gpu_mem_mb(cfg, "train_dp_subset_models", n)
    assert resources.job_gpu_mem_mb(cfg, "train_dp_models", n) == max(dp, curvature)  # trains, then scores
    # whole Poisson batches: about 256 + 3 sqrt(256) per pass
    cfg = replace(cfg, train=replace(cfg.train, physical_batch_size=None))
    assert resources.job_gpu_mem_mb(cfg, "train_dp_subset_models", n) > 3 * dp
    scored = resources.job_gpu_mem_mb(cfg, "train_subset_models", n)
    assert scored == curvature  # curvature needs more than training
    assert resources.job_gpu_mem_mb(cfg, "train_subset_models", n, scores_curvature=False) < scored / 4
    with pytest.raises(ValueError, match="no GPU memory estimate for job 'report'"):
        resources.job_gpu_mem_mb(cfg, "report", n)


def _fake_nvidia_smi(folder: Path, mib: list[int]) -> Path:
    """An nvidia-smi that reports `mib` per GPU and records its arguments."""
    folder.mkdir(exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\n" + "".join(f"echo {m}\n" for m in mib))
    smi.chmod(0o755)
    return smi


def test_gpu_memory_is_read_from_nvidia_smi_for_the_visible_gpus(tmp_path, monkeypatch):
    smi = _fake_nvidia_smi(tmp_path, [81559, 40960])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert resources.visible_gpu_memory_mb(str(smi)) == [85521, 42950]  # MiB reported, MB returned
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    resources.visible_gpu_memory_mb(str(smi))
    assert (tmp_path / "args").read_text().split()[-2:] == ["-i", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resources.visible_gpu_memory_mb(str(smi)) == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert resources.visible_gpu_memory_mb(str(tmp_path / "missing")) == []
    assert resources.uses_gpu("auto", [85521]) and resources.uses_gpu("cuda", []) and not resources.uses_gpu("auto", [])
    assert not resources.uses_gpu("cpu", [85521])
    assert resources.gpu_memory_cap([85521, 42950]) == int(85521 * resources.HEADROOM)  # jobs share the first GPU
    assert resources.gpu_memory_cap([]) is None


def _dry_run(tmp_path: Path, configs: list[Path], env: dict[str, str]) -> tuple[dict[str, set[tuple]], str]:
    """Each GPU rule's (gpu, gpu_mem_mb) pairs in a dry run, and its stderr."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
           "--dry-run", "--configfile", *map(str, configs)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert res.returncode == 0, res.stderr[-3000:]
    found: dict[str, set[tuple]] = {rule: set() for rule in GPU_RULES}
    rule = None
    for line in (res.stdout + res.stderr).splitlines():
        if line.startswith("rule "):
            rule = line[5:].rstrip(":")
        elif line.strip().startswith("resources:") and rule in found:
            values = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].replace(" ", "").split(","))
            found[rule].add((int(values["gpu"]), int(values["gpu_mem_mb"])))
    return found, res.stderr


def test_a_gpu_study_declares_gpu_memory_per_rule(tmp_path):
    curvature_models = tmp_path / "k.yaml"
    curvature_models.write_text("memorization: {curvature_models: 100}\n")  # shards 0 and 1 (50 models each) score
    found, _ = _dry_run(tmp_path, [REPO / "config" / "cifar10.yaml", curvature_models], {"CUDA_VISIBLE_DEVICES": ""})
    assert found["train_dp_models"] == {(1, resources.curvature_mb("resnet18", (3, 32, 32), 10, 256, 10))}
    assert {gpu for rule in GPU_RULES for gpu, _ in found[rule]} == {1}
    assert len(found["train_subset_models"]) == 2  # scoring shards need more than the others


def test_device_auto_asks_for_a_gpu_only_where_one_is_visible_and_caps_the_sum(tmp_path):
    config = [REPO / "config" / "config.yaml"]
    found, err = _dry_run(tmp_path, config, {"CUDA_VISIBLE_DEVICES": ""})
    assert all(found[rule] == {(0, 0)} for rule in GPU_RULES) and "GPU jobs share" not in err
    smi = _fake_nvidia_smi(tmp_path / "bin", [81559])
    found, err = _dry_run(tmp_path, config, {"PATH": f"{smi.parent}:{os.environ['PATH']}"})
    assert all(gpu == 1 and 0 < mem < 85521 for rule in GPU_RULES for gpu, mem in found[rule])
    assert f"at most {int(85521 * resources.HEADROOM)}" in err


def _paper_scale():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import paper_scale
    finally:
        sys.path.pop(0)
    return paper_scale


def test_paper_scale_counts_each_rules_steps():
    from memcurv.config import load
    from memcurv.training.train import dp_schedule

    ps = _paper_scale()
    cfg = load(REPO / "config" / "cifar10.yaml")
    cfg = replace(cfg, memorization=replace(cfg.memorization, curvature_models=100))
    sizes = ps.Sizes(256, 64, 256, 256, 10, 1024, 5)
    t = ps.StepTimes(dp={"fp32": 0.3, "auto": 0.1}, plain={"fp32": 0.06, "auto": 0.02}, curvature=0.5, evaluation=0.1)
    before = ps.device_hours(cfg, t, sizes, 50_000, 10_000, after=False)
    after = ps.device_hours(cfg, t, sizes, 50_000, 10_000, after=True)
    evaluation = 60_000 / 1024 * 0.1  # training and test sets, a model
    curvature = 50_000 / 256 * 0.5  # every training example, a scored model
    dp_training = dp_schedule(50_000, 256, 20)[1] * 0.3  # steps of 256 examples on average
    assert before["train_dp_models"] == (210, pytest.approx(210 * (dp_training + evaluation + curvature) / 3600))
    subset_training = 20 * 35_000 / 256 * 0.02  # 35,000 examples a subset model and epoch
    assert after["train_subset_models"] == (20, pytest.approx((1000 * (subset_training + evaluation)
                                                                + 100 * curvature) / 3600))
    jobs, hours = after["train_dp_subset_models"]
    assert jobs == 24 and hours < before["train_dp_subset_models"][1] / 2.9  # DP steps 3x faster in auto
    timed_smaller = ps.Sizes(64, 64, 64, 32, 5, 256, 5)  # per example (and probe) the same costs: the same hours
    t_smaller = ps.StepTimes(dp={p: v / 4 for p, v in t.dp.items()}, plain={p: v / 4 for p, v in t.plain.items()},
                             curvature=0.5 / 16, evaluation=0.1 / 4)
    smaller = ps.device_hours(cfg, t_smaller, timed_smaller, 50_000, 10_000, after=True)
    assert all(smaller[rule] == (jobs, pytest.approx(hours)) for rule, (jobs, hours) in after.items())


def test_paper_scale_runs_on_a_cpu_at_tiny_sizes():
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "paper_scale.py"), "--tiny", "--device", "cpu"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.strip()}
    for rule in (*GPU_RULES, "total"):
        assert all(float(v) >= 0 for v in rows[rule][-2:]), res.stdout
    assert "DP step / non-private step" in res.stdout and "auto (fp32)" in res.stdout
