"""A small modern CNN (conv-pool, conv-pool, dense): the baseline of notebook 00."""

import keras
from keras import layers

from helpers.models._parts import check_top_options, fc_top, features
from helpers.models._registry import check_input_size, register


def min_input_size(stages: int) -> int:
    """The smallest image side that still leaves a 1×1 map after ``stages`` × (3×3 valid conv, 2×2 pool)."""
    def remaining(n):
        for _ in range(stages):
            n = (n - 2) // 2
        return n

    n = 1
    while remaining(n) < 1:
        n += 1
    return n


@register("small_cnn")
def build_small_cnn(*, input_shape, num_classes, filters=(32, 64), dense_units=128, dropout=0.5, include_top=True,
                    pooling=None, classifier_activation="softmax"):
    """Two 3×3 conv + 2×2 max-pool stages, then a dense layer and the classifier (see ``helpers.models._parts``)."""
    check_input_size("small_cnn", input_shape, min_size=min_input_size(len(filters)))
    check_top_options(include_top, pooling, classifier_activation)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, width in enumerate(filters, start=1):
        x = layers.Conv2D(width, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    if not include_top:
        return keras.Model(inputs, features(x, pooling), name="small_cnn")
    x = fc_top(x, num_classes, fc_units=dense_units, dropout=dropout, classifier_activation=classifier_activation,
               hidden=("fc",))
    return keras.Model(inputs, x, name="small_cnn")
