"""GPU memory of the workflow's jobs: what each GPU rule declares, and what a machine has.

Snakemake starts every job whose resources fit, so on one GPU the jobs must say how much GPU memory
they need (``gpu_mem_mb``) and the machine's GPU memory must cap their sum; otherwise eight ResNet-18
curvature jobs of about 25 GB each start at once and some die (GPU.md).  The estimate and the detection
run when the Snakefile is parsed, so they import no torch: nvidia-smi answers for the GPUs, and the
models' sizes are arithmetic.  A job that runs out anyway halves its curvature or evaluation batch
(memcurv.estimators.batches, at run time); results are per example, so they do not change.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from memcurv.data import datasets
from memcurv.training.architectures import architecture
from memcurv.settings import StudyConfig

MB = 1e6
# GPU memory per saved MB: the backward pass's own buffers, the caching allocator's slack, cuDNN workspaces.
# Calibrated on the one measurement there is (GPU.md): ResNet-18 curvature at batch 256 x 10 probes took about
# 25 GB per job, i.e. 1000 MB + 2560 inputs x 4.7 MB x 2.
OVERHEAD = 2.0
CONTEXT_MB = 1000  # CUDA context and kernels, before any tensor
HEADROOM = 0.95  # share of a GPU's memory that jobs may claim together; the rest absorbs estimation error

def input_dims(name: str, options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    """(input shape C x H x W, number of classes) of dataset `name` under its options, without loading it."""
    specs = datasets.catalogue()
    if name not in specs:
        raise ValueError(f"no input shape known for dataset {name!r}: no such module in memcurv.data.datasets")
    return specs[name].input_dims(options)


def parameter_count(model: str, input_shape: tuple[int, int, int], num_classes: int) -> int:
    """Number of parameters of memcurv.training.models.build_model(model, input_shape, num_classes)."""
    return architecture(model).parameter_count(input_shape, num_classes)


def activation_mb(model: str, input_shape: tuple[int, int, int]) -> float:
    """GPU memory (MB) one input image takes in a forward and backward pass: what autograd saves per pixel (the
    architecture's measured SAVED_MB_PER_PIXEL) times OVERHEAD."""
    return architecture(model).saved_mb_per_pixel * input_shape[1] * input_shape[2] * OVERHEAD


def weights_mb(model: str, input_shape: tuple[int, int, int], num_classes: int) -> float:
    """MB of the model's fp32 parameters (and of each copy of them: gradients, optimizer state)."""
    return 4 * parameter_count(model, input_shape, num_classes) / MB


def poisson_chunk(batch_size: int, physical_batch_size: int | None) -> int:
    """Largest chunk a DP step puts through the model: the physical batch, or a large Poisson batch."""
    return physical_batch_size or batch_size + math.ceil(3 * math.sqrt(batch_size))


def training_mb(model: str, input_shape: tuple[int, int, int], num_classes: int, chunk: int, *,
                private: bool, train_size: int | None) -> int:
    """GPU memory (MB) of a training job: `chunk` examples per forward pass, the training set held on the GPU
    (train_size examples; None where unknown), weights, gradients and optimizer state, and under DP one
    gradient per example (Opacus materialises them for conv layers in every grad_sample_mode)."""
    params_mb = weights_mb(model, input_shape, num_classes)
    data_mb = 4 * (train_size or 0) * math.prod(input_shape) / MB
    per_example = chunk * params_mb if private else 0.0
    return math.ceil(CONTEXT_MB + chunk * activation_mb(model, input_shape) + 4 * params_mb + per_example + data_mb)


def curvature_mb(model: str, input_shape: tuple[int, int, int], num_classes: int, batch_size: int, probes: int,
                 method: str = "finite_difference", residual_probes: int = 2, split: bool = True) -> int:
    """GPU memory (MB) of scoring curvature, the larger of its two passes: the probe scores' batch_size x probes
    inputs with input gradients (double backward for hvp keeps about twice as much), and the trace's Jacobian
    (num_classes input gradients per example) beside its residual's batch_size x residual_probes double backward."""
    act = activation_mb(model, input_shape)
    probe_pass = batch_size * probes * act * (2 if method == "hvp" else 1)
    trace_pass = batch_size * (residual_probes * 2 * act + 4 * num_classes * math.prod(input_shape) / MB * split)
    return math.ceil(CONTEXT_MB + max(probe_pass, trace_pass) + weights_mb(model, input_shape, num_classes))


def job_gpu_mem_mb(cfg: StudyConfig, job: str, train_size: int | None, *, scores_curvature: bool = True) -> int:
    """GPU memory (MB) a rule's job needs under a validated config: the most any of its phases needs
    (`scores_curvature`: whether a subset-model shard scores curvature, see memorization.curvature_models)."""
    shape, classes = input_dims(cfg.dataset.name, cfg.dataset.options)
    model, c, dp, plain = cfg.model, cfg.curvature, cfg.train, cfg.memorization.train
    curvature = curvature_mb(model, shape, classes, c.batch_size, c.probes, c.method, c.residual_probes,
                             c.split_trace)
    dp_training = training_mb(model, shape, classes, poisson_chunk(dp.batch_size, dp.physical_batch_size),
                              private=True, train_size=train_size)
    subset_training = training_mb(model, shape, classes, plain.physical_batch_size or plain.batch_size,
                                  private=False, train_size=train_size)
    needs = {"train_dp_models": max(dp_training, curvature), "train_dp_subset_models": dp_training,
             "train_topk_control_models": subset_training,
             "train_subset_models": max(subset_training, curvature) if scores_curvature else subset_training}
    if job not in needs:
        raise ValueError(f"no GPU memory estimate for job {job!r}")
    return needs[job]


# --- What the machine has ---------------------------------------------------------------------------

def visible_gpu_memory_mb(smi: str | None = None) -> list[int]:
    """Memory (MB) of each GPU this process may use, from nvidia-smi (honouring CUDA_VISIBLE_DEVICES); empty
    where there is none, or no nvidia-smi to ask."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    smi = smi or shutil.which("nvidia-smi")
    if smi is None:
        return []
    cmd = [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    if visible:
        cmd += ["-i", visible.strip()]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [round(float(line) * 2**20 / MB) for line in out.split() if line.strip()]  # nvidia-smi gives MiB


def uses_gpu(device: str, gpu_memory: list[int]) -> bool:
    """Whether a study's jobs will run on a GPU: device cuda, or auto with a GPU visible."""
    return device == "cuda" or (device == "auto" and bool(gpu_memory))


def gpu_memory_cap(gpu_memory: list[int]) -> int | None:
    """The GPU memory (MB) that local jobs may claim together: every job runs on the first visible GPU
    (torch's "cuda"), so its memory, less headroom; None without a GPU."""
    return int(gpu_memory[0] * HEADROOM) if gpu_memory else None
