"""The papers' training augmentation: per-image random crops and flips computed for a whole batch at once, the same
as a Keras layer (``RandomCropFlip``), AlexNet's "fancy PCA" colour jitter (``PCAColorJitter``), and AlexNet's
recipe built from them (also VGG's).

Keras's ``RandomCrop`` draws one offset per call, so mapped over a batch every image gets the same crop. Here
each image of the batch draws its own offset and its own flip, with two gathers over the batch (a flip is a
gather that reads the columns backwards): the augmentation the papers describe.
"""

from __future__ import annotations

import keras
import numpy as np
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
    return gather_crops(padded, rows, left[:, None] + columns)


def gather_crops(images, rows, columns):
    """Each image's own window: image i keeps rows ``rows[i]`` and columns ``columns[i]`` (index arrays of shape
    (batch, height) and (batch, width); columns read backwards mirror it), in two gathers over the batch."""
    return tf.gather(tf.gather(images, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)


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


@keras.saving.register_keras_serializable(package="helpers")
class PCAColorJitter(keras.layers.Layer):
    """AlexNet's "fancy PCA" colour augmentation (Krizhevsky et al. 2012, §4.1).

    To every pixel of a training image add [p1 p2 p3]·[α1λ1, α2λ2, α3λ3]ᵀ, where p_i and λ_i are the
    eigenvectors and eigenvalues of the 3×3 covariance of RGB pixel values over the training set and
    α_i ~ N(0, 0.1) is drawn once per image (per presentation). It changes the intensity and colour of the
    lighting, not the object. Call ``adapt(training_images)`` first (as with keras.layers.Normalization);
    the layer is the identity at inference. Pixel values are not clipped, as in the paper.
    """

    def __init__(self, stddev=0.1, eigenvalues=None, eigenvectors=None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(f"stddev must be non-negative, not {stddev}.")
        self.stddev = float(stddev)
        self.eigenvalues = None if eigenvalues is None else np.asarray(eigenvalues, np.float32).reshape(3)
        self.eigenvectors = None if eigenvectors is None else np.asarray(eigenvectors, np.float32).reshape(3, 3)
        self.mean = None

    def adapt(self, data):
        """Fit p_i, λ_i to RGB images: an array (N, H, W, 3) or a tf.data set of images or (images, labels)."""
        total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
        batches = [data] if isinstance(data, np.ndarray) else data
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            pixels = np.asarray(images, np.float64).reshape(-1, np.shape(images)[-1])
            if pixels.shape[-1] != 3:
                raise ValueError(f"PCAColorJitter needs RGB images (3 channels), got {pixels.shape[-1]}.")
            total += pixels.sum(axis=0)
            outer += pixels.T @ pixels
            count += len(pixels)
        if count < 2:
            raise ValueError("PCAColorJitter.adapt needs at least two pixels.")
        mean = total / count
        self.mean = mean.astype(np.float32)  # the training set's RGB mean, which AlexNet and VGG subtract first
        covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # columns of eigenvectors are p_i
        self.eigenvalues = np.clip(eigenvalues, 0, None).astype(np.float32)
        self.eigenvectors = eigenvectors.astype(np.float32)

    def build(self, input_shape):
        if input_shape[-1] != 3:
            raise ValueError(f"PCAColorJitter needs RGB images (3 channels), got input shape {input_shape}.")

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        if self.eigenvalues is None:
            raise RuntimeError("PCAColorJitter has no colour statistics yet: call adapt(training_images) first.")
        alpha = tf.random.normal((tf.shape(inputs)[0], 3), stddev=self.stddev)
        shift = tf.matmul(alpha * self.eigenvalues, self.eigenvectors, transpose_b=True)  # Σ_i α_i λ_i p_i
        return inputs + tf.cast(shift[:, None, None, :], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev,
                "eigenvalues": None if self.eigenvalues is None else self.eigenvalues.tolist(),
                "eigenvectors": None if self.eigenvectors is None else self.eigenvectors.tolist()}


@keras.saving.register_keras_serializable(package="helpers")
class RandomCropFlip(keras.layers.Layer):
    """AlexNet's augmentation (§4.1) for a batch: a random ``height`` × ``width`` patch of each image, and a
    horizontal flip of half of them, each image drawing its own (``crop_flip`` above).

    Keras's ``RandomCrop`` draws one offset per call, so mapped over batches every image of a batch would share
    one crop. Outside training it returns the central patch (the paper's single-crop test).
    """

    def __init__(self, height, width, flip=True, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.flip = int(height), int(width), bool(flip)

    def call(self, inputs, training=False):
        if training:
            return crop_flip(inputs, (self.height, self.width), flip=self.flip)
        top = (tf.shape(inputs)[1] - self.height) // 2
        left = (tf.shape(inputs)[2] - self.width) // 2
        return inputs[:, top:top + self.height, left:left + self.width, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "flip": self.flip}



def alexnet_augmentation(crop_size: int, color_jitter=None):
    """AlexNet's training augmentation (§4.1), which VGG kept, as Keras preprocessing layers for batches.

    Random ``crop_size`` crops (of images loaded at ``load_size(crop_size)``) and horizontal flips, each image
    drawing its own (``RandomCropFlip``), and, if given, the adapted PCA colour jitter (``PCAColorJitter``, also
    drawn per image).
    """
    steps = [RandomCropFlip(crop_size, crop_size, name="random_crop_flip")]
    if color_jitter is not None:
        steps.append(color_jitter)
    return keras.Sequential(steps, name="alexnet_augmentation")


def center_crop(crop_size: int):
    """The evaluation counterpart of ``alexnet_augmentation``: the central patch (the paper's single-crop test)."""
    return keras.layers.CenterCrop(crop_size, crop_size, name="center_crop")
