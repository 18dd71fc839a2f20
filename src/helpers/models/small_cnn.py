"""A small modern CNN (conv-pool, conv-pool, dense): the baseline of notebook 00."""

import keras
from keras import layers

from helpers.models._registry import check_input_size, register


@register("small_cnn")
def build_small_cnn(*, input_shape, num_classes, filters=(32, 64), dense_units=128, dropout=0.5):
    """Two 3×3 conv + 2×2 max-pool stages, then a dense layer and softmax."""
    check_input_size("small_cnn", input_shape, min_size=4 * len(filters) + 2)
    inputs = keras.Input(input_shape)
    x = inputs
    for i, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="fc")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    # float32 output keeps softmax stable under mixed precision; it changes nothing in float32 runs.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small_cnn")
