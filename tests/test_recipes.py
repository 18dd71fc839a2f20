"""helpers.recipes: the paper's step schedule, the short warm-up + cosine one, label smoothing on integer labels."""

import keras
import numpy as np
import pytest

import helpers.models
from helpers import recipes


def test_the_paper_schedule_divides_by_ten_at_half_and_three_quarters():
    schedule = recipes.PAPER.learning_rate_schedule(epochs=182, steps_per_epoch=352)  # 64,064 iterations
    rate = lambda step: float(schedule(step))  # noqa: E731
    half, three_quarters = 182 * 352 // 2, 3 * 182 * 352 // 4
    assert rate(0) == rate(half - 1) == pytest.approx(0.1)
    assert rate(half + 1) == pytest.approx(0.01) and rate(three_quarters - 1) == pytest.approx(0.01)
    assert rate(three_quarters + 1) == pytest.approx(0.001)
    assert 31_000 < half < 33_000 and 47_000 < three_quarters < 49_000  # the paper's 32k and 48k


def test_the_short_schedule_warms_up_then_falls_to_zero():
    schedule = recipes.SHORT.learning_rate_schedule(epochs=15, steps_per_epoch=391)
    rates = np.array([float(schedule(step)) for step in range(0, 15 * 391 + 1, 97)])
    peak = int(np.argmax(rates))
    assert rates[0] == 0 and rates.max() == pytest.approx(recipes.SHORT.learning_rate, rel=0.02)
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:]) <= 0)
    assert float(schedule(15 * 391)) == pytest.approx(0, abs=1e-6)


def test_smoothed_crossentropy_on_integer_labels_equals_keras_on_one_hot():
    rng = np.random.default_rng(0)
    probabilities = keras.ops.softmax(rng.normal(size=(16, 10)).astype("float32"))
    labels = rng.integers(0, 10, size=16)
    ours = recipes.SparseSmoothedCrossentropy(0.1)(labels, probabilities)
    keras_one_hot = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(10)[labels], probabilities)
    assert float(ours) == pytest.approx(float(keras_one_hot), rel=1e-6)
    plain = recipes.SparseSmoothedCrossentropy(0.0)(labels[:, None], probabilities)  # (batch, 1) labels too
    assert float(plain) == pytest.approx(float(keras.losses.SparseCategoricalCrossentropy()(labels, probabilities)),
                                         rel=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        recipes.SparseSmoothedCrossentropy(1.0)


def test_compile_sets_the_optimizer_the_loss_and_the_weight_decay():
    model = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)
    recipes.SHORT.compile(model, epochs=2, train_count=1000, batch_size=128)
    assert isinstance(model.optimizer, keras.optimizers.SGD) and model.optimizer.nesterov
    assert isinstance(model.loss, recipes.SparseSmoothedCrossentropy)
    assert len(model.losses) == 20  # every kernel decayed
    recipes.PAPER.compile(model, epochs=2, train_count=1000, batch_size=128)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy) and not model.optimizer.nesterov
    with pytest.raises(ValueError, match="at least 1"):
        recipes.PAPER.compile(model, epochs=0, train_count=1000, batch_size=128)
