"""One ``fit``-level entry used by every notebook, built on Keras's own compile/fit and callbacks."""

from __future__ import annotations

import time

import keras

from helpers import settings


class Timing(keras.callbacks.Callback):
    """Records wall seconds per epoch and training images per second in ``history.history``."""

    def __init__(self, batch_size: int | None = None):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["epoch_seconds"] = seconds
            if self.batch_size:
                logs["images_per_second"] = self._steps * self.batch_size / seconds


def fit(model, train, *, validation=None, epochs: int, batch_size: int | None = None, callbacks=(), verbose=None):
    """``model.fit`` with timing recorded; progress bar when a person watches, one line an epoch otherwise."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}.")
    if verbose is None:
        verbose = 1 if settings.interactive() else 2
    start = time.perf_counter()
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=verbose,
                        callbacks=[Timing(batch_size), *callbacks])
    history.wall_seconds = time.perf_counter() - start
    return history
