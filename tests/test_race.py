"""helpers.race and the clock schedule: notebook 06's comparison is like for like, on real CIFAR-10 images."""

import dataclasses

import keras
import numpy as np
import pytest

import helpers.data
from helpers import race, recipes


@pytest.fixture(scope="module")
def small_cifar():
    return helpers.data.cifar10(batch_size=32, train_samples=256, val_samples=64, test_samples=200, seed=0)


def test_rate_at_follows_the_schedules_shapes():
    short, paper = recipes.SHORT, recipes.PAPER
    assert short.rate_at(0) == 0 and short.rate_at(1) == pytest.approx(0, abs=1e-12)
    assert short.rate_at(short.warmup_fraction) == pytest.approx(short.learning_rate)
    assert short.rate_at(short.warmup_fraction / 2) == pytest.approx(short.learning_rate / 2)
    middle = (1 + short.warmup_fraction) / 2  # half-way down the cosine
    assert short.rate_at(middle) == pytest.approx(short.learning_rate / 2)
    assert [paper.rate_at(f) for f in (0, 0.49, 0.5, 0.74, 0.75, 1)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_clock_schedule_stops_on_time_and_sets_the_rate():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    recipes.SHORT.compile(model, on_the_clock=True)
    rates = []
    probe = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: rates.append(float(model.optimizer.learning_rate)))
    clock = recipes.ClockSchedule(recipes.SHORT, seconds=0.5)
    x, y = np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), np.arange(64) % 4
    model.fit(x, y, batch_size=8, epochs=1000, verbose=0, callbacks=[clock, probe])
    assert clock.used >= 0.5 and clock.steps == len(rates) > 2
    assert rates[0] == 0 and max(rates) <= recipes.SHORT.learning_rate * (1 + 1e-6)  # the rate is a float32
    assert rates[-1] < 0.05 * recipes.SHORT.learning_rate  # the end of the cosine: nearly zero
    with pytest.raises(ValueError, match="seconds must be positive"):
        recipes.ClockSchedule(recipes.SHORT, 0)


def test_batch_norm_flag_is_true_for_every_contender():
    assert len({c.label for c in race.CONTENDERS}) == len(race.CONTENDERS) == 8
    for contender in race.CONTENDERS:
        model = contender.build(width=0.125)
        has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
        assert has_bn == contender.batch_norm, contender.label
        assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)


def test_every_contender_trains_alike(small_cifar):
    rows = [race.train(contender, small_cifar, recipes.SHORT, batch_size=32, minutes=0.01, width=0.125,
                       run=f"race_test_{i}") for i, contender in enumerate(race.CONTENDERS[::3])]
    for row in rows:  # the same optimizer and loss for every network; the rate is set by the clock
        optimizer = row["model"].optimizer
        assert (type(optimizer), optimizer.momentum, optimizer.nesterov) == (keras.optimizers.SGD, 0.9, True)
    assert {type(row["model"].loss).__name__ for row in rows} == {"SparseSmoothedCrossentropy"}
    assert {row["model"].loss.label_smoothing for row in rows} == {0.1}
    _, test_labels = zip(*((x, y) for x, y in small_cifar.test.as_numpy_iterator()))
    test_labels = np.concatenate(test_labels)
    for row in rows:
        assert len(row["test"]) == small_cifar.test_count == 200  # scored on the whole test subset
        np.testing.assert_array_equal(row["test"].labels, test_labels)  # the test images, in order, once each
        # The row's accuracy is the trained model's on those images, recomputed here from its own predictions.
        again = row["model"].predict(np.asarray(row["test"].images), verbose=0).argmax(axis=1)
        assert row["test_accuracy"] == pytest.approx(float((again == test_labels).mean()), abs=0.011)
        # On the clock: the budget was spent (0.6 s), and the epochs seen are whole steps of 32 images, as many
        # as the quarter-pass "epochs" in the history hold (the last one may be cut short by the clock).
        assert row["train_minutes"] >= 0.01
        steps = row["epochs_seen"] * small_cifar.train_count / 32
        chunk, epochs = max(1, -(-small_cifar.train_count // 32) // 4), len(row["history"].history["loss"])
        assert steps == pytest.approx(round(steps)) and (epochs - 1) * chunk < round(steps) <= epochs * chunk
        assert 0 < row["images_per_second"] < 1e6
    with pytest.raises(ValueError, match="either epochs"):
        race.train(race.CONTENDERS[0], small_cifar, recipes.SHORT, batch_size=32)


def test_equal_epochs_learn_above_chance():
    data = helpers.data.cifar10(batch_size=64, train_samples=2048, val_samples=256, test_samples=1000, seed=0)
    keras.utils.set_random_seed(0)
    lenet = next(c for c in race.CONTENDERS if c.label == "LeNet-5 (modern)")
    recipe = dataclasses.replace(recipes.SHORT, learning_rate=0.05)  # a rate a tiny net can take on 2,048 images
    row = race.train(lenet, data, recipe, batch_size=64, epochs=5, run="race_test_epochs")
    assert row["epochs_seen"] == pytest.approx(5)  # 5 × 32 steps of 64 images
    assert row["history"].history["loss"][-1] < row["history"].history["loss"][0]
    assert row["test_accuracy"] > 0.2  # ten classes: chance is 0.10
