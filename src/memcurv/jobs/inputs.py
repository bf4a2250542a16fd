"""The files a study's config names, checked when the study starts (by the rule that writes its resolved config),
not after the hours of training that first read them: each failure names its config key and the fix."""

from __future__ import annotations

from pathlib import Path

from memcurv import io
from memcurv.analysis import cscores
from memcurv.config import ConfigError
from memcurv.settings import StudyConfig


def check_inputs(cfg: StudyConfig) -> None:
    """Jiang et al.'s C-scores (md5 unless dataset.verify_checksums is false, labels, ranges), Feldman and Zhang's
    published scores (keys tr_mem and tr_labels) and their index map, where the config names them. The dataset's
    own files are checked by the first jobs that read them, which come before any training."""
    m = cfg.memorization
    checks = {"memorization.cscores": (m.cscores, lambda p: cscores.read(Path(p), cfg.dataset.verify_checksums)),
              "memorization.published_scores": (m.published_scores, lambda p: io.read_npz(p, ("tr_mem", "tr_labels"))),
              "memorization.published_index_map": (m.published_index_map, _exists)}
    for key, (path, check) in checks.items():
        if path:
            try:
                check(path)
            except (ValueError, FileNotFoundError) as e:
                raise ConfigError(f"config key {key}: {e}") from None
    print("inputs checked: " + (", ".join(k for k, (p, _) in checks.items() if p) or "none named"))


def _exists(path: str) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found")
