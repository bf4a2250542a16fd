"""memcurv: privacy, memorization and input-curvature links (Ravikumar et al., ICML 2024).

The package in layers, lowest first; a module imports only from its own layer and those below it
(tests/test_layout.py checks):

- `settings`, `seeds`, `io`, `tables`: typed settings, seeded streams, atomic files with provenance, and the
  catalogue of the tables a study writes;
- `data`: the dataset registry, the in-memory Dataset, label noise;
- `estimators`: curvature, memorization, privacy accounting, the audit's bound;
- `training`: models and how they are trained;
- `analysis`: reading a run's tables (theory, bootstrap intervals, the defects' readings, the claims' verdicts);
- `config`: a config validated against the schema, as `settings.StudyConfig`;
- `figures`, then `report`: what the tables show, drawn and in words;
- `jobs`: the workflow's jobs, and `cli`, the command line (`python -m memcurv <verb>`) that runs them.
"""

__version__ = "0.1.0"

# The estimators as a library (docs/library.md): importable from `memcurv`, loaded on first use, so that `import
# memcurv` (which the workflow does while it parses) costs nothing and pulls in neither torch nor Opacus.
API = {
    "curvature_scores": "memcurv.estimators.curvature",  # per-example input curvature of a model on a batch
    "piecewise_linear": "memcurv.estimators.curvature",  # whether a model's input Hessian is its Gauss-Newton part
    "subset_masks": "memcurv.estimators.memorization",  # Feldman-Zhang membership masks of K subset models
    "memorization": "memcurv.estimators.memorization",  # memorization from masks and per-model scores
    "aggregate_by_membership": "memcurv.estimators.memorization",  # a per-model quantity averaged with/without
    "epsilon_spent": "memcurv.estimators.privacy",  # epsilon of Poisson-subsampled Gaussian steps
    "calibrate_noise": "memcurv.estimators.privacy",  # the noise multiplier that spends a target epsilon
}
__all__ = ["__version__", *API]


def __getattr__(name: str) -> object:
    if name in API:
        import importlib

        return getattr(importlib.import_module(API[name]), name)
    raise AttributeError(f"module 'memcurv' has no attribute {name!r}")
