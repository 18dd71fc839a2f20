"""Per-image random crops and flips, computed for a whole batch at once.

Keras's ``RandomCrop`` draws one offset per call, so mapped over a batch every image gets the same crop. Here
each image of the batch draws its own offset and its own flip, with two gathers and one select over the batch:
as cheap as the per-batch version, and the augmentation the papers describe.
"""

from __future__ import annotations

import tensorflow as tf


def pad_crop_flip(images, *, pad: int = 4, flip: bool = True, seed=None):
    """Zero-pad each side by ``pad`` pixels, cut a random crop of the original size, and flip half of them.

    ``images`` is a batch ``(b, h, w, c)``. This is the CIFAR-10 augmentation of He et al. (2015, §4.2):
    "4 pixels are padded on each side, and a 32×32 crop is randomly sampled from the padded image or its
    horizontal flip". ``seed``: a stateless seed (shape [2] int tensor) for reproducible draws.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"pad_crop_flip needs a batch of shape (b, h, w, c), not {images.shape}.")
    if pad < 0:
        raise ValueError(f"pad must be at least 0, not {pad}.")
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    top = tf.random.stateless_uniform([batch], seeds[0], maxval=2 * pad + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[1], maxval=2 * pad + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(height)[None, :]  # (b, h): the rows each image keeps
    cols = left[:, None] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    if flip:
        mirrored = tf.random.stateless_uniform([batch], seeds[2]) < 0.5
        out = tf.where(mirrored[:, None, None, None], tf.reverse(out, axis=[2]), out)
    return out
