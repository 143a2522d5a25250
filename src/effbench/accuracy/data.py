"""Image sets for evaluation and calibration: find the files and their labels, choose a subset, decode
them once (before any measuring) into cached uint8 pixels, hash their content.

An ImageFolder has one sub-folder per class; classes are indexed in the order torchvision gives them
(`sorted(entry.name for entry in os.scandir(root) if entry.is_dir())`), files within a class sorted,
walked recursively. A flat folder is a folder of images without class sub-folders: fine for
calibration, and for evaluation with a labels file that names the files.

Labels file (`--eval-labels`): maps class folder names or file names (relative path or bare name) to
the model's class indices. Either `.json` ({"name": index}), or text with one entry a line:
`NAME INDEX` (space, tab or comma between), or a list of names whose line order is the index (ImageNet's
`LOC_synset_mapping.txt`: `n01440764 tench, Tinca tinca`). Blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from effbench.accuracy.preprocess import Preprocess
from effbench.errors import UsageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
SKIP_FLAG = "--skip-bad-images"
Progress = Callable[[str, float, str], None]


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass
class ImageList:
    """The image files of a folder, in canonical order, with their class indices when known."""

    root: Path
    files: list[Path]
    labels: list[int] | None
    classes: list[str]  # ImageFolder class folders ([] for a flat folder)
    labels_source: str  # "imagefolder" | "file:<path>" | "none"
    option: str  # the command-line option that named the folder, for messages

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def _class_files(folder: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, _dirs, names in sorted(os.walk(folder, followlinks=True)):
        out.extend(Path(dirpath) / n for n in sorted(names) if is_image(n))
    return out


def find_images(
    root: str | Path,
    *,
    option: str = "--eval",
    labels_file: str | Path | None = None,
    num_classes: int | None = None,
    need_labels: bool = True,
    labels_option: str = "--eval-labels",
) -> ImageList:
    """The images under `root` and their labels; a one-line UsageError for every problem a user can fix.

    `num_classes`: the model's number of outputs (checks class counts and indices against it)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise UsageError(
            f"{option} {root}: no such folder (give a folder of images, or an ImageFolder with "
            "one sub-folder per class)"
        )
    if not root.is_dir():
        raise UsageError(f"{option} {root} is a file: give the folder that holds the images")
    root = root.resolve()
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    per_class = {c: _class_files(root / c) for c in classes}
    if any(per_class.values()):
        files = [f for c in classes for f in per_class[c]]
        folder_of = [c for c in classes for _ in per_class[c]]
    else:  # a flat folder: its own images only
        classes = []
        files = sorted(
            (root / n for n in os.listdir(root) if is_image(n) and (root / n).is_file()), key=lambda p: p.name
        )
        folder_of = []
    if not files:
        raise UsageError(
            f"{option} {root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} in the "
            "folder and in its class sub-folders)"
        )
    images = ImageList(root, files, None, classes, "none", option)
    if labels_file is not None:
        images.labels = _labels_from_file(images, folder_of, Path(labels_file).expanduser(), labels_option, num_classes)
        images.labels_source = f"file:{Path(labels_file).expanduser().resolve()}"
    elif classes and need_labels:
        empty = [c for c in classes if not per_class[c]]
        if empty:
            raise UsageError(
                f"{option} {root}: class folder '{empty[0]}' has no images (every sub-folder is a "
                "class: add images to it or remove it)"
            )
        if num_classes is not None and len(classes) != num_classes:
            # folder order is the model's class order only for the folders it was trained on (all of them)
            shown = ", ".join(classes[:3]) + (", ..." if len(classes) > 3 else "")
            raise UsageError(
                f"{option} {root} has {len(classes)} class folders ({shown}) but the model has {num_classes} "
                f"outputs, so folder order cannot say which output each folder is: pass {labels_option} FILE "
                f"mapping folder names to the model's class indices (a line per folder, e.g. '{classes[0]} 0')"
            )
        index = {c: i for i, c in enumerate(classes)}
        images.labels = [index[c] for c in folder_of]
        images.labels_source = "imagefolder"
    elif need_labels:
        raise UsageError(
            f"{option} {root} is a flat folder of images without labels: arrange one sub-folder per "
            f"class (ImageFolder) or pass {labels_option} FILE mapping file names to class indices"
        )
    return images


@dataclass
class LabelEntry:
    index: int
    line: int


def read_labels_file(path: Path, option: str = "--eval-labels") -> dict[str, LabelEntry]:
    """name -> class index (and the line that said so), from a JSON object or a text file."""
    if not path.is_file():
        raise UsageError(f"{option} {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{option} {path}: cannot read it ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{option} {path} is not valid JSON: {e}") from None
        if not isinstance(data, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
            raise UsageError(f'{option} {path}: expected a JSON object of name -> class index, e.g. {{"n01440764": 0}}')
        return {str(k): LabelEntry(v, 0) for k, v in data.items()}
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    lines = [(no, ln) for no, ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise UsageError(f"{option} {path} is empty: give one 'NAME INDEX' or one class name a line")
    tokens = [(no, re.split(r"[\s,]+", ln)) for no, ln in lines]
    explicit = [len(t) == 2 and re.fullmatch(r"-?\d+", t[1]) is not None for _, t in tokens]
    out: dict[str, LabelEntry] = {}
    if all(explicit):
        for no, (name, idx) in tokens:
            if name in out:
                raise UsageError(
                    f"{option} {path} line {no}: '{name}' is listed twice (lines {out[name].line} and {no})"
                )
            out[name] = LabelEntry(int(idx), no)
        return out
    if any(explicit):
        no = tokens[explicit.index(not explicit[0])][0]  # the first line unlike the first one
        raise UsageError(f"{option} {path} line {no}: mixes 'NAME INDEX' lines with a list of names: use one form")
    for position, (no, t) in enumerate(tokens):  # a list of names: the line order is the index
        if t[0] in out:
            raise UsageError(f"{option} {path} line {no}: '{t[0]}' is listed twice")
        out[t[0]] = LabelEntry(position, no)
    return out


def _labels_from_file(
    images: ImageList, folder_of: list[str], path: Path, option: str, num_classes: int | None
) -> list[int]:
    table = read_labels_file(path, option)
    labels: list[int] = []
    unmapped: list[str] = []
    for i, f in enumerate(images.files):
        rel = images.relative(f)
        folder = folder_of[i] if folder_of else None
        key = next((k for k in (rel, f.name, folder) if k is not None and k in table), None)
        if key is None:
            unmapped.append(folder or rel)
            continue
        entry = table[key]
        if entry.index < 0 or (num_classes is not None and entry.index >= num_classes):
            where = f" line {entry.line}" if entry.line else ""
            raise UsageError(
                f"{option} {path}{where}: '{key}' is class {entry.index}, but the model has "
                f"{num_classes} outputs (0-{(num_classes or 1) - 1}): fix the index, or use the labels "
                "file that belongs to this model"
            )
        labels.append(entry.index)
    if unmapped:
        what = "class folder" if folder_of else "file"
        if len(unmapped) == len(images.files):
            raise UsageError(
                f"{option} {path} names none of the {what}s in {images.option} {images.root} (e.g. "
                f"'{unmapped[0]}'): is it the labels file for this folder?"
            )
        raise UsageError(
            f"{option} {path} has no class for {what} '{unmapped[0]}' of {images.root} "
            f"({len(set(unmapped))} {what}(s) unmapped): add a line '{unmapped[0]} INDEX'"
        )
    return labels


def select(images: ImageList, limit: int | None) -> list[int]:
    """Indices of the images to use: all of them in order, or `limit` of them taken round-robin across
    classes (the first image of every class, then the second, ...), so a small subset is balanced."""
    n = len(images.files)
    if limit is None or limit >= n:
        return list(range(n))
    keys = images.labels if images.labels is not None else [images.files[i].parent.as_posix() for i in range(n)]
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    queues = list(groups.values())  # in canonical (class folder) order
    order: list[int] = []
    depth = 0
    while len(order) < limit:
        order.extend(g[depth] for g in queues if depth < len(g))
        depth += 1
    return order[:limit]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_hash(images: ImageList, chosen: list[int]) -> str:
    """sha256 over (relative path, label, sha256 of the bytes) of the chosen images, in order."""
    h = hashlib.sha256()
    for i in chosen:
        f = images.files[i]
        label = images.labels[i] if images.labels is not None else ""
        try:
            digest = _file_sha256(f)
        except OSError as e:
            raise UsageError(f"{images.option}: cannot read {f} ({e.strerror or e})") from None
        h.update(f"{images.relative(f)}\0{label}\0{digest}\n".encode())
    return h.hexdigest()


@dataclass
class PreparedImages:
    """Decoded, resized and cropped images (uint8, N x H x W x C) with their labels, ready to batch."""

    pixels: np.ndarray
    labels: np.ndarray | None  # int64 class indices, or None (calibration)
    files: list[str]  # relative to root, in the order of `pixels`
    dataset_hash: str
    preprocess: Preprocess
    root: str | None = None  # None: generated
    labels_source: str = "none"
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "error"} of unreadable images
    path: Path | None = None  # the cache folder that holds them (PreparedImages.open(path) in another process)

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    def batches(self, batch_size: int, *, pad: bool = True, wrap: bool = False) -> Iterator[tuple[np.ndarray, int]]:
        """(normalised N x C x H x W float32 batch, how many of its rows are real images).

        A last partial batch is padded to `batch_size` (sessions run one fixed shape): by repeating its
        last image (pad), or with images from the start of the set (wrap: calibration, every row real)."""
        n = len(self)
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(start + batch_size, n))
            valid = idx.size
            if valid < batch_size and (pad or wrap):
                extra = np.arange(batch_size - valid) % n if wrap else np.full(batch_size - valid, idx[-1])
                idx = np.concatenate([idx, extra])
                valid = batch_size if wrap else valid
            yield self.preprocess.normalize(self.pixels[idx]), valid

    def describe(self) -> dict[str, Any]:
        """The record's fields about the images themselves."""
        return {
            "images": len(self),
            "dataset": self.root,
            "dataset_hash": self.dataset_hash,
            "labels": self.labels_source,
            "preprocess": self.preprocess.to_dict(),
            "skipped_images": len(self.skipped),
            "skipped_files": [s["file"] for s in self.skipped[:20]],
        }

    @classmethod
    def open(cls, path: str | Path) -> PreparedImages:
        """A prepared set from its cache folder (memory-mapped pixels)."""
        path = Path(path)
        index = json.loads((path / "index.json").read_text())
        labels = np.load(path / "labels.npy") if (path / "labels.npy").is_file() else None
        return cls(
            np.load(path / "pixels.npy", mmap_mode="r"),
            labels,
            index["files"],
            index["dataset_hash"],
            Preprocess.from_dict(index["preprocess"]),
            index.get("root"),
            index.get("labels_source", "none"),
            index.get("skipped", []),
            path,
        )


def prepare_images(
    images: ImageList,
    preprocess: Preprocess,
    *,
    limit: int | None = None,
    skip_bad_images: bool = False,
    progress: Progress | None = None,
) -> PreparedImages:
    """Decode the chosen images into the artifact cache (once per content, preprocessing and options).

    An unreadable image is a one-line UsageError naming the file, or, with skip_bad_images, counted
    and left out (the set then holds fewer than `limit` images)."""
    from effbench.export.cache import get_or_build

    if limit is not None and limit < 1:
        raise UsageError(f"{images.option} limit {limit}: give a positive number of images")
    chosen = select(images, limit)
    digest = content_hash(images, chosen)
    parts = {
        "dataset_hash": digest,
        "preprocess": preprocess.to_dict(),
        "skip_bad_images": skip_bad_images,
        "layout": "NHWC-uint8",
    }

    def build(target: Path) -> None:
        pixels = np.empty((len(chosen), *preprocess.size, preprocess.channels), np.uint8)
        kept: list[Any] = []
        skipped: list[Any] = []
        for i in chosen:
            f = images.files[i]
            try:
                pixels[len(kept)] = preprocess.load(f)
            except (OSError, ValueError, SyntaxError) as e:  # what Pillow raises for a file it cannot decode
                if not skip_bad_images:
                    raise UsageError(
                        f"{images.option}: cannot read image {f}: {str(e).splitlines()[0][:120]} "
                        f"(fix or remove it, or pass {SKIP_FLAG} to count and skip it)"
                    ) from None
                skipped.append({"file": images.relative(f), "error": str(e).splitlines()[0][:200]})
                continue
            kept.append(i)
            if progress and len(kept) % 64 == 0:
                progress("prepare", (len(kept) + len(skipped)) / len(chosen), f"{len(kept)} images")
        if not kept:
            raise UsageError(f"{images.option} {images.root}: none of the {len(chosen)} images could be read")
        np.save(target, pixels[: len(kept)])
        if images.labels is not None:
            np.save(target.parent / "labels.npy", np.asarray([images.labels[i] for i in kept], np.int64))
        (target.parent / "index.json").write_text(
            json.dumps(
                {
                    "files": [images.relative(images.files[i]) for i in kept],
                    "skipped": skipped,
                    "dataset_hash": digest,
                    "preprocess": preprocess.to_dict(),
                    "labels_source": images.labels_source,
                }
            )
        )

    art = get_or_build("images", parts, "pixels.npy", build)
    out = PreparedImages.open(art.file.parent)
    out.root, out.labels_source = str(images.root), images.labels_source  # this call's, not the cache's first
    if progress:
        progress("prepare", 1.0, f"{len(out)} images" + (" (cached)" if art.cached else ""))
    return out


def generated_images(n: int, preprocess: Preprocess, seed: int = 0) -> PreparedImages:
    """`n` images of uniform random pixels: a stand-in for a calibration set, never for evaluation."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, *preprocess.size, preprocess.channels), dtype=np.uint8)
    digest = hashlib.sha256(f"generated uniform uint8 seed={seed} n={n} shape={pixels.shape}".encode()).hexdigest()
    return PreparedImages(pixels, None, [], digest, preprocess, None, "none")
