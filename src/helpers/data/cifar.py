"""CIFAR-10 (Krizhevsky 2009) as one folder tree of PNGs, decoded once into a uint8 cache.

Online, the official ``cifar-10-python.tar.gz`` is downloaded (md5-checked) and turned once into
``cifar10/{train,test}/<class>/<original file name>.png``; offline copies ship that same tree. Every load reads
the tree, so there is one code path: the 60,000 small files are decoded once and kept as uint8 arrays in the
course's cache folder, rebuilt when any file of the tree changes (name, size or modification time).
Unreadable, non-image or wrongly sized files are skipped and reported, like the image-folder loader does.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from helpers import settings
from helpers.data.download import DatasetUnavailableError, fetch
from helpers.data.images import FolderReport, balanced_sample
from helpers.files import written_whole

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
# The official order of batches.meta's label_names: label k of the archive is CLASS_NAMES[k].
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
IMAGE_SHAPE = (32, 32, 3)


# ---------------------------------------------------------------------------------------------------------
# The official archive → the tree


def _read_batch(tar: tarfile.TarFile, name: str) -> dict:
    member = tar.extractfile(f"cifar-10-batches-py/{name}")
    if member is None:
        raise KeyError(name)
    # The archive's md5 was checked before this point: these pickles are the published ones.
    return pickle.load(member, encoding="bytes")


def convert_archive(archive: Path | str, root: Path | str) -> Path:
    """Write the official archive's images as ``root/{train,test}/<class>/<file name>.png`` (lossless).

    The tree appears under its name only when complete: it is written beside ``root`` and renamed.
    """
    from PIL import Image

    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists; remove it to convert the archive again.")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".cifar10-") as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            names = [n.decode() for n in _read_batch(tar, "batches.meta")[b"label_names"]]
            if tuple(names) != CLASS_NAMES:
                raise ValueError(f"{archive}: unexpected class names {names}.")
            for split, batches in SPLITS.items():
                for name in names:
                    (Path(tmp) / split / name).mkdir(parents=True)
                for batch_name in batches:
                    batch = _read_batch(tar, batch_name)
                    # Each row is channel-major: 1,024 red values, then green, then blue, rows top to bottom.
                    images = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                    for image, label, filename in zip(images, batch[b"labels"], batch[b"filenames"]):
                        Image.fromarray(image).save(Path(tmp) / split / names[label] / filename.decode())
        os.replace(tmp, root)
        Path(tmp).mkdir()  # TemporaryDirectory removes its folder on exit
    return root


def ensure_cifar10(data_dir: Path | None = None) -> Path:
    """The ``cifar10`` tree in the data folder: the shipped one, or downloaded and converted on first use."""
    data_dir = Path(data_dir or settings.data_dir())
    root = data_dir / "cifar10"
    if all((root / split).is_dir() for split in SPLITS):
        return root
    if root.exists():
        raise DatasetUnavailableError(
            f"{root} is incomplete: it needs both train/ and test/ folders. Remove it to download CIFAR-10 "
            f"again from {URL}, or set {settings.DATA_DIR_ENV} to a folder that holds a complete cifar10/.")
    try:
        archive = fetch(ARCHIVE, [URL], data_dir, ARCHIVE_MD5, timeout=120)
    except DatasetUnavailableError as e:
        raise DatasetUnavailableError(
            f"CIFAR-10 is not in {root} (expected {root}/train/<class>/*.png and {root}/test/<class>/*.png) "
            f"and the archive could not be had. Download {URL} into {data_dir}/ (it is converted on first "
            f"use), or set {settings.DATA_DIR_ENV} to a folder that holds cifar10/.\n{e}") from e
    print(f"Converting {archive.name} into {root}/ (once) ...")
    return convert_archive(archive, root)


# ---------------------------------------------------------------------------------------------------------
# The tree → uint8 arrays, cached


def _list_split(folder: Path) -> list[tuple[str, int, int, int]]:
    """``(relative path, label, size, mtime_ns)`` of every file under ``folder/<class>/``, sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {folder} does not exist.")
    present = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if present != sorted(CLASS_NAMES):
        missing = sorted(set(CLASS_NAMES) - set(present))
        extra = sorted(set(present) - set(CLASS_NAMES))
        raise ValueError(f"{folder} must hold exactly the ten CIFAR-10 class folders {list(CLASS_NAMES)}"
                         + (f"; missing: {missing}" if missing else "") + (f"; unexpected: {extra}" if extra else ""))
    files = []
    for label, name in enumerate(CLASS_NAMES):
        with os.scandir(folder / name) as entries:
            for entry in entries:
                if entry.is_file() and not entry.name.startswith("."):
                    stat = entry.stat()
                    files.append((f"{name}/{entry.name}", label, stat.st_size, stat.st_mtime_ns))
    return sorted(files)


def _decode(path: Path) -> tuple[np.ndarray | None, str, str]:
    """``(pixels, status, reason)``: status "ok", "converted" (not RGB) or "skipped" (pixels None)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
            pixels = np.asarray(im.convert("RGB") if mode != "RGB" else im)
    except Exception as e:  # PIL raises many types for broken files
        return None, "skipped", f"cannot be decoded ({e})" if path.stat().st_size else "empty file"
    if pixels.shape != IMAGE_SHAPE:
        return None, "skipped", f"{pixels.shape[1]}×{pixels.shape[0]} pixels, not 32×32"
    if mode != "RGB":
        return pixels, "converted", f"{mode} image"
    return pixels, "ok", ""


def _cache_file(folder: Path) -> Path:
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    return settings.cache_dir() / "cifar10" / f"{folder.name}-{key}.npz"


def _fingerprint(files) -> str:
    return hashlib.sha1(json.dumps(files).encode()).hexdigest()


def read_split(folder: Path | str, workers: int = 4) -> tuple[np.ndarray, np.ndarray, FolderReport]:
    """Every image of ``folder/<class>/`` as uint8 ``(n, 32, 32, 3)``, int32 labels and a report.

    The first call decodes the files and caches the arrays; later calls read the cache unless a file was
    added, removed or changed since.
    """
    folder = Path(folder)
    files = _list_split(folder)
    fingerprint = _fingerprint(files)
    cache = _cache_file(folder)
    try:
        with np.load(cache) as saved:
            if str(saved["fingerprint"]) == fingerprint:
                report = FolderReport(root=folder, class_names=list(CLASS_NAMES), **json.loads(str(saved["report"])))
                return saved["images"], saved["labels"], report
    except (OSError, KeyError, ValueError):
        pass  # no cache yet, or a damaged one: decode again

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        # Opening 60,000 small files is most of the work; a few threads overlap it (≈ 1.2× on 2 cores).
        decoded = list(pool.map(lambda f: _decode(folder / f[0]), files))
    report = FolderReport(root=folder, class_names=list(CLASS_NAMES), counts={name: 0 for name in CLASS_NAMES})
    keep = []
    for (rel, label, _, _), (pixels, status, reason) in zip(files, decoded):
        if status == "skipped":
            report.skipped.append((rel, reason))
            continue
        if status == "converted":
            report.converted.append((rel, reason))
        keep.append((pixels, label))
        report.counts[CLASS_NAMES[label]] += 1
    if not keep:
        raise ValueError(f"{folder} has no usable 32×32 images.\n{report}")
    images = np.stack([pixels for pixels, _ in keep])
    labels = np.array([label for _, label in keep], dtype=np.int32)
    _save_cache(cache, images=images, labels=labels, fingerprint=np.array(fingerprint),
                report=np.array(json.dumps({"counts": report.counts, "skipped": report.skipped,
                                            "converted": report.converted})))
    return images, labels, report


def _save_cache(path: Path, **arrays) -> None:
    """Write the arrays beside ``path`` and rename: a reader never sees half a cache file."""
    try:
        with written_whole(path) as f:
            np.savez(f, **arrays)
    except OSError:
        pass  # a read-only (or full) cache folder only costs decoding again next time


def load_cifar10(split: str = "train", *, data_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``split`` ("train": 50,000, "test": 10,000) as uint8 ``(n, 32, 32, 3)`` images and int32 labels."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    images, labels, _ = read_split(ensure_cifar10(data_dir) / split)
    return images, labels


# ---------------------------------------------------------------------------------------------------------
# Arrays → tf.data pipelines


def balanced_indices(labels: np.ndarray, n: int | None, seed: int,
                     what: str = "the sample count") -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-balanced random sample of ``n`` examples (the image-folder loader's), and of the rest."""
    everything = np.arange(len(labels))
    chosen, _ = balanced_sample(everything.tolist(), labels.tolist(), n, seed, what)
    chosen = np.array(chosen, dtype=np.int64)
    return chosen, np.setdiff1d(everything, chosen)


@dataclasses.dataclass
class Cifar10Data:
    """Training, validation and test pipelines of CIFAR-10, the arrays behind them and what the scans found.

    Images in the pipelines are float32 with the training images' per-pixel mean subtracted (He et al. §4.2);
    ``display(images)`` adds the mean back for plotting.
    """

    train: object
    val: object | None
    test: object
    class_names: list[str]
    train_count: int
    val_count: int
    test_count: int
    mean: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    train_report: FolderReport
    test_report: FolderReport

    def display(self, images):
        """Pipeline images back to [0, 1] for plotting."""
        return np.clip(np.asarray(images) + self.mean, 0.0, 1.0)

    def __str__(self) -> str:
        return "\n".join([
            f"CIFAR-10: {self.train_count:,} training / {self.val_count:,} validation (split from train) / "
            f"{self.test_count:,} test images, classes {self.class_names}",
            str(self.train_report), str(self.test_report)])


def cifar10(
    *,
    batch_size: int,
    validation: int = 5000,
    train_samples: int | None = None,
    val_samples: int | None = None,
    test_samples: int | None = None,
    augment: bool = True,
    seed: int = 0,
    data_dir: Path | None = None,
) -> Cifar10Data:
    """CIFAR-10 as batched pipelines: ``validation`` images split from the 50,000 training ones (the paper's
    45k/5k; 0 for none), the 10,000 test images for reporting only.

    ``train_samples``/``val_samples``/``test_samples`` keep class-balanced random subsets (QUICK runs).
    ``augment`` applies the paper's 4-pixel pad, random 32×32 crop and horizontal flip to each training image.
    """
    import tensorflow as tf

    from helpers.data.augment import pad_crop_flip

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    root = ensure_cifar10(data_dir)
    x_train, y_train, train_report = read_split(root / "train")
    x_test, y_test, test_report = read_split(root / "test")
    if not 0 <= validation < len(y_train):
        raise ValueError(f"validation must be between 0 and {len(y_train) - 1} images, not {validation}.")
    val_index, train_index = balanced_indices(y_train, validation, seed) if validation else (np.arange(0), None)
    if train_index is None:
        train_index = np.arange(len(y_train))
    train_index = train_index[balanced_indices(y_train[train_index], train_samples, seed, "train_samples")[0]]
    val_index = (val_index[balanced_indices(y_train[val_index], val_samples, seed, "val_samples")[0]] if validation
                 else val_index)
    test_index = balanced_indices(y_test, test_samples, seed, "test_samples")[0]

    x_fit, y_fit = x_train[train_index], y_train[train_index]
    mean = x_fit.mean(axis=0, dtype=np.float64).astype(np.float32) / 255.0  # the per-pixel mean of §4.2
    mean_tensor = tf.constant(mean)

    def normalise(images, labels):
        return tf.cast(images, tf.float32) / 255.0 - mean_tensor, labels

    def pipeline(x, y, training):
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if training:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(normalise, num_parallel_calls=tf.data.AUTOTUNE)
        if training and augment:
            # Padding after the mean is subtracted pads with the mean image's "nothing", as fb.resnet.torch does.
            ds = ds.map(lambda images, labels: (pad_crop_flip(images), labels), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    return Cifar10Data(
        train=pipeline(x_fit, y_fit, training=True),
        val=pipeline(x_train[val_index], y_train[val_index], training=False) if len(val_index) else None,
        test=pipeline(x_test[test_index], y_test[test_index], training=False),
        class_names=list(CLASS_NAMES),
        train_count=len(train_index),
        val_count=len(val_index),
        test_count=len(test_index),
        mean=mean,
        test_images=x_test[test_index],
        test_labels=y_test[test_index],
        train_report=train_report,
        test_report=test_report,
    )
