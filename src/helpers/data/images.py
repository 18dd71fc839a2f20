"""Image folders laid out as ``<split>/<class>/<image>`` as streaming ``tf.data`` pipelines.

Files are read straight from disk (decode, resize, cache as uint8, shuffle, batch, augment, prefetch), never
held as one float array. Before any epoch runs, every file is checked once: empty files, non-images and
undecodable (e.g. truncated) images are skipped, PNG/GIF/BMP content and grayscale or CMYK JPEGs are decoded
to RGB, WebP files (which TensorFlow cannot decode) are read through a PNG copy in the cache, and both lists are reported. The check results are cached per file (size + mtime).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import random
import shutil
import tempfile
import zipfile
from pathlib import Path

from helpers import settings
from helpers.data.download import DatasetUnavailableError, fetch
from helpers.files import written_whole

CATS_AND_DOGS_URLS = [
    "https://download.mlcc.google.com/mledu-datasets/cats_and_dogs_filtered.zip",
    "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
]
SIGNATURES = {  # leading bytes -> format; anything else is not an image the pipeline can decode
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}
WEBP_REASON = "WebP content (read through a PNG copy in the cache)"
MEMORY_CACHE_LIMIT = 512 << 20  # bytes of decoded uint8 images cache="auto" keeps in RAM; beyond: stream


@dataclasses.dataclass
class FolderReport:
    """What a scan found: usable files per class, and the files skipped or converted, with reasons."""

    root: Path
    class_names: list[str]
    counts: dict[str, int]
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    converted: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        usable = ", ".join(f"{n} {c}" for c, n in self.counts.items())
        lines = [f"{self.root}: {sum(self.counts.values())} usable images ({usable})"]
        for title, items in (("skipped", self.skipped), ("converted to RGB", self.converted)):
            if items:
                lines.append(f"  {len(items)} {title}:")
                lines += [f"    {name}: {why}" for name, why in items[:20]]
                if len(items) > 20:
                    lines.append(f"    ... and {len(items) - 20} more")
        return "\n".join(lines)


def check_image(path: Path) -> tuple[str, str]:
    """``("ok" | "converted" | "skipped", reason)`` for one file, by its content rather than its name."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return "skipped", f"unreadable ({e.strerror})"
    if not head:
        return "skipped", "empty file"
    kind = next((k for sig, k in SIGNATURES.items() if head.startswith(sig)), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind = "WebP"
    if kind is None:
        return "skipped", "not an image (content is not JPEG, PNG, GIF, BMP or WebP)"
    try:
        with Image.open(path) as im:
            mode = im.mode
            if kind == "JPEG":
                im.draft("RGB", (64, 64))  # DCT-scaled decode: reads every byte, far faster than full size
            im.load()
    except Exception as e:  # PIL raises many types for broken files
        return "skipped", f"cannot be decoded ({e})"
    if kind == "WebP":
        return "converted", WEBP_REASON
    if kind != "JPEG":
        return "converted", f"{kind} content"
    if mode != "RGB":
        return "converted", f"{mode} JPEG"
    return "ok", ""


def as_png(path: Path) -> Path:
    """A PNG copy of the image at ``path`` in the cache (made once per file version), for formats that
    TensorFlow's decoders cannot read (WebP) but PIL can."""
    from PIL import Image

    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    target = settings.cache_dir() / "converted-images" / f"{key}.png"
    if target.is_file():
        return target
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
    except Exception as e:  # PIL raises many kinds; the caller skips the file and reports why
        raise ImageConversionError(f"PIL could not read it ({type(e).__name__}: {e})") from e
    try:
        with written_whole(target) as f:
            rgb.save(f, format="PNG")
    except OSError as e:
        raise OSError(f"cannot write the PNG copy of {path} into {target.parent} ({e}). WebP images are read "
                      f"through a PNG copy in the cache folder: point {settings.CACHE_DIR_ENV} at a writable "
                      "folder.") from e
    return target


class ImageConversionError(ValueError):
    """An image that looked convertible when checked could not be converted (it changed, or PIL failed)."""


def _manifest_path(root: Path) -> Path:
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return settings.cache_dir() / "image-checks" / f"{key}.json"


def _load_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a missing or damaged manifest only costs a re-check


def _save_manifest(path: Path, manifest: dict) -> None:
    try:
        with written_whole(path, "w") as f:
            json.dump(manifest, f)
    except OSError:
        pass  # read-only cache: checks are simply redone next time


def scan_image_folder(root: Path | str, workers: int = 8) -> tuple[list[str], list[int], FolderReport]:
    """List ``root/<class>/*`` files, check each, and return usable paths, integer labels and a report."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist.")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{root} has no class sub-folders; expected {root}/<class name>/<image files>.")
    files = [
        (label, path)
        for label, d in enumerate(class_dirs)
        for path in sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
    ]
    manifest_file = _manifest_path(root)
    manifest = _load_manifest(manifest_file)
    results: dict[str, list] = {}
    todo = []
    for _, path in files:
        rel = path.relative_to(root).as_posix()
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        cached = manifest.get(rel)
        if cached and cached[:2] == stamp:
            results[rel] = cached
        else:
            todo.append((rel, path, stamp))
    if todo:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for (rel, _, stamp), verdict in zip(todo, pool.map(lambda t: check_image(t[1]), todo)):
                results[rel] = stamp + list(verdict)
        _save_manifest(manifest_file, results)

    report = FolderReport(root=root, class_names=[d.name for d in class_dirs], counts={d.name: 0 for d in class_dirs})
    paths, labels = [], []
    for label, path in files:
        rel = path.relative_to(root).as_posix()
        status, reason = results[rel][2:]
        if status == "skipped":
            report.skipped.append((rel, reason))
            continue
        if status == "converted":
            report.converted.append((rel, reason))
            if reason == WEBP_REASON:
                try:
                    path = as_png(path)
                except ImageConversionError as e:
                    report.converted.pop()
                    report.skipped.append((rel, f"WebP, but {e}"))
                    continue
        paths.append(str(path))
        labels.append(label)
        report.counts[class_dirs[label].name] += 1
    if not paths:
        raise ValueError(f"{root} has no usable images.\n{report}")
    return paths, labels, report


def balanced_sample(paths: list, labels: list[int], n: int | None, seed: int,
                    what: str = "the sample count") -> tuple[list, list[int]]:
    """A class-balanced random subset of n examples (all of them when n is None; too large a count says so)."""
    if n is not None and n < 1:
        raise ValueError(f"{what} must be at least 1, not {n}.")
    if n is None or n >= len(paths):
        if n is not None and n > len(paths):
            print(f"{what}={n:,} asks for more than the {len(paths):,} images there: all {len(paths):,} are used.")
        return paths, labels
    rng = random.Random(seed)
    order = list(range(len(paths)))
    rng.shuffle(order)
    # Rank each example by its relative position within its own class: the first n by that rank hold
    # every class in proportion to its size.
    class_size = collections.Counter(labels)
    seen: collections.Counter = collections.Counter()
    position = {}
    for i in order:
        position[i] = (seen[labels[i]] + 0.5) / class_size[labels[i]]
        seen[labels[i]] += 1
    chosen = sorted(sorted(order, key=position.get)[:n])
    return [paths[i] for i in chosen], [labels[i] for i in chosen]


def _split(paths, labels, fraction: float, seed: int):
    """Stratified split of one folder into (train, validation) when no separate validation folder exists."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be between 0 and 1, not {fraction}.")
    n_val = max(1, round(len(paths) * fraction))
    val_p, val_l = balanced_sample(paths, labels, n_val, seed)
    chosen = set(val_p)
    train = [(p, l) for p, l in zip(paths, labels) if p not in chosen]
    return [p for p, _ in train], [l for _, l in train], val_p, val_l


def make_dataset(
    paths: list[str],
    labels: list[int],
    *,
    image_size: int,
    batch_size: int,
    training: bool,
    augment=None,
    cache: bool | str = "auto",
    seed: int = 0,
):
    """Stream (image, label) batches: float32 images in [0, 1] of shape (image_size, image_size, 3)."""
    import tensorflow as tf

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, [image_size, image_size], antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), label

    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    if training:
        # Shuffling file names first is free and mixes the classes even when the cache is off.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    # The scan already removed known-bad files; this keeps an unforeseen one from ending an epoch.
    ds = ds.ignore_errors(log_warning=True)
    if cache == "auto":
        cache = len(paths) * image_size * image_size * 3 <= MEMORY_CACHE_LIMIT
    if cache:
        ds = ds.cache()
        if training:
            ds = ds.shuffle(min(len(paths), 2048), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class ImageData:
    """Training and validation pipelines of one image folder, with what the scans found."""

    train: object
    val: object
    class_names: list[str]
    train_count: int
    val_count: int
    train_report: FolderReport
    val_report: FolderReport | None
    holdout: object | None = None  # images split from the training folder to make choices on (``holdout=``)
    holdout_count: int = 0
    holdout_split: int = 0  # how many were split off; more than holdout_count when val_samples cut them

    def __str__(self) -> str:
        held = f" / {self.holdout_count} held out from training" if self.holdout_count else ""
        if self.holdout_split > self.holdout_count:
            held += f" (of {self.holdout_split} split off; val_samples keeps {self.holdout_count})"
        lines = [f"classes: {self.class_names}; {self.train_count} training{held} / {self.val_count} validation "
                 "images", str(self.train_report)]
        if self.val_report is not None:
            lines.append(str(self.val_report))
        return "\n".join(lines)


def image_folder(
    train_root: Path | str,
    *,
    image_size: int,
    batch_size: int,
    val_root: Path | str | None = None,
    validation_fraction: float = 0.2,
    train_samples: int | None = None,
    val_samples: int | None = None,
    augment=None,
    cache: bool | str = "auto",
    seed: int = 0,
    holdout: float = 0.0,
) -> ImageData:
    """Pipelines for ``train_root/<class>/…``; validation from ``val_root`` or a stratified split of train.

    ``holdout`` (with ``val_root``): the fraction of the training images split off (stratified) into
    ``ImageData.holdout``, for choices that must not be made on the validation images. ``val_samples`` cuts the
    held-out images to the same count (QUICK runs), and the data's description says so.
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, not {image_size}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    paths, labels, train_report = scan_image_folder(train_root)
    val_report = None
    if val_root is not None:
        val_paths, val_labels, val_report = scan_image_folder(val_root)
        if val_report.class_names != train_report.class_names:
            raise ValueError(f"class folders differ: {train_report.class_names} in {train_root}, "
                             f"{val_report.class_names} in {val_root}.")
    else:
        paths, labels, val_paths, val_labels = _split(paths, labels, validation_fraction, seed)
    held_paths, held_labels = [], []
    if holdout:
        if not 0 < holdout < 1:
            raise ValueError(f"holdout must be a fraction between 0 and 1, not {holdout!r}.")
        if val_root is None:
            raise ValueError("holdout= splits the training folder beside a separate validation folder (val_root=); "
                             "without one, validation_fraction= already splits it.")
        paths, labels, held_paths, held_labels = _split(paths, labels, holdout, seed)
    paths, labels = balanced_sample(paths, labels, train_samples, seed, "train_samples")
    val_paths, val_labels = balanced_sample(val_paths, val_labels, val_samples, seed, "val_samples")
    common = dict(image_size=image_size, batch_size=batch_size, cache=cache, seed=seed)
    held_total = len(held_paths)
    if holdout and val_samples is not None and val_samples < held_total:  # QUICK: score choices on fewer, too
        held_paths, held_labels = balanced_sample(held_paths, held_labels, val_samples, seed)
    return ImageData(
        holdout=make_dataset(held_paths, held_labels, training=False, **common) if holdout else None,
        holdout_count=len(held_paths),
        holdout_split=held_total,
        train=make_dataset(paths, labels, training=True, augment=augment, **common),
        val=make_dataset(val_paths, val_labels, training=False, **common),
        class_names=train_report.class_names,
        train_count=len(paths),
        val_count=len(val_paths),
        train_report=train_report,
        val_report=val_report,
    )


def ensure_cats_and_dogs(data_dir: Path | None = None) -> Path:
    """The ``cats_and_dogs_filtered`` folder, downloaded and extracted on first use."""
    data_dir = Path(data_dir or settings.data_dir())
    root = data_dir / "cats_and_dogs_filtered"
    if (root / "train").is_dir() and (root / "validation").is_dir():
        return root
    archive = fetch("cats_and_dogs_filtered.zip", CATS_AND_DOGS_URLS, data_dir)
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"CRC error in {bad}")
            # Extract beside the target and rename, so an interrupted extraction leaves no half folder.
            with tempfile.TemporaryDirectory(dir=data_dir, prefix=".extract-") as tmp:
                zf.extractall(tmp)
                os.replace(Path(tmp) / "cats_and_dogs_filtered", root)
    except (zipfile.BadZipFile, FileNotFoundError) as e:
        archive.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        raise DatasetUnavailableError(
            f"{archive} is not a valid cats_and_dogs_filtered archive ({e}); it was removed. "
            f"Run again to download it from {CATS_AND_DOGS_URLS[0]}."
        ) from e
    return root


def cats_and_dogs(*, image_size: int, batch_size: int, data_dir: Path | None = None, **kwargs) -> ImageData:
    """Dogs vs. Cats (2,000 training / 1,000 validation JPEGs) as streaming pipelines."""
    root = ensure_cats_and_dogs(data_dir)
    return image_folder(root / "train", val_root=root / "validation", image_size=image_size,
                        batch_size=batch_size, **kwargs)
