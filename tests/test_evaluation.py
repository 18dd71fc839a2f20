"""helpers.evaluation: one pass over a labelled dataset keeps images, labels and probabilities aligned."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers.data
from helpers.evaluation import Predictions, predict


@pytest.fixture(scope="module")
def trained():
    """A small softmax classifier trained for one epoch on 1,024 real MNIST images, and 300 test images."""
    keras.utils.set_random_seed(0)
    x_train, y_train = helpers.data.load_mnist("train", limit=1024)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0)
    return model, helpers.data.load_mnist("test", limit=300)


def test_predict_keeps_the_dataset_order_and_matches_keras(trained):
    model, (x, y) = trained
    results = predict(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(64))  # last batch is partial
    assert len(results) == 300
    np.testing.assert_array_equal(results.images, x)
    np.testing.assert_array_equal(results.labels, y)
    np.testing.assert_allclose(results.probabilities, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert results.accuracy == pytest.approx(accuracy, abs=1e-6)
    assert results.loss == pytest.approx(loss, rel=1e-4)
    assert results.wrong == round((1 - accuracy) * 300)
    assert results.accuracy > 0.5  # one epoch on 1,024 real images is far above chance (0.1)

    column = predict(model, tf.data.Dataset.from_tensor_slices((x, y[:, None])).batch(64))  # (batch, 1) labels
    np.testing.assert_array_equal(column.labels, y)
    assert column.accuracy == results.accuracy


def test_predictions_arithmetic():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype="float32")
    results = Predictions(images=np.zeros((3, 2, 2, 1)), labels=np.array([0, 1, 1]), probabilities=probabilities)
    np.testing.assert_array_equal(results.predicted, [0, 1, 0])
    assert results.wrong == 1
    assert results.accuracy == pytest.approx(2 / 3)
    assert results.loss == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4])), rel=1e-5)


def test_predict_rejects_what_it_cannot_use(trained):
    model, (x, y) = trained
    inputs = keras.Input((28, 28, 1))
    two_heads = keras.Model(inputs, [model(inputs), model(inputs)])
    with pytest.raises(ValueError, match="2 outputs.*single-output"):
        predict(two_heads, tf.data.Dataset.from_tensor_slices((x, y)).batch(64))
    with pytest.raises(ValueError, match=r"\(images, labels\) batches"):
        predict(model, tf.data.Dataset.from_tensor_slices(x).batch(64))
    with pytest.raises(ValueError, match="one per image"):
        predict(model, tf.data.Dataset.from_tensor_slices((x, np.eye(10)[y])).batch(64))  # one-hot
    with pytest.raises(ValueError, match="empty dataset"):
        predict(model, tf.data.Dataset.from_tensor_slices((x, y)).take(0).batch(64))
