"""The papers' training augmentation: per-image random crops and flips computed for a whole batch at once, and
AlexNet's recipe built from them (also VGG's).

Keras's ``RandomCrop`` draws one offset per call, so mapped over a batch every image gets the same crop. Here
each image of the batch draws its own offset and its own flip, with two gathers over the batch (a flip is a
gather that reads the columns backwards): the augmentation the papers describe.
"""

from __future__ import annotations

import tensorflow as tf

# AlexNet (and VGG) crop 224-pixel patches from 256-pixel images; keep that ratio at any size.
CROP_FRACTION = 224 / 256


def crop_flip(images, size=None, *, pad: int = 0, flip: bool = True, seed=None):
    """A random ``size`` crop of each image of a batch (after zero-padding each side by ``pad``), half of them
    mirrored left-right: every image draws its own offset and its own flip.

    ``images`` is a batch ``(b, h, w, c)``; ``size`` is ``(height, width)`` or one int (default: the image's own
    size, which with ``pad`` > 0 is the CIFAR augmentation). ``seed``: a stateless seed (shape [2] int tensor)
    for reproducible draws.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"crop_flip needs a batch of shape (b, h, w, c), not {images.shape}.")
    if pad < 0:
        raise ValueError(f"pad must be at least 0, not {pad}.")
    shape = tf.shape(images)
    batch = shape[0]
    if size is None:
        height, width = shape[1], shape[2]
    else:
        height, width = (size, size) if isinstance(size, int) else size
        if images.shape[1] is not None and (height > images.shape[1] + 2 * pad or width > images.shape[2] + 2 * pad):
            raise ValueError(f"cannot crop {height}×{width} from {images.shape[1]}×{images.shape[2]} images "
                             f"padded by {pad}.")
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) if pad else images
    top = tf.random.stateless_uniform([batch], seeds[0], maxval=shape[1] + 2 * pad - height + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[1], maxval=shape[2] + 2 * pad - width + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(height)[None, :]  # (b, height): the rows each image keeps
    columns = tf.range(width)[None, :]
    if flip:  # a mirrored image reads its columns right to left: the flip costs no extra pass over the batch
        mirrored = tf.random.stateless_uniform([batch], seeds[2]) < 0.5
        columns = tf.where(mirrored[:, None], width - 1 - columns, columns)
    cols = left[:, None] + columns
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def pad_crop_flip(images, *, pad: int = 4, flip: bool = True, seed=None):
    """Zero-pad each side by ``pad`` pixels, cut a random crop of the original size, and flip half of them.

    This is the CIFAR-10 augmentation of He et al. (2015, §4.2): "4 pixels are padded on each side, and a 32×32
    crop is randomly sampled from the padded image or its horizontal flip". Per image, as ``crop_flip``.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"pad_crop_flip needs a batch of shape (b, h, w, c), not {images.shape}.")
    return crop_flip(images, pad=pad, flip=flip, seed=seed)


def load_size(crop_size: int) -> int:
    """The image size to load so that a ``crop_size`` crop is 224/256 of it, as in AlexNet's paper."""
    return round(crop_size / CROP_FRACTION)


def alexnet_augmentation(crop_size: int, color_jitter=None):
    """AlexNet's training augmentation (§4.1), which VGG kept, as Keras preprocessing layers for batches.

    Random ``crop_size`` crops (of images loaded at ``load_size(crop_size)``) and horizontal flips, each image
    drawing its own (``helpers.layers.RandomCropFlip``), and, if given, the adapted PCA colour jitter
    (``helpers.layers.PCAColorJitter``, also drawn per image).
    """
    import keras

    from helpers.layers import RandomCropFlip

    steps = [RandomCropFlip(crop_size, crop_size, name="random_crop_flip")]
    if color_jitter is not None:
        steps.append(color_jitter)
    return keras.Sequential(steps, name="alexnet_augmentation")


def center_crop(crop_size: int):
    """The evaluation counterpart of ``alexnet_augmentation``: the central patch (the paper's single-crop test)."""
    import keras

    return keras.layers.CenterCrop(crop_size, crop_size, name="center_crop")
