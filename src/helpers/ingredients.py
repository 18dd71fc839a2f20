"""Controlled experiments on one ingredient at a time (ReLU vs tanh, dropout, batch normalisation, optimisers).

Each experiment trains networks that differ in that one ingredient only: the same images in the same order
(``helpers.data.cifar10`` with one seed), the same initial random state, optimiser, schedule and steps. What it
returns is measured, per epoch, so a notebook can print and plot it and say what it shows.

- ``activation_race`` (notebook 02, AlexNet §3.1 and Fig. 1): a four-layer net with ReLU vs with tanh; the
  training error after each epoch and the first epoch at which it falls below a target.
- ``dropout_gap`` (notebook 02, AlexNet §4.2): a small net with and without dropout before its classifier;
  accuracy on its own training images and on validation images, both in inference mode, and the gap.
- ``batch_norm_race`` (notebook 03, Ioffe & Szegedy 2015): a VGG-style net (configuration A, 32×32) with and
  without batch normalisation after each convolution.

Their sizes per mode are profiles of ``helpers.settings.PROFILES`` named after them (``"optimisers"`` sizes notebook
00's plain ``model.fit`` runs, which the notebook writes out itself).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import keras
import numpy as np

from helpers import settings

def four_layer_net(activation: str = "relu", *, num_classes: int = 10, dropout: float = 0.0,
                   dense_units: int = 0, init_std: float | None = None, input_scale: float = 1.0) -> keras.Model:
    """Three 5×5 / 3×3 convolutions with 2×2 max-pooling, then the classifier: four layers with weights
    (``dense_units`` > 0 adds a fully connected layer, with ``dropout`` after it, before the classifier)."""
    init = "glorot_uniform" if init_std is None else keras.initializers.RandomNormal(stddev=init_std)
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs if input_scale == 1.0 else keras.layers.Rescaling(input_scale, name="scale")(inputs)
    for i, (filters, size) in enumerate([(32, 5), (64, 5), (64, 3)], start=1):
        x = keras.layers.Conv2D(filters, size, padding="same", activation=activation, kernel_initializer=init,
                                name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation=activation, name="fc")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", dtype="float32", name="predictions")(x),
                       name=f"four_layer_{activation}")


@dataclasses.dataclass
class Run:
    """One network's measurements, per epoch."""

    label: str
    train_error: list[float]  # the training batches' error, averaged over the epoch (the weights move during it)
    val_error: list[float]
    seconds: float
    train_accuracy: float | None = None  # at the end, on the training images, inference mode (no dropout)
    val_accuracy: float | None = None

    def first_epoch_below(self, error: float) -> int | None:
        """The first epoch (counted from 1) whose training error is below ``error``; None if none is."""
        return next((i + 1 for i, e in enumerate(self.train_error) if e < error), None)


def _train(model, cfg, data, optimizer, label: str, measure_fit: bool = False) -> Run:
    from helpers.training import build_training_state, without_autotune_thread, without_false_end_of_data_warning

    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train, val = without_autotune_thread(_batches(data, cfg)), without_autotune_thread(data.val)
    build_training_state(model, train)
    start = time.perf_counter()
    with without_false_end_of_data_warning():
        history = model.fit(train, validation_data=val, epochs=cfg.epochs, verbose=0, shuffle=False)
        run = Run(label, [1 - a for a in history.history["accuracy"]],
                  [1 - a for a in history.history["val_accuracy"]], time.perf_counter() - start)
        if measure_fit:  # both in inference mode, so dropout is off for both numbers
            images, labels = data.train_arrays
            run.train_accuracy = float(model.evaluate(images, labels, batch_size=512, verbose=0,
                                                      return_dict=True)["accuracy"])
            run.val_accuracy = float(model.evaluate(val, verbose=0, return_dict=True)["accuracy"])
    return run


def _data(cfg):
    """CIFAR-10 at ``cfg``'s sizes, with the training images also as arrays (for :func:`_batches` and scoring)."""
    return _load(cfg.batch_size, cfg.train_samples, cfg.val_samples, cfg.seed)


@functools.lru_cache(maxsize=2)  # QUICK's experiments share one set of sizes: loaded once per notebook
def _load(batch_size, train_samples, val_samples, seed):
    import helpers.data

    data = helpers.data.cifar10(batch_size=batch_size, train_samples=train_samples, val_samples=val_samples,
                                test_samples=batch_size, augment=False, seed=seed)
    images, labels = zip(*data.train.as_numpy_iterator())
    data.train_arrays = np.concatenate(images), np.concatenate(labels)
    return data


def _batches(data, cfg):
    """The training images, shuffled anew each epoch. Built right after ``settings.seed_everything``, every
    network of an experiment sees the same batches in the same order (``data.train`` would reshuffle on)."""
    import tensorflow as tf

    images, labels = data.train_arrays
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(labels), seed=cfg.seed)
    return dataset.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)


def activation_race(cfg, activations=("relu", "tanh"), learning_rate: float = 1e-3, init_std: float | None = 0.01,
                    input_scale: float = 255.0) -> dict[str, Run]:
    """The four-layer net once per activation, from the same seed, with SGD (momentum 0.9) and no regularisation.

    The defaults follow AlexNet where it says: inputs are pixel values (0–255) minus the mean (§2, so
    ``input_scale=255`` on the course's mean-subtracted [0, 1] images), weights from N(0, 0.01²) (§5). The
    paper chose each network's learning rate for speed; here both get the same one.
    """
    data = _data(cfg)
    runs = {}
    for activation in activations:
        settings.seed_everything(cfg.seed)
        model = four_layer_net(activation, init_std=init_std, input_scale=input_scale)
        runs[activation] = _train(model, cfg, data, keras.optimizers.SGD(learning_rate, momentum=0.9), activation)
    return runs


def dropout_gap(cfg, rates=(0.0, 0.5), dense_units: int = 256, learning_rate: float = 1e-3) -> dict[float, Run]:
    """The four-layer net with a ``dense_units`` fully connected layer, once per dropout rate after it (Adam)."""
    data = _data(cfg)
    runs = {}
    for rate in rates:
        settings.seed_everything(cfg.seed)
        model = four_layer_net("relu", dropout=rate, dense_units=dense_units)
        runs[rate] = _train(model, cfg, data, keras.optimizers.Adam(learning_rate), f"dropout {rate:g}",
                            measure_fit=True)
    return runs


def batch_norm_race(cfg, width: float = 0.25, learning_rate: float = 0.01) -> dict[bool, Run]:
    """VGG configuration A for 32×32 inputs (``cifar=True``) at ``width``, without and with batch normalisation,
    SGD with momentum 0.9 and the same learning rate for both."""
    import helpers.models

    data = _data(cfg)
    runs = {}
    for batch_norm in (False, True):
        settings.seed_everything(cfg.seed)
        model = helpers.models.build("vgg11", input_shape=(32, 32, 3), num_classes=10, width=width, cifar=True,
                                     batch_norm=batch_norm)
        runs[batch_norm] = _train(model, cfg, data, keras.optimizers.SGD(learning_rate, momentum=0.9),
                                  "with batch norm" if batch_norm else "without", measure_fit=True)
    return runs


def table(runs: dict, target: float | None = None) -> str:
    """The runs side by side: final training / validation error per epoch-average, and what ``measure_fit`` kept."""
    lines = []
    for run in runs.values():
        line = (f"{run.label:16s} training error by epoch {' '.join(f'{e:.2f}' for e in run.train_error)}; "
                f"validation error at the end {run.val_error[-1]:.2f}; {run.seconds:.1f} s")
        if target is not None:
            epoch = run.first_epoch_below(target)
            line += f"; below {target:.0%} training error at epoch {epoch}" if epoch else \
                f"; not below {target:.0%} within {len(run.train_error)} epochs"
        if run.train_accuracy is not None:
            line += (f"\n{'':16s} accuracy in inference mode: training images {run.train_accuracy:.3f}, "
                     f"validation {run.val_accuracy:.3f}, gap {run.train_accuracy - run.val_accuracy:+.3f}")
        lines.append(line)
    return "\n".join(lines)
