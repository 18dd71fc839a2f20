"""helpers.measure: interleaved timing, the per-batch step timer, train/predict steps and the memory estimate.

A small model on a few hundred real MNIST images keeps every test to seconds.
"""

import math

import keras
import numpy as np
import pytest

import helpers.data
import helpers.measure as measure


@pytest.fixture(scope="module")
def mnist():
    return helpers.data.load_mnist("train", limit=256)


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def test_interleaved_seconds_alternates_order_and_skips_warmup():
    calls = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = measure.interleaved_seconds(candidates, repeats=3, warmup=1)
    assert calls == list("abc" "cba" "abc" "cba")  # one warm-up round, then three timed ones, order reversing
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(s >= 0 for t in times.values() for s in t)
    assert measure.medians({"x": [3.0, 1.0, 2.0]}) == {"x": 2.0}


@pytest.mark.parametrize("kwargs", [dict(repeats=0), dict(warmup=-1)])
def test_interleaved_seconds_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError, match="repeats"):
        measure.interleaved_seconds({"a": lambda: None}, **kwargs)
    with pytest.raises(ValueError, match="empty"):
        measure.interleaved_seconds({})


def test_training_memory_estimate_counts_weights_gradients_slots_and_activations():
    # 1,000 float32 parameters × (weight + gradient + 2 Adam moments) + 8 images × 400 bytes of activations
    assert measure.training_memory_estimate(1000, 400, 8) == 4 * 1000 * 4 + 8 * 400
    assert measure.training_memory_estimate(1000, 400, 8, optimizer_slots=0) == 2 * 1000 * 4 + 8 * 400
    with pytest.raises(ValueError):
        measure.training_memory_estimate(1000, 400, 0)


def test_step_timer_times_every_batch_and_skips_the_first(mnist):
    x, y = mnist
    model = small_model()
    timer = measure.StepTimer()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 4  # 256 images in batches of 64
    rate = timer.images_per_second(64)
    assert math.isfinite(rate) and rate > 0
    assert rate == pytest.approx(64 / np.median(timer.seconds[1:]))
    with pytest.raises(ValueError, match="only 4 batch"):
        timer.images_per_second(64, skip=4)


def test_train_step_takes_an_optimizer_step_and_predict_step_predicts(mnist):
    x, y = mnist
    model = small_model()
    before = [w.numpy().copy() for w in model.trainable_weights]
    measure.train_step(model, x[:32], y[:32])()
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    predictions = measure.predict_step(model, x[:1])()
    assert predictions.shape == (1, 10)
    uncompiled = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="not compiled"):
        measure.train_step(uncompiled, x[:32], y[:32])


def test_peak_device_memory_is_none_without_a_gpu():
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is present: its peak memory is measured, not None")
    measure.reset_peak_memory()  # a no-op without a GPU, never an error
    assert measure.peak_device_memory() is None
