"""What every dataset module shares: where its files are and how it was asked for (Source), what its reader
returns (Raw), and the helpers of the readers of archives: md5 sums and reading a tar.gz's members once.

Imports nothing heavy (no torch): the workflow reads the catalogue while it parses the Snakefile.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path("resources/data")  # dataset.root's default in the schema

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]  # uint8 images, labels, names


@dataclass(frozen=True)
class Source:
    """How a dataset is asked for, apart from its own options: a reader takes what it needs of this."""
    root: Path | None = None  # dataset.root; None where the caller named none
    download: bool = False  # fetch missing files from the internet (datasets that download)
    verify_checksums: bool = True  # check the md5 of the files read
    seed: int = 0  # the dataset's own randomness (a split, a generated set)
    cache_dir: Path | None = None  # where decoded images of compressed datasets are kept for later loads

    @property
    def folder(self) -> Path:
        """The data folder: dataset.root, or the schema's default."""
        return Path(self.root) if self.root is not None else DEFAULT_ROOT


@dataclass(frozen=True)
class Raw:
    """A reader's result: images (N, H, W, C) in [0, 1], int labels, class names; example ids are the rows'
    order.  Normalisation is load_dataset's business, so every dataset is normalised the same way; it works in
    place on float32 images, so a reader returns arrays of its own (not one it keeps)."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    ground_truth: dict[str, np.ndarray] = field(default_factory=dict)  # planted ids by kind (generated data)

    @classmethod
    def from_uint8(cls, arrays: Arrays) -> Raw:
        """From uint8 images (0..255), scaled to [0, 1] in float64 as every real dataset always was."""
        x_tr, y_tr, x_te, y_te, classes = arrays
        return cls(x_tr / 255.0, y_tr, x_te / 255.0, y_te, classes)


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_path(root: Path, name: str, title: str, expected_md5: str) -> Path:
    """The archive `name` in `root`, or a one-line error naming the file and the fix."""
    archive = Path(root) / name
    if not archive.is_file():
        raise FileNotFoundError(f"{title} archive {archive} not found; copy {name} (md5 {expected_md5}) there or "
                                f"point dataset.root at its folder")
    return archive


def archive_md5(archive: Path, title: str, expected_md5: str, verify_checksums: bool) -> str:
    """The archive's md5, checked unless `verify_checksums` is false, or a one-line error naming the file and the
    fix."""
    digest = md5(archive)
    if verify_checksums and digest != expected_md5:
        raise ValueError(f"{title} archive {archive} is damaged or another file (md5 {digest}, expected "
                         f"{expected_md5}); replace it with an intact copy, or set dataset.verify_checksums: false "
                         f"for an archive you built yourself")
    return digest


class DamagedArchive(ValueError):
    """A tar.gz that cannot be read to its end intact; the message names the file and the fix."""


def tar_members(archive: Path, keep: Callable[[tuple[str, ...]], bool],
                damaged: Callable[[str], str]) -> dict[tuple[str, ...], bytes]:
    """The bytes of every file of a tar.gz whose path parts `keep` accepts, read in one pass.  The gzip stream is
    read to its end, so its CRC is checked: a flipped byte stops here even without an md5 check, as does a cut
    archive.  `damaged(cause)` is the one-line error (naming the file and the fix) raised when it is damaged."""
    files = {}
    try:
        with gzip.open(archive, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r:") as tar:
                for member in tar:
                    parts = Path(member.name).parts
                    if member.isfile() and keep(parts):
                        files[parts] = tar.extractfile(member).read()  # type: ignore[union-attr]
            while gz.read(1 << 20):  # the rest of the stream, to its CRC
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DamagedArchive(damaged(_one_line(err))) from None
    return files


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def per_class_option(name: str, value: int | None, most: int) -> None:
    """An option that keeps the first images of each class: None (all) or 1..most, else a one-line error."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most):
        raise ValueError(f"dataset option {name} must lie in [1, {most}], got {value!r}")
