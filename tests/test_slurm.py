"""The cluster path without a cluster: the SLURM profile's settings and checks (dry runs against a stand-in
sinfo), the GPU request of each device setting, and the one download job. The real SLURM runs in .ci/slurm-test."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from memcurv.config import validate
from memcurv.data.loading import fetch, needs_download

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"


def dry_run(workdir: Path, *args: str, env: dict[str, str] | None = None,
            profile: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--dry-run",
           *(["--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm")] if profile else ["--cores", "1"]),
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def blocks(stdout: str) -> list[tuple[str, str]]:
    """A dry run's listing: (rule, the lines of its job) for each job."""
    out: list[tuple[str, list[str]]] = []
    for line in stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            out.append((line.split()[1].rstrip(":"), []))
        elif out and line.startswith("    "):
            out[-1][1].append(line.strip())
    return [(rule, "\n".join(lines)) for rule, lines in out]


def jobs(stdout: str) -> dict[str, list[str]]:
    """Each rule's jobs in a dry run's listing: the resources line of each."""
    out: dict[str, list[str]] = {}
    for rule, text in blocks(stdout):
        out.setdefault(rule, []).extend(line for line in text.splitlines() if line.startswith("resources:"))
    return out


@pytest.fixture
def cluster_env(tmp_path):
    """The environment of a SLURM submit host with partitions cpu and gpu and account lab (stand-ins for sinfo,
    sacctmgr and squeue)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {"sinfo": "echo cpu; echo gpu", "sacctmgr": "echo lab; echo lab", "squeue": "true", "sacct": "exit 1",
             "scontrol": "exit 1"}
    for tool, text in tools.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{text}\n")
        (bin_dir / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMCURV_SLURM")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def test_profile_stops_with_one_line_before_any_job_without_a_partition(tmp_path, cluster_env):
    res = dry_run(tmp_path, "--configfile", str(SMOKE), env=cluster_env, profile=True)
    assert res.returncode != 0
    assert "set MEMCURV_SLURM_PARTITION to the SLURM partition" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "results").exists()
    res = dry_run(tmp_path, "--configfile", str(SMOKE), env={**cluster_env, "MEMCURV_SLURM_PARTITION": "debug"},
                  profile=True)
    assert res.returncode != 0 and "MEMCURV_SLURM_PARTITION=debug is not a partition here; sinfo lists: cpu, gpu" in (
        res.stdout + res.stderr)
    res = dry_run(tmp_path, "--configfile", str(SMOKE), env={**cluster_env, "MEMCURV_SLURM_PARTITION": "cpu",
                                                             "MEMCURV_SLURM_ACCOUNT": "your-account"}, profile=True)
    assert res.returncode != 0 and "MEMCURV_SLURM_ACCOUNT=your-account is not one of your accounts: lab" in (
        res.stdout + res.stderr)


def test_auto_asks_for_a_gpu_on_the_gpu_partition_and_light_rules_stay_on_cpus(tmp_path, cluster_env):
    env = {**cluster_env, "MEMCURV_SLURM_PARTITION": "cpu", "MEMCURV_SLURM_GPU_PARTITION": "gpu",
           "MEMCURV_SLURM_ACCOUNT": "lab"}
    res = dry_run(tmp_path, "--configfile", str(SMOKE), "--config", "device=auto", env=env, profile=True)
    assert res.returncode == 0, res.stderr[-3000:]
    listed = jobs(res.stdout)
    for rule in ("train_dp_models", "train_subset_models", "train_dp_subset_models",
                 "train_topk_control_models"):
        assert all("slurm_partition=gpu" in r and "gpu=1" in r and "slurm_account=lab" in r for r in listed[rule]), rule
    for rule in ("examples_table", "extremes", "calibrate_noise", "report"):
        assert all("slurm_partition=cpu" in r and "gpu=" not in r for r in listed[rule]), rule
    assert "runtime=360" in listed["train_dp_models"][0]  # 3 h a model, smoke's 2 a job; the next attempt gets 720


def test_cpu_only_cluster_runs_auto_on_cpus_and_stops_cuda_or_a_cpu_study_on_gpus(tmp_path, cluster_env):
    env = {**cluster_env, "MEMCURV_SLURM_PARTITION": "cpu"}
    res = dry_run(tmp_path, "--configfile", str(SMOKE), "--config", "device=auto", env=env, profile=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert all("slurm_partition=cpu" in r and "gpu=0" in r for r in jobs(res.stdout)["train_dp_models"])
    res = dry_run(tmp_path, "--configfile", str(SMOKE), "--config", "device=cuda", env=env, profile=True)
    needs_gpus = "device = cuda on SLURM needs GPUs: set MEMCURV_SLURM_GPU_PARTITION"
    assert res.returncode != 0 and needs_gpus in res.stdout + res.stderr
    res = dry_run(tmp_path, "--configfile", str(SMOKE), "--config", "device=cpu", env={
        **env, "MEMCURV_SLURM_GPU_PARTITION": "gpu"}, profile=True)
    assert res.returncode != 0 and "device = cpu, but MEMCURV_SLURM_GPU_PARTITION" in res.stdout + res.stderr


def test_a_downloaded_dataset_is_fetched_by_one_local_job_before_any_reader(tmp_path):
    res = dry_run(tmp_path, "--configfile", str(REPO / "config" / "cifar10.yaml"))
    assert res.returncode == 0, res.stderr[-3000:]
    marker = "results/cifar10/data/download.json"
    listing = blocks(res.stdout)
    assert [rule for rule, _ in listing].count("download_data") == 1
    for reader in ("calibrate_noise", "subset_masks"):
        inputs = [text.split("output:")[0] for rule, text in listing if rule == reader]
        assert inputs and all(marker in text for text in inputs), reader
    no_cscores = tmp_path / "no_cscores.yaml"  # cifar10_cpu's C-score file is beside the repository, not here
    no_cscores.write_text("memorization: {cscores: null}\n")
    offline = dry_run(tmp_path, "--configfile", str(REPO / "config" / "cifar10_cpu.yaml"), str(no_cscores))
    assert offline.returncode == 0 and "download_data" not in offline.stdout


def test_fetch_checks_the_files_and_records_them(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_real_data import write_cifar10

    write_cifar10(tmp_path / "data")
    section = validate({"dataset": {"name": "cifar10", "root": str(tmp_path / "data"), "download": True,
                                    "verify_checksums": False}}).dataset
    assert needs_download(section) and not needs_download(replace(section, download=False))
    assert not needs_download(replace(section, name="cifar10_jpeg"))
    fetch(section, tmp_path / "download.json")
    record = json.loads((tmp_path / "download.json").read_text())
    assert record["dataset"] == "cifar10" and record["train"] == 20 and len(record["classes"]) == 10
    with pytest.raises(ValueError, match="not fetched"):
        fetch(replace(section, download=False), tmp_path / "never.json")
