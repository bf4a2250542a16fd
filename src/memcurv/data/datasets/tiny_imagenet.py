"""Tiny ImageNet-200 (150 per class): the 200-class, 64x64 downsampled ImageNet subset of Stanford's CS231n, read
straight from `tiny-imagenet-200-sub.tar.gz` in dataset.root (no extraction).  The archive keeps the first 150
training images of each class (of 500) and the official validation set (50 per class) as the test set.

It is a stand-in for ImageNet, not ImageNet: 200 classes at 64x64 (or 32x32), 30,000 training images, so results
on it say nothing about the paper's ImageNet numbers beyond what a small, harder-than-CIFAR set can.

Example ids are class-major in the chosen classes' order (sorted WordNet ids, whatever order `classes` lists
them in), then numeric file order within a class: `<wnid>_0, _1, ..., _149` for training images (not the text
order _0, _1, _10, _100, ...) and `val_<k>` by the number k for test images.  Labels are 0..N-1 in the chosen
classes' order; class names are the first synonym of each WordNet id in words.txt ("goldfish").  Greyscale
JPEGs become RGB.  `resolution: 32` downsamples once at decode with PIL's BOX filter (each pixel the mean of a
2x2 block).  With a cache folder the whole archive is decoded once, at the resolution asked for, into one .npz
named by the archive's md5 and the resolution; without one only the images asked for are decoded.
"""

from __future__ import annotations

import io as bytes_io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.data.datasets._common import (Arrays, Raw, Source, archive_md5, archive_path, per_class_option,
                                           tar_members)
from memcurv.io import atomic_path

TITLE = "Tiny ImageNet-200"
NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # ImageNet's usual constants
DOWNLOADS = False
SLOW_TO_DECODE = True  # 40,000 JPEGs the first time: a job of its own, not one on a login node
FOLLOWS_CIFAR10_ORDER = False
ARCHIVE = "tiny-imagenet-200-sub.tar.gz"
MD5 = "0a68855659a07f755a6ba3c9ccae9ba4"
TOP = "tinyimagenet200_sub"  # the archive's top folder
NUM_CLASSES = 200
PER_CLASS = {"train": 150, "test": 50}
RESOLUTIONS = (64, 32)  # native, or downsampled 2x with PIL's BOX filter
_FILE = {"train": re.compile(r"^(n\d{8})_(\d+)\.JPEG$"), "test": re.compile(r"^val_(\d+)\.JPEG$")}


@dataclass(frozen=True)
class _Listing:
    """What the archive holds, checked: WordNet ids in sorted order, their names, and each class's JPEG bytes per
    split in numeric file order."""
    wnids: tuple[str, ...]
    names: dict[str, str]
    images: dict[str, dict[str, list[tuple[str, bytes]]]]  # split -> wnid -> [(file name, bytes)]


def _check_options(classes: int | Sequence[str] | None, train_per_class: int | None, test_per_class: int | None,
                   resolution: int) -> None:
    """Each option's value, before any file is read; a one-line error names the option."""
    if isinstance(classes, bool) or not (classes is None or isinstance(classes, int | list | tuple)):
        raise ValueError(f"dataset option classes must be a number of classes or a list of WordNet ids, "
                         f"got {classes!r}")
    if isinstance(classes, int) and not 1 <= classes <= NUM_CLASSES:
        raise ValueError(f"dataset option classes must lie in [1, {NUM_CLASSES}], got {classes}")
    if isinstance(classes, list | tuple) and (not classes or len(set(classes)) != len(classes)
                                              or not all(isinstance(c, str) for c in classes)):
        raise ValueError(f"dataset option classes must list distinct WordNet ids (e.g. n01443537), got {classes!r}")
    per_class_option("train_per_class", train_per_class, PER_CLASS["train"])
    per_class_option("test_per_class", test_per_class, PER_CLASS["test"])
    if resolution not in RESOLUTIONS:
        raise ValueError(f"dataset option resolution must be one of {list(RESOLUTIONS)}, got {resolution!r}")


def _checked_archive(root: Path, verify_checksums: bool) -> tuple[Path, str]:
    """The archive and its md5, or a one-line error naming the file and the fix."""
    archive = archive_path(root, ARCHIVE, TITLE, MD5)
    return archive, archive_md5(archive, TITLE, MD5, verify_checksums)


def _wanted(parts: tuple[str, ...]) -> bool:
    """The members read: wnids.txt, words.txt and the JPEGs of train/ and test/."""
    if len(parts) < 2 or parts[0] != TOP:
        return False
    return parts[1:] in (("wnids.txt",), ("words.txt",)) or (len(parts) == 4 and parts[1] in PER_CLASS
                                                            and parts[3].endswith(".JPEG"))


def _number(split: str, wnid: str, name: str) -> int | None:
    """A file's number (`<wnid>_<n>.JPEG`, `val_<k>.JPEG`), None for a name out of the layout."""
    match = _FILE[split].match(name)
    if match is None or (split == "train" and match.group(1) != wnid):
        return None
    return int(match.groups()[-1])


def _list(archive: Path) -> _Listing:
    """Read the archive once and check its layout: 200 WordNet ids, 150 training and 50 test images each."""
    files = tar_members(archive, _wanted, lambda cause: f"{TITLE} archive {archive} is damaged ({cause}); replace "
                                                        f"it with an intact copy (md5 {MD5})")
    where = f"{TITLE} archive {archive}"
    wnids = tuple(sorted(files.get((TOP, "wnids.txt"), b"").decode().split()))
    if len(wnids) != NUM_CLASSES or len(set(wnids)) != NUM_CLASSES:
        raise ValueError(f"{where}: {TOP}/wnids.txt should list {NUM_CLASSES} distinct WordNet ids, found "
                         f"{len(set(wnids))}; replace it with an intact copy (md5 {MD5})")
    images: dict[str, dict[str, list[tuple[int, str, bytes]]]] = {s: {w: [] for w in wnids} for s in PER_CLASS}
    for parts, data in files.items():
        if len(parts) != 4:
            continue
        split, wnid, name = parts[1:]
        number = _number(split, wnid, name)
        if wnid not in images[split] or number is None:
            raise ValueError(f"{where}: {'/'.join(parts)} is out of the layout ({TOP}/train/<wnid>/<wnid>_<n>.JPEG,"
                             f" {TOP}/test/<wnid>/val_<k>.JPEG, <wnid> in wnids.txt)")
        images[split][wnid].append((number, name, data))
    for split, want in PER_CLASS.items():
        wrong = {w: len(v) for w, v in images[split].items() if len(v) != want}
        if wrong:
            raise ValueError(f"{where}: {split}/ should hold {want} images in each of the {NUM_CLASSES} classes, "
                             f"found {dict(list(wrong.items())[:3])}{' ...' if len(wrong) > 3 else ''}")
    ordered = {s: {w: [(name, data) for _, name, data in sorted(v)] for w, v in per.items()}
               for s, per in images.items()}
    return _Listing(wnids, _names(files.get((TOP, "words.txt"), b""), wnids), ordered)


def _names(words: bytes, wnids: tuple[str, ...]) -> dict[str, str]:
    """Each WordNet id's first synonym in words.txt ("n01443537<TAB>goldfish, Carassius auratus"); the id itself
    where words.txt has none."""
    names = {}
    for line in words.decode().splitlines():
        wnid, _, synonyms = line.partition("\t")
        names[wnid.strip()] = synonyms.split(",")[0].strip()
    return {w: names.get(w) or w for w in wnids}


def _decode(archive: Path, name: str, data: bytes, resolution: int) -> np.ndarray:
    """One JPEG as uint8 (resolution, resolution, 3): RGB (greyscale converted), BOX-downsampled to 32x32."""
    from PIL import Image

    try:
        with Image.open(bytes_io.BytesIO(data)) as img:
            img = img.convert("RGB")
            if img.size != (resolution, resolution):
                img = img.resize((resolution, resolution), Image.Resampling.BOX)
            return np.asarray(img, dtype=np.uint8)
    except OSError as err:  # PIL's errors on broken image data
        raise ValueError(f"{TITLE} archive {archive}: {name} is not a readable JPEG ({err}); replace the archive "
                         f"with an intact copy (md5 {MD5})") from None


def _decode_split(archive: Path, listing: _Listing, split: str, chosen: Sequence[int], per_class: int,
                  resolution: int) -> np.ndarray:
    """The first `per_class` images of each chosen class (indices into the sorted WordNet ids), class-major."""
    from tqdm import tqdm

    items = [item for c in chosen for item in listing.images[split][listing.wnids[c]][:per_class]]
    images = [_decode(archive, name, data, resolution)
              for name, data in tqdm(items, desc=f"decoding {split}", disable=None, mininterval=5)]
    return np.stack(images)


def _chosen(wnids: Sequence[str], classes: int | Sequence[str] | None, archive: Path) -> list[int]:
    """The chosen classes as indices into the sorted WordNet ids, in that order."""
    if classes is None:
        return list(range(len(wnids)))
    if isinstance(classes, int):
        return list(range(classes))
    unknown = sorted(set(classes) - set(wnids))
    if unknown:
        raise ValueError(f"dataset option classes: unknown WordNet id(s) {unknown[:5]}"
                         f"{' ...' if len(unknown) > 5 else ''}; the ids are those of {TOP}/wnids.txt in {archive}")
    wanted = set(classes)
    return [i for i, w in enumerate(wnids) if w in wanted]


def _cache_path(cache_dir: Path, digest: str, resolution: int) -> Path:
    """Named by what sets the decoded pixels: the archive (its md5), the resolution and, below 64, the filter."""
    return Path(cache_dir) / f"tiny-imagenet-200-sub-{digest}-{resolution}px{'' if resolution == 64 else '-box'}.npz"


def _decoded_all(archive: Path, cache: Path, resolution: int) -> dict[str, np.ndarray]:
    """The whole archive at `resolution`, from the cache, or decoded once and written there."""
    if not cache.is_file():
        listing = _list(archive)
        every = range(NUM_CLASSES)
        decoded = {"x_train": _decode_split(archive, listing, "train", every, PER_CLASS["train"], resolution),
                   "x_test": _decode_split(archive, listing, "test", every, PER_CLASS["test"], resolution),
                   "wnids": np.array(listing.wnids), "names": np.array([listing.names[w] for w in listing.wnids])}
        with atomic_path(cache) as tmp, tmp.open("wb") as f:
            np.savez(f, **decoded)
        return decoded
    with np.load(cache) as z:
        return {key: z[key] for key in z.files}


def _rows(chosen: Sequence[int], per_class: int, stored: int) -> np.ndarray:
    """Rows of the first `per_class` images of each chosen class in a class-major array of `stored` per class."""
    return (np.asarray(chosen)[:, None] * stored + np.arange(per_class)[None, :]).ravel()


def load_arrays(root: Path, *, verify_checksums: bool = True, cache_dir: Path | None = None,
                classes: int | Sequence[str] | None = None, train_per_class: int | None = None,
                test_per_class: int | None = None, resolution: int = 64) -> Arrays:
    """The chosen images as uint8 (N, resolution, resolution, 3), labels 0..N-1 and class names, in the order of
    the module's docstring.  The archive's md5 (unless `verify_checksums` is false), WordNet ids and per-class
    counts are checked; with `cache_dir`, the whole archive is decoded there once (see the docstring)."""
    _check_options(classes, train_per_class, test_per_class, resolution)
    archive, digest = _checked_archive(root, verify_checksums)
    k_train, k_test = train_per_class or PER_CLASS["train"], test_per_class or PER_CLASS["test"]
    if cache_dir is None:  # decode only the images asked for
        listing = _list(archive)
        chosen = _chosen(listing.wnids, classes, archive)
        x_tr = _decode_split(archive, listing, "train", chosen, k_train, resolution)
        x_te = _decode_split(archive, listing, "test", chosen, k_test, resolution)
        names = tuple(listing.names[listing.wnids[c]] for c in chosen)
    else:
        full = _decoded_all(archive, _cache_path(cache_dir, digest, resolution), resolution)
        chosen = _chosen([str(w) for w in full["wnids"]], classes, archive)
        x_tr = full["x_train"][_rows(chosen, k_train, PER_CLASS["train"])]
        x_te = full["x_test"][_rows(chosen, k_test, PER_CLASS["test"])]
        names = tuple(str(full["names"][c]) for c in chosen)
    labels = np.arange(len(chosen), dtype=np.int64)
    return x_tr, np.repeat(labels, k_train), x_te, np.repeat(labels, k_test), names


def read(source: Source, *, classes: int | list[str] | None = None, train_per_class: int | None = None,
         test_per_class: int | None = None, resolution: int = 64) -> Raw:
    """Scaled to [0, 1] in float32 (the other datasets scale in float64): the full training set at 64x64 takes
    1.5 GB so, 3 GB in float64."""
    x_tr, y_tr, x_te, y_te, names = load_arrays(source.folder, verify_checksums=source.verify_checksums,
                                                cache_dir=source.cache_dir, classes=classes,
                                                train_per_class=train_per_class, test_per_class=test_per_class,
                                                resolution=resolution)
    return Raw(_unit(x_tr), y_tr, _unit(x_te), y_te, names)


def _unit(x: np.ndarray) -> np.ndarray:
    scaled = x.astype(np.float32)
    scaled /= np.float32(255)
    return scaled


def _num_classes(options: Mapping[str, Any]) -> int:
    classes = options.get("classes")
    return NUM_CLASSES if classes is None else classes if isinstance(classes, int) else len(classes)


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    r = options.get("resolution", 64)
    return (3, r, r), _num_classes(options)


def train_size(options: Mapping[str, Any]) -> int | None:
    """Known from the options (every class has its 150): checked on the way, so a bad value stops a config."""
    _check_options(options.get("classes"), options.get("train_per_class"), options.get("test_per_class"),
                   options.get("resolution", 64))
    return _num_classes(options) * (options.get("train_per_class") or PER_CLASS["train"])
