"""Timing and memory figures for comparing networks: medians of interleaved repeats, and memory that says what it is.

Timings on a machine other programs share are noisy, so the alternatives being compared run in turns
(A B, B A, A B, …) and the median of each one's turns is reported: a burst of outside load then slows both
alike instead of whichever happened to run during it. Warm-up calls (tracing, first-touch allocation) are
run first and not counted.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import keras

from helpers.analysis import BYTES_PER_VALUE, layer_table


def interleaved_seconds(candidates: dict[str, Callable[[], object]], *, repeats: int = 10,
                        warmup: int = 2) -> dict[str, list[float]]:
    """Wall seconds of every call of each candidate, called in turns: ``warmup`` uncounted rounds, then ``repeats``.

    The order reverses every round (A B C, C B A, A B C, …). Returns each candidate's timed calls in order.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats ≥ 1 and warmup ≥ 0, got repeats={repeats}, warmup={warmup}.")
    if not candidates:
        raise ValueError("nothing to time: candidates is empty.")
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for round_ in range(warmup + repeats):
        # A B, B A, A B, …: no candidate always runs right after the same neighbour (caches, clock boost).
        for name in order if round_ % 2 == 0 else order[::-1]:
            call = candidates[name]
            start = time.perf_counter()
            _block(call())
            seconds = time.perf_counter() - start
            if round_ >= warmup:
                times[name].append(seconds)
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in times.items()}


def _block(result) -> None:
    """Wait for TensorFlow's asynchronous work to finish, so the clock stops when the result exists."""
    import numpy as np

    if isinstance(result, dict):
        result = list(result.values())
    for value in result if isinstance(result, (list, tuple)) else [result]:
        if value is not None and not isinstance(value, (int, float, str, np.ndarray)):
            keras.ops.convert_to_numpy(value)


class StepTimer(keras.callbacks.Callback):
    """Wall seconds of every training batch inside ``fit``: steady-state speed without extra steps.

    The first batch of a run also traces and optimises the TensorFlow graph, so ``images_per_second`` leaves
    it out; unlike a per-epoch figure, it also leaves out the validation pass and the checkpointing.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)

    def images_per_second(self, batch_size: int, skip: int = 1) -> float:
        """``batch_size`` ÷ the median seconds of a batch, after the first ``skip`` batches."""
        steady = self.seconds[skip:]
        if not steady:
            raise ValueError(f"only {len(self.seconds)} batch(es) timed; need more than skip={skip}.")
        return batch_size / statistics.median(steady)


def train_step(model, images, labels) -> Callable[[], object]:
    """One optimizer step of a compiled ``model`` on one fixed batch (Keras's compiled train function)."""
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"Model {model.name!r} is not compiled: call model.compile(...) before timing training.")
    import tensorflow as tf

    images, labels = tf.convert_to_tensor(images), tf.convert_to_tensor(labels)  # converted once, not per call
    return lambda: model.train_on_batch(images, labels)


def predict_step(model, images) -> Callable[[], object]:
    """One inference call of ``model`` on a fixed batch (Keras's compiled predict function, training=False)."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    return lambda: model.predict_on_batch(images)


def training_memory_estimate(parameters: int, activation_bytes_per_image: int, batch_size: int, *,
                             optimizer_slots: int = 2) -> int:
    """Bytes a training step needs at least: an estimate, not a measurement.

    Parameter memory: the weights, their gradients and ``optimizer_slots`` values per weight (Adam keeps two
    moments; SGD with momentum one), all float32. Activation memory: every layer's forward output for
    ``batch_size`` images, which backpropagation keeps until the backward pass (``activation_bytes_per_image``
    from ``helpers.analysis.layer_table``). It leaves out the framework's workspace, the input pipeline and
    temporary buffers, so a real process needs more.
    """
    if min(parameters, activation_bytes_per_image) < 0 or batch_size < 1 or optimizer_slots < 0:
        raise ValueError("parameters and activation bytes must be ≥ 0, batch_size ≥ 1, optimizer_slots ≥ 0.")
    return (2 + optimizer_slots) * parameters * BYTES_PER_VALUE + batch_size * activation_bytes_per_image


def peak_device_memory(device: str = "GPU:0") -> int | None:
    """Peak bytes allocated on ``device`` since the last ``reset_peak_memory``; None where TensorFlow does not
    track it (a CPU reports zeros, which would read as "no memory")."""
    import tensorflow as tf

    if not tf.config.list_logical_devices(device.split(":")[0]):
        return None
    peak = tf.config.experimental.get_memory_info(device)["peak"]
    return peak or None


def reset_peak_memory(device: str = "GPU:0") -> None:
    import tensorflow as tf

    if tf.config.list_logical_devices(device.split(":")[0]):
        tf.config.experimental.reset_memory_stats(device)


def forward_flops(model) -> int:
    """Floating-point operations of one image's forward pass through ``model``'s convolutions and dense layers:
    2 per multiply-add of ``helpers.analysis.layer_table`` (BatchNorm, activations and pooling, a few percent,
    are left out). A training step costs about three forward passes (forward, and the backward pass's two
    products)."""
    return 2 * layer_table(model).macs
