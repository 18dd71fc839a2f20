"""MNIST from the four original IDX files (LeCun, Cortes, Burges), verified and parsed with NumPy."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from helpers import settings
from helpers.data.download import fetch

MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
FILES = {  # split -> (images file, md5), (labels file, md5)
    "train": (("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
              ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432")),
    "test": (("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
             ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")),
}
# LeCun et al. 1998, §II-A: background -0.1 and foreground 1.175, so that the inputs have mean ~0, variance ~1.
PAPER_RANGE = (-0.1, 1.175)


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzipped IDX file (magic 0x0000 0x08 ndim, big-endian sizes, uint8 data)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but the file holds {data.size} values.")
    return data.reshape(shape)


def load_mnist(
    split: str = "train",
    *,
    normalization: str = "unit",
    pad_to_32: bool = False,
    limit: int | None = None,
    data_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 ``(n, 28, 28, 1)`` (or 32×32 with ``pad_to_32``) and int32 labels.

    normalization: ``"unit"`` scales to [0, 1]; ``"paper"`` maps background to -0.1 and ink to 1.175 as in
    LeCun et al. (1998); ``"none"`` keeps the raw 0-255 values. ``limit`` keeps the first n examples.
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    if normalization not in ("unit", "paper", "none"):
        raise ValueError(f"normalization must be 'unit', 'paper' or 'none', not {normalization!r}.")
    folder = Path(data_dir or settings.data_dir()) / "mnist"
    (img_name, img_md5), (lab_name, lab_md5) = FILES[split]
    images = read_idx(fetch(img_name, [m + img_name for m in MIRRORS], folder, img_md5))
    labels = read_idx(fetch(lab_name, [m + lab_name for m in MIRRORS], folder, lab_md5)).astype(np.int32)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if pad_to_32:
        # Pad the raw pixels with background (0) so the digit sits in the middle of a 32x32 field, as in the paper.
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    x = images.astype(np.float32)[..., None]
    if normalization == "unit":
        x /= 255.0
    elif normalization == "paper":
        low, high = PAPER_RANGE
        x = low + (high - low) * x / 255.0
    return x, labels


def mnist_dataset(split: str = "train", *, batch_size: int = 128, shuffle: bool | None = None, seed: int = 0, **kwargs):
    """The same arrays as a batched, prefetched ``tf.data.Dataset`` (shuffled for the training split)."""
    import tensorflow as tf

    x, y = load_mnist(split, **kwargs)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle if shuffle is not None else split == "train":
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
