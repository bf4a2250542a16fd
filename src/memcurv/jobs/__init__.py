"""The workflow's jobs: each verb of `python -m memcurv` runs one of them on a validated study config.

- `toolkit`: what every job uses (the study's dataset and device, fresh models, privacy settings, resumable
  training, shards, tables with provenance), and no job of its own;
- `study`: fetching the dataset and calibrating noise, before any experiment;
- the paper's experiments: `dp_models`, `subset_models` (memorization and per-example curvature; the top-k),
  `mem_vs_epsilon`, `extremes`;
- beyond the paper: `audit` (an empirical DP audit with canaries);
- `archive`: the tables behind a report, kept beside it, and everything recomputed from them;
- `resources`: the GPU memory each job declares, estimated while the workflow parses (no torch)."""
