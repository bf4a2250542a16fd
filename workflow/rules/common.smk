# Helpers shared by the rules: the resolved study config and the target lists it implies.
import yaml

from memcurv import config as memcurv_config
from memcurv.config import format_epsilon, num_shards

try:
    CFG = memcurv_config.validate(config)
except memcurv_config.ConfigError as error:
    raise WorkflowError(str(error)) from None

STUDY = CFG["study"]
RESULTS = f"results/{STUDY}"
LOGS = f"logs/{STUDY}"
BENCH = f"logs/{STUDY}/benchmarks"
TABLES = f"{RESULTS}/tables"
GPU = 1 if CFG["device"] == "cuda" else 0
CONDA_ENV = "../../environment.yml"  # jobs run in the active environment unless --sdm conda
DP_EPS = [format_epsilon(e) for e in CFG["dp_models"]["epsilons"]]
DP_SEEDS = CFG["dp_models"]["seeds"]
MEM_EPS = [format_epsilon(e) for e in CFG["mem_vs_epsilon"]["epsilons"]]
SUBSET_SHARDS = range(num_shards(CFG["memorization"]["num_models"], CFG["memorization"]["models_per_job"]))
DP_SUBSET_SHARDS = range(num_shards(CFG["mem_vs_epsilon"]["num_models"], CFG["mem_vs_epsilon"]["models_per_job"]))
FIGURE_TABLES = {
    "mem_vs_curvature": ["examples.csv"],
    "curvature_vs_epsilon": ["dp_models.csv"],
    "loss_vs_epsilon": ["dp_models.csv"],
    "accuracy_vs_epsilon": ["dp_models.csv"],
    "memorization_vs_epsilon": ["mem_vs_epsilon.csv"],
    "extremes": ["extremes.npz"],
}
FIGURES = tuple(FIGURE_TABLES)
REPORT_TABLES = ("dp_models.csv", "examples.csv", "subset_models.csv", "mem_vs_epsilon.csv")


def write_resolved_config(path: str) -> str:
    """The resolved config every job reads; rewritten only when it changes, so reruns stay no-ops."""
    text = yaml.safe_dump(CFG, sort_keys=True)
    if not os.path.exists(path) or open(path).read() != text:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return path


RESOLVED_CONFIG = write_resolved_config(f"{RESULTS}/config.yaml")


wildcard_constraints:
    eps=r"[0-9.e+-]+",
    seed=r"-?\d+",
    shard=r"\d+",


def all_outputs() -> list[str]:
    """Every figure of the study and its replication report."""
    figures = expand("figures/{study}/{figure}.{ext}", study=STUDY, figure=FIGURES, ext=("pdf", "png", "csv"))
    return [*figures, f"paper/{STUDY}.md"]


def experiment_epsilons(wildcards) -> str:
    return " ".join(DP_EPS if wildcards.experiment == "dp_models" else MEM_EPS)


def dp_metrics() -> list[str]:
    return expand(f"{RESULTS}/dp/eps{{eps}}/seed{{seed}}/metrics.json", eps=DP_EPS, seed=DP_SEEDS)


def dp_curvatures() -> list[str]:
    return expand(f"{RESULTS}/dp/eps{{eps}}/seed{{seed}}/curvature.npz", eps=DP_EPS, seed=DP_SEEDS)


def published_inputs() -> list[str]:
    """Feldman-Zhang's published scores (and their index map), when the config names them."""
    m = CFG["memorization"]
    return [path for path in (m["published_scores"], m["published_index_map"]) if path]


def subset_shards() -> list[str]:
    return expand(f"{RESULTS}/subsets/shard{{shard}}.npz", shard=SUBSET_SHARDS)


def dp_subset_shards() -> list[str]:
    return expand(f"{RESULTS}/mem_vs_epsilon/eps{{eps}}/shard{{shard}}.npz", eps=MEM_EPS, shard=DP_SUBSET_SHARDS)


