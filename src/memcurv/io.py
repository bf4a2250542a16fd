"""Atomic file output and provenance: nothing half-written is ever left at a final path."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.settings import StudyConfig

DISK_FULL_BYTES = 1 << 20  # less free than this after a failed write: the disk was full
PACKAGES = ("memcurv", "torch", "torchvision", "opacus", "numpy", "scipy", "pandas", "matplotlib", "seaborn")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.
    A write that fails on a full disk says so: torch.save reports one only as "unexpected pos"."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=final.suffix or ".tmp", dir=final.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; give the mode open() would, for the group
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    except Exception as err:
        free = shutil.disk_usage(final.parent).free
        if free < DISK_FULL_BYTES and getattr(err, "errno", None) != errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on the disk holding {final.parent} ({free} bytes free) "
                                        f"while writing {final.name}") from err
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def current_umask() -> int:
    """This process's umask, read without changing it (Linux: /proc/self/status; elsewhere set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


class DamagedFile(ValueError):
    """A file the workflow wrote cannot be read back: the message names it and says how to rebuild it."""


def damaged(path: str | os.PathLike, cause: BaseException | str) -> DamagedFile:
    return DamagedFile(f"{path} is damaged ({cause}): delete it and rerun, and the workflow rebuilds it (a job's "
                       f"resume folder, results/<study>/resume/<job>, goes the same way)")


def read_npz(path: str | os.PathLike, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz table or shard (`keys`, or all), read at once without pickles; a damaged or truncated
    file, or one without a key asked for, is a DamagedFile naming it (numpy's own message would suggest
    allow_pickle=True, which would run code a file holds)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys or () if k not in z.files]
            if missing:
                raise damaged(path, f"it has no {', '.join(missing)}")
            return {k: z[k] for k in (keys or z.files)}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if isinstance(e, DamagedFile):
            raise
        raise damaged(path, f"{type(e).__name__}: {e}") from None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):  # the read-only mappings of memcurv.settings
        return dict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def config_hash(config: StudyConfig | Mapping[str, Any]) -> str:
    """Short stable hash of a resolved configuration, or of its plain data as a settings file holds it (key order
    does not matter): of a job's config, the settings the job reads (memcurv.jobs.reads)."""
    plain = config.as_dict() if isinstance(config, StudyConfig) else config
    text = json.dumps(plain, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# The committed outputs of the default study: regenerating them must not mark the run's own code dirty.
_GENERATED_EXCLUDES = (":(top,exclude)figures", ":(top,exclude)paper")


def git_state(cwd: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit and dirtiness (of code and configs, not of the committed figures and reports) of the
    checkout the run is in; 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *_GENERATED_EXCLUDES],
                cwd=cwd, capture_output=True, text=True, check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": dirty}


def provenance_path(result: str | os.PathLike) -> Path:
    """Where the provenance of a result file is written: beside it, `<name>.provenance.json`."""
    result = Path(result)
    return result.with_name(result.name + ".provenance.json")


_WRITTEN_PROVENANCE: list[Path] = []  # this process's, so that a failed job takes them back (discard_provenance)


def write_provenance(result: str | os.PathLike, record: dict[str, Any]) -> None:
    """The provenance of `result`, written after it."""
    path = provenance_path(result)
    write_json(path, record)
    _WRITTEN_PROVENANCE.append(path)


def discard_provenance() -> None:
    """Remove the provenance this process wrote: its job failed, and Snakemake deletes the job's outputs (the files
    they describe), which must not leave their provenance behind as if the results existed."""
    while _WRITTEN_PROVENANCE:
        _WRITTEN_PROVENANCE.pop().unlink(missing_ok=True)


def provenance(config: StudyConfig | None = None, seed: int | None = None, device: str | None = None) -> dict[str, Any]:
    """Everything a reader needs to trace a result file back to code, settings and machine."""
    out: dict[str, Any] = {
        "git": git_state(),
        "versions": package_versions(),
        "host": platform.node(),
        "platform": platform.platform(),
    }
    if config is not None:
        out["config_hash"] = config_hash(config)
    if seed is not None:
        out["seed"] = seed
    if device is not None:
        out["device"] = device
    return out


VOLATILE = ("provenance", "generated")  # keys whose values differ between a run and its recomputation


def compare_numbers(committed: Any, recomputed: Any, path: str = "", rel: float = 1e-6) -> list[str]:
    """Where two reports' numbers differ (beyond `rel` for floats), as key paths; provenance and dates aside."""
    if isinstance(committed, dict) and isinstance(recomputed, dict):
        keys = sorted(set(committed) | set(recomputed))
        return [d for k in keys if k not in VOLATILE
                for d in compare_numbers(committed.get(k), recomputed.get(k), f"{path}.{k}", rel)]
    if isinstance(committed, list) and isinstance(recomputed, list) and len(committed) == len(recomputed):
        return [d for i, (a, b) in enumerate(zip(committed, recomputed))
                for d in compare_numbers(a, b, f"{path}[{i}]", rel)]
    if isinstance(committed, float) and isinstance(recomputed, float | int):
        same = (math.isnan(committed) and math.isnan(recomputed)) or math.isclose(committed, recomputed, rel_tol=rel,
                                                                                   abs_tol=1e-12)
        return [] if same else [f"{path}: {committed} != {recomputed}"]
    return [] if committed == recomputed else [f"{path}: {committed!r} != {recomputed!r}"]
