"""helpers.gradients: per-kernel gradient norms on a batch, and their log during training."""

import keras
import numpy as np
import pytest

from helpers.gradients import GradientNormLog, gradient_norms, kernels, plot, summary


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(6, 1, name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture()
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 16)


def test_one_finite_positive_norm_per_trainable_kernel_in_layer_order(batch):
    model = tiny_model()
    norms = gradient_norms(model, *batch)
    assert list(norms) == [k.path for k in kernels(model)] == ["conv1/kernel", "conv2/kernel", "logits/kernel"]
    values = np.array(list(norms.values()))
    assert np.all(np.isfinite(values)) and np.all(values > 0)


def test_a_frozen_layer_has_no_norm(batch):
    model = tiny_model()
    model.get_layer("conv2").trainable = False
    assert list(gradient_norms(model, *batch)) == ["conv1/kernel", "logits/kernel"]


def test_the_norm_is_that_of_the_cross_entropy_gradient(batch):
    """A softmax layer with zero weights predicts 1/3 everywhere: ∂loss/∂W = Xᵀ(p − onehot(y)) / N, by hand."""
    images, labels = batch
    features = images.reshape(len(images), -1)
    inputs = keras.Input(features.shape[1:])
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros",
                                                   name="logits")(inputs))
    expected = features.T @ (np.full((len(labels), 3), 1 / 3) - np.eye(3)[labels]) / len(labels)
    norms = gradient_norms(model, features, labels)
    assert norms["logits/kernel"] == pytest.approx(np.linalg.norm(expected), rel=1e-5)


def test_measuring_leaves_the_model_as_it_was(batch):
    model = tiny_model()
    before = [v.numpy().copy() for v in model.variables]
    gradient_norms(model, *batch)  # training mode: batch norm's moving statistics move, and are put back
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.variables))


def test_the_log_records_initialisation_the_chosen_steps_and_the_end(batch):
    images, labels = batch
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    log = GradientNormLog(images[:8], labels[:8], at=(2,))
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0, callbacks=[log])  # 4 steps
    assert sorted(log.records) == [0, 2, 4]
    assert log.records[0] != log.records[4]  # the weights moved between them
    assert "conv1" not in summary({"tiny": log}) and len(summary({"tiny": log}).splitlines()) == 2 + 3
    plot({"tiny": log})
