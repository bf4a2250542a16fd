#!/bin/bash
# Issue 13's GPU measurements in one time-boxed pass (at most BUDGET seconds, 570 by default: under 10 minutes on
# one H100 or H200). Run from the project root: OUT=<folder> bash benchmarks/gpu_check.sh
# Each result is written to $OUT as soon as its step ends (a run killed at its limit keeps what was written):
#   all.log          versions, GPU, every step's start, end and exit status
#   paper_scale.txt  device-hours of config/cifar10.yaml per rule, before and after (and the step times)
#   packing.txt      8 DP ResNet-18s and their curvature through `snakemake --cores all` on one GPU: exit
#                    status, jobs that ran out of memory or retried, peak GPU memory used
#   packing.tgz      that run's job logs and Snakemake benchmark files
#   dp_overhead.txt  DP step time / non-private per grad_sample_mode (physical batch 64, then 256)
#   curvature.txt    memcurv's curvature against the released scorer's way
#   precision.txt    what bf16 and TF32 do to per-example gradients and curvature
# On an offline node, first build the wheels on a machine with network (GPU.md: ../shared/device/wheels.sh)
# into .whl/ and carry it; they are installed into /tmp/site. FAST=1 runs every step on a CPU in tiny sizes.
set -u
FAST=${FAST:-0}
BUDGET=${BUDGET:-570}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
T0=$(date +%s)
LOG=$OUT/all.log
if [ "$FAST" != 1 ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi
if ! command -v python >/dev/null; then  # the rules call `python -m memcurv`
  mkdir -p /tmp/bin && printf '#!/bin/sh\nexec python3 "$@"\n' > /tmp/bin/python && chmod +x /tmp/bin/python
  export PATH=$PATH:/tmp/bin
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src

# step NAME LIMIT FILE COMMAND...: run COMMAND for at most LIMIT seconds (less if the budget is running out),
# its output appended to $OUT/FILE; skipped when under 20 s of the budget are left.
step() {
  local name=$1 limit=$2 file=$3; shift 3
  local left=$(( BUDGET - ($(date +%s) - T0) ))
  if [ "$left" -lt 20 ]; then echo "=== $name skipped: ${left}s of the budget left" | tee -a "$LOG"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s, t=$(( $(date +%s) - T0 ))s): $*" | tee -a "$LOG" "$OUT/$file"
  local start=$(date +%s)
  timeout "$limit" "$@" >> "$OUT/$file" 2>&1
  echo "=== $name rc=$? took $(( $(date +%s) - start ))s" | tee -a "$LOG" "$OUT/$file"
}

{ nvidia-smi -L; python3 -c "import sys, torch, opacus, snakemake
print(sys.version.split()[0], 'torch', torch.__version__, 'opacus', opacus.__version__)
print('snakemake', snakemake.__version__, 'GPU:', torch.cuda.is_available() and torch.cuda.get_device_name())"
  nproc; git log --oneline -1; } >> "$LOG" 2>&1
cat "$LOG"

if [ "$FAST" = 1 ]; then
  DEV=cpu; TINY=--tiny; PER_BATCH=200; CORES=1
  PACK_EXTRA="model: small_cnn
curvature: {probes: 2}
dp_models: {epsilons: [10], seeds: [0, 1]}"
else
  DEV=cuda; TINY=; PER_BATCH=1000; CORES=all
  PACK_EXTRA="dp_models: {epsilons: [10], seeds: [0, 1, 2, 3, 4, 5, 6, 7]}"
fi

# 1. Device-hours of the paper's CIFAR-10 config, before and after.
step paper_scale 150 paper_scale.txt python3 benchmarks/paper_scale.py --config config/cifar10.yaml --device $DEV $TINY

# 2. Packing: the cifar10 config's DP models and curvature jobs with --cores all on one GPU (GPU.md: two of
#    eight curvature jobs died of CUDA out of memory before gpu_mem_mb). Random CIFAR-format images.
python3 - "$PER_BATCH" <<'EOF' >> "$LOG" 2>&1
import pickle, sys
from pathlib import Path
import numpy as np
per, folder = int(sys.argv[1]), Path("/tmp/cifar/cifar-10-batches-py")
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
def batch(name):
    pickle.dump({b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per).tolist()}, open(folder / name, "wb"))
for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
    batch(name)
pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, open(folder / "batches.meta", "wb"))
print("wrote", 5 * per, "random training images in CIFAR-10's format to", folder)
EOF
cat > /tmp/packing.yaml <<EOF
study: gpu_packing
device: auto
dataset: {root: /tmp/cifar, download: false, verify_checksums: false}
train: {epochs: 1}
$PACK_EXTRA
EOF
WORK=/tmp/packing
rm -rf $WORK && mkdir -p $WORK
if [ "$FAST" != 1 ]; then
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > /tmp/gpu_mem.csv 2>/dev/null &
  SMI=$!
fi
step packing 240 packing.txt snakemake -s "$PWD/Snakefile" -d $WORK --cores $CORES \
  --configfile "$PWD/config/cifar10.yaml" /tmp/packing.yaml -- results/gpu_packing/tables/dp_models.csv
[ "$FAST" != 1 ] && kill "$SMI" 2>/dev/null
{
  echo "jobs whose log says they ran out of GPU memory:"; grep -l "out of memory" -r $WORK/logs | grep -v benchmarks
  echo "retries (curvature or evaluation halving a batch):"; grep -h "out of GPU memory" -r $WORK/logs | head
  echo "curvature outputs: $(ls $WORK/results/gpu_packing/dp/*/curvature.npz 2>/dev/null | wc -l)"
  [ -s /tmp/gpu_mem.csv ] && echo "peak GPU memory used: $(sort -n /tmp/gpu_mem.csv | tail -1) MiB"
  echo "seconds per job (Snakemake benchmark files):"
  for f in $WORK/logs/gpu_packing/benchmarks/*/*.tsv; do
    echo "$(basename "$(dirname "$f")") $(tail -1 "$f" | cut -f1)"
  done
} >> "$OUT/packing.txt" 2>&1
tar czf "$OUT/packing.tgz" -C $WORK logs 2>/dev/null

# 3. DP overhead per grad_sample_mode at the recipe's physical batch (precision auto: TF32 on a GPU).
if [ "$FAST" = 1 ]; then
  step dp_overhead_p64 90 dp_overhead.txt python3 benchmarks/dp_overhead.py --model small_cnn --batch 64 --steps 2 \
    --device $DEV
else
  step dp_overhead_p64 70 dp_overhead.txt python3 benchmarks/dp_overhead.py --model resnet18 --batch 256 \
    --physical 64 --steps 5 --device $DEV
fi

# 4. Curvature against the released scorer's way.
if [ "$FAST" = 1 ]; then
  step curvature 90 curvature.txt python3 benchmarks/curvature.py --model small_cnn --n 64 --device $DEV
else
  step curvature 60 curvature.txt python3 benchmarks/curvature.py --model resnet18 --n 1024 --batch-size 128 \
    --device $DEV
fi

# 5. Precision: bf16 and TF32 against IEEE fp32 (per-example gradients, curvature).
if [ "$FAST" = 1 ]; then
  step precision 90 precision.txt python3 benchmarks/precision.py --model small_cnn --batch 16 --steps 2 --device $DEV
else
  step precision 60 precision.txt python3 benchmarks/precision.py --model resnet18 --batch 64 --steps 3 --device $DEV
fi

# 6. DP overhead at physical batch 256 (the whole logical batch in one pass), if time is left.
[ "$FAST" != 1 ] && step dp_overhead_p256 50 dp_overhead.txt python3 benchmarks/dp_overhead.py --model resnet18 \
  --batch 256 --steps 5 --device $DEV

echo "total $(( $(date +%s) - T0 ))s" | tee -a "$LOG"
