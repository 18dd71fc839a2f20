"""The tricks of the CIFAR-10 speed records (Page 2018; tysam-code's hlb-CIFAR10; Jordan 2024, "94% on CIFAR-10
in 3.29 seconds"), one small piece each, written for reading. Notebook 08 adds them one at a time.

- ``whitening_kernel``: a frozen first convolution that decorrelates 2×2 patches (PCA whitening), from NumPy.
- ``Dirac``: identity initialisation of a convolution (it starts by passing its input through).
- ``Bias``: a trainable per-channel offset, for a convolution whose kernel is frozen.
- ``triangle``: warm-up then linear decay of the learning rate, by step.
- ``ScaledSGD``: Nesterov SGD with weight decay in the gradient, a larger learning rate for chosen variables
  (BatchNorm biases) and gates that stop a variable's training (the whitening bias after a few epochs).
- ``Lookahead``: every few steps, pull the weights towards their running average (an EMA of the weights).
- ``flip_translate_batches``: random translation and *alternating* flips (each image flipped every other epoch).
- ``tta_logits``: test-time augmentation, the average of the logits of flipped and translated views.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops


# ---------------------------------------------------------------------------------------------------------
# Initialisation


def patches(images: np.ndarray, size: int) -> np.ndarray:
    """Every ``size``×``size`` patch of ``images`` (N, H, W, C), flattened in (row, column, channel) order —
    the order of a Keras Conv2D kernel's first three axes."""
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))  # N, H', W', C, s, s
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * images.shape[-1])


def whitening_kernel(images: np.ndarray, size: int = 2, eps: float = 5e-4) -> np.ndarray:
    """A ``size``×``size`` Conv2D kernel (size, size, C, 2·size²·C) whose outputs have unit, uncorrelated
    variance on the patches of ``images``: the covariance's eigenvectors divided by √(eigenvalue + eps),
    each twice, with both signs (so that the GELU after it passes every direction).

    ``eps`` keeps the nearly-constant directions (tiny eigenvalues) from being blown up into noise.
    """
    flat = patches(np.asarray(images, np.float64), size)
    covariance = flat.T @ flat / len(flat)  # about the origin, as the reference does (the data are centred)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]  # largest variance first
    filters = eigenvectors / np.sqrt(eigenvalues + eps)  # column i = one output channel
    kernel = np.concatenate([filters, -filters], axis=1)
    return kernel.reshape(size, size, images.shape[-1], -1).astype("float32")


@keras.saving.register_keras_serializable(package="helpers")
class Dirac(keras.initializers.Initializer):
    """Identity initialisation: output channel i copies input channel i (for i < input channels); the other
    output channels keep PyTorch's default uniform initialisation (±1/√fan_in).

    A "same"-padded convolution initialised so passes its input through unchanged at the start, as a residual
    block whose F starts at zero would; airbench and hlb-CIFAR10 use it in a plain VGG-style stack instead of
    residual connections."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        height, width, channels_in, channels_out = shape
        base = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=self.seed)(shape, dtype)
        identity = np.zeros(shape, "float32")
        copied = min(channels_in, channels_out)
        identity[height // 2, width // 2, np.arange(copied), np.arange(copied)] = 1.0
        keep = np.ones(shape, "float32")
        keep[..., :copied] = 0.0
        return base * keep + identity

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="helpers")
class Bias(keras.layers.Layer):
    """Adds a trainable per-channel offset: the bias of a convolution whose kernel is frozen."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)


# ---------------------------------------------------------------------------------------------------------
# Optimisation


@keras.saving.register_keras_serializable(package="helpers")
class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """``peak_rate`` × a piecewise-linear factor by step: ``start`` at step 0, 1 at ``peak`` × total steps,
    ``end`` at the last step (warm-up, then linear decay)."""

    def __init__(self, peak_rate: float, total_steps: int, start: float = 0.2, peak: float = 0.23, end: float = 0.07):
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, not {total_steps}.")
        self.peak_rate, self.total_steps, self.start, self.peak, self.end = peak_rate, total_steps, start, peak, end

    def factor(self, step):
        top = float(max(1, int(self.peak * self.total_steps)))  # the step of the peak, as the reference rounds it
        step = ops.cast(step, "float32")
        warm = self.start + (1.0 - self.start) * step / top
        decay = 1.0 + (self.end - 1.0) * (step - top) / max(1.0, self.total_steps - top)
        return ops.where(step < top, warm, decay)

    def __call__(self, step):
        return self.peak_rate * self.factor(step)

    def get_config(self):
        return {"peak_rate": self.peak_rate, "total_steps": self.total_steps, "start": self.start,
                "peak": self.peak, "end": self.end}


class ScaledSGD(keras.optimizers.SGD):
    """Nesterov SGD, as the speed records use it (PyTorch's ``torch.optim.SGD`` with two parameter groups):

    - ``weight_decay_per_step``: the decay each step takes from every weight at the full learning rate, added to
      the gradient (so it goes through momentum, as in PyTorch) and not scaled by ``lr_scales``;
    - ``lr_scales``: [(variable, factor)], e.g. ×64 for BatchNorm biases, which barely move otherwise;
    - ``gates``: [(variable, keras.Variable)], 1 to train, 0 to stop training that variable (a callback
      sets it; ``GateOff`` closes the whitening bias's after a few epochs).
    """

    def __init__(self, learning_rate, *, momentum: float, weight_decay_per_step: float = 0.0, lr_scales=None,
                 gates=None, peak_rate: float | None = None, **kwargs):
        super().__init__(learning_rate, momentum=momentum, nesterov=True, **kwargs)
        peak = peak_rate if peak_rate is not None else float(learning_rate)
        self.decay = weight_decay_per_step / peak  # per unit learning rate, so that lr × decay = the step's decay
        # Keyed as the optimizer keys its own slots: the backend may hand update_step the backend variable.
        self.lr_scales = {self._var_key(v): factor for v, factor in (lr_scales or [])}
        self.gates = {self._var_key(v): gate for v, gate in (gates or [])}

    def update_step(self, gradient, variable, learning_rate):
        key = self._var_key(variable)
        gradient = ops.cast(gradient, variable.dtype) * self.lr_scales.get(key, 1.0)
        if self.decay:
            gradient = gradient + self.decay * variable
        if key in self.gates:
            gradient = gradient * ops.cast(self.gates[key], variable.dtype)
        super().update_step(gradient, variable, learning_rate)


class GateOff(keras.callbacks.Callback):
    """Closes ``gate`` (sets it to 0: that variable stops training) at the start of epoch ``epoch``."""

    def __init__(self, gate, epoch: int):
        super().__init__()
        self.gate, self.epoch = gate, epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.gate.assign(1.0 if epoch < self.epoch else 0.0)


class Lookahead(keras.callbacks.Callback):
    """Every ``every`` steps from epoch ``start_epoch`` on, move a running average of all the model's weights
    (BatchNorm statistics included) towards the current ones and copy it back into the model:
    ``average ← ρ·average + (1 − ρ)·weights; weights ← average``, with ρ = ``base``·(step / total)³, small at
    first (follow the optimiser), ``base`` at the end (average strongly). At each epoch's end the model takes
    the average. (Zhang et al. 2019's Lookahead, with the weight average of Polyak and Izmailov et al.) airbench
    updates from the first step; ``start_epoch=3`` is this course's."""

    def __init__(self, total_steps: int, *, every: int = 5, start_epoch: int = 3, base: float = 0.95**5):
        super().__init__()
        self.total_steps, self.every, self.start_epoch, self.base = total_steps, every, start_epoch, base
        self.average, self.epoch, self.step = None, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.epoch < self.start_epoch or self.step % self.every:
            return
        if self.average is None:
            self.average = [tf.Variable(weight.value, trainable=False) for weight in self.model.weights]
            return
        rho = self.base * (self.step / self.total_steps) ** 3
        for weight, average in zip(self.model.weights, self.average):
            average.assign(rho * average + (1.0 - rho) * weight.value)
            weight.assign(average)

    def on_epoch_end(self, epoch, logs=None):
        if self.average is not None:
            for weight, average in zip(self.model.weights, self.average):
                weight.assign(average)


# ---------------------------------------------------------------------------------------------------------
# Data augmentation, in training and at test time


def _translate(padded, shifts, size: int):
    """Crop ``size``×``size`` windows out of ``padded`` images, each at its own (row, column) offset."""
    from helpers.data.augment import gather_crops

    return gather_crops(padded, shifts[:, :1] + tf.range(size)[None, :], shifts[:, 1:] + tf.range(size)[None, :])


def flip_translate_batches(images: np.ndarray, labels, *, batch_size: int, epochs: int, translate: int = 2,
                           flip: str = "alternating", num_classes: int = 10, seed: int = 0):
    """``epochs`` × (len // batch_size) training batches (the last partial batch of each epoch is dropped, as
    the reference does), shuffled anew each epoch, labels one-hot (for label smoothing).

    ``translate``: each image moved by up to that many pixels in each direction (reflection padding), anew
    each epoch. ``flip``: "random" (each image flipped with probability ½ each epoch, as AlexNet did),
    "alternating" (a random half flipped in even epochs, the other half in odd ones: every image is seen both
    ways in any two consecutive epochs — Jordan 2024) or "none".
    """
    if flip not in ("random", "alternating", "none"):
        raise ValueError(f"flip must be 'random', 'alternating' or 'none', not {flip!r}.")
    if batch_size > len(images):
        raise ValueError(f"batch_size ({batch_size}) is larger than the {len(images)} training images.")
    size = images.shape[1]
    padded = np.pad(images, ((0, 0), (translate, translate), (translate, translate), (0, 0)), mode="reflect")
    padded, labels = tf.constant(padded), tf.one_hot(np.asarray(labels).reshape(-1), num_classes)
    first_half = tf.constant(np.random.default_rng(seed).random(len(images)) < 0.5)  # alternating: flipped in even epochs

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(len(images)), seed=[seed, epoch])
        shifts = tf.random.stateless_uniform((len(images), 2), [seed, epoch], 0, 2 * translate + 1, tf.int32)
        if flip == "alternating":
            flipped = first_half != tf.cast(epoch % 2, tf.bool)
        elif flip == "random":
            flipped = tf.random.stateless_uniform((len(images),), [seed + 1, epoch]) < 0.5
        else:
            flipped = tf.zeros(len(images), tf.bool)

        def augment(indices):
            x = _translate(tf.gather(padded, indices), tf.gather(shifts, indices), size)
            x = tf.where(tf.gather(flipped, indices)[:, None, None, None], tf.reverse(x, axis=[2]), x)
            return tf.cast(x, tf.float32), tf.gather(labels, indices)

        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True).map(augment)

    batches = tf.data.Dataset.range(epochs).flat_map(epoch_batches)
    return batches.prefetch(tf.data.AUTOTUNE)


def tta_views(images, level: int = 2) -> list[tuple[float, object]]:
    """(weight, images) pairs whose weighted logits ``tta_logits`` sums (the weights add to 1).

    level 0: the images; 1: + their mirror images (½ each); 2: half of that, plus the same pair of views for the
    images moved one pixel up-left and one pixel down-right (reflection padding), ⅛ each — the reference's
    "mirror + translate"."""
    if level not in (0, 1, 2):
        raise ValueError(f"level must be 0, 1 or 2, not {level!r}.")
    images = tf.convert_to_tensor(images, tf.float32)
    if level == 0:
        return [(1.0, images)]
    mirror = tf.reverse(images, axis=[2])
    if level == 1:
        return [(0.5, images), (0.5, mirror)]
    size = images.shape[1]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    up_left, down_right = padded[:, :size, :size], padded[:, 2:size + 2, 2:size + 2]
    return [(0.25, images), (0.25, mirror), (0.125, up_left), (0.125, tf.reverse(up_left, axis=[2])),
            (0.125, down_right), (0.125, tf.reverse(down_right, axis=[2]))]


def view_logits(model, images, level: int = 2, batch_size: int = 2048) -> list[tuple[float, np.ndarray]]:
    """(weight, ``model``'s outputs) for each view of ``tta_views``, in inference mode; the first view is the
    images themselves (so its outputs are the scores without test-time augmentation).

    All views of a chunk of images go through the network as one batch of ``batch_size``: one call per chunk."""
    chunks = []
    count = len(tta_views(images[:1], level))
    step = max(1, batch_size // count)
    for start in range(0, len(images), step):
        views = [view for _, view in tta_views(images[start:start + step], level)]
        outputs = keras.ops.convert_to_numpy(model.predict_on_batch(tf.concat(views, axis=0)))
        chunks.append(np.split(outputs, count))
    weights = [weight for weight, _ in tta_views(images[:1], level)]
    return [(weight, np.concatenate([chunk[i] for chunk in chunks])) for i, weight in enumerate(weights)]


def average_views(views: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """The weighted average of ``view_logits``'s (weight, outputs) pairs (the weights add to 1)."""
    return sum(weight * logits for weight, logits in views)


def tta_logits(model, images, level: int = 2, batch_size: int = 2048) -> np.ndarray:
    """The weighted average of ``model``'s outputs over the views of ``tta_views`` (in inference mode)."""
    return average_views(view_logits(model, images, level, batch_size))
