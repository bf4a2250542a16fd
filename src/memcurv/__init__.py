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
