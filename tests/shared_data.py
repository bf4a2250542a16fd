"""Where the real data at hand lies: shared/data beside the checkout (as on CI and in the project's main checkout),
or the folder MEMCURV_SHARED_DATA names (a checkout elsewhere, e.g. a second worktree)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("MEMCURV_SHARED_DATA") or REPO.parent / "shared" / "data")


def archive_or_skip(name: str) -> Path:
    """The file `name` of the shared data; skipped where it is not on this machine, a failure on CI (which has it)."""
    path = ROOT / name
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI has shared/ beside the checkout, but {path} is missing")
        pytest.skip(f"{path} is not on this machine (set MEMCURV_SHARED_DATA to the folder that holds it)")
    return path
