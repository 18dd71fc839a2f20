"""What several builders share, written once: width scaling, input mean, the classifier tops and their options.

Every builder follows keras.applications' contract for its top: ``include_top=True`` ends in the network's own
classifier; ``include_top=False`` ends at the last convolutional maps, optionally pooled (``pooling`` "avg" or
"max" to one vector per image, None to keep the maps): a feature extractor. The classifier's activation
(``classifier_activation``, softmax by default, None for raw scores) is a layer of its own named ``predictions``,
computed in float32 so that it stays stable under mixed precision; its input is the class scores (the Dense layer
before it is ``logits``, LeNet-5's keeps the paper's name ``output``). Grad-CAM and anyone else who wants the
scores before the softmax read ``model.get_layer("predictions").input``.
"""

from __future__ import annotations

import keras
from keras import layers

POOLINGS = (None, "avg", "max")


def scaled(channels: int, width: float, multiple: int = 1) -> int:
    """``channels × width`` rounded to a multiple of ``multiple`` (a grouped conv needs equal groups), at least one."""
    return max(multiple, round(channels * width / multiple) * multiple)


def check_width(width) -> None:
    if isinstance(width, bool) or not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"width must be a positive number, not {width!r}.")


def check_size_options(width, fc_units, dropout) -> None:
    """Clear errors for the options that shrink a network for a CPU."""
    check_width(width)
    if isinstance(fc_units, bool) or not (isinstance(fc_units, int) and fc_units >= 1):
        raise ValueError(f"fc_units must be a positive int, not {fc_units!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), not {dropout!r}.")


def check_top_options(include_top, pooling, classifier_activation) -> None:
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False, not {include_top!r}.")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}.")
    if classifier_activation is not None:
        keras.activations.get(classifier_activation)  # an unknown name fails here, in Keras's words


def subtract_mean(x, mean, channels: int):
    """The papers' input preprocessing: subtract the training set's mean RGB value (a layer without parameters)."""
    mean = [float(m) for m in mean]
    if len(mean) != channels:
        raise ValueError(f"mean must have one value per input channel ({channels}), got {len(mean)}.")
    return layers.Normalization(mean=mean, variance=[1.0] * channels, name="subtract_mean")(x)


def classify(x, num_classes: int, classifier_activation="softmax", *, name="predictions", logits="logits"):
    """The last layer: Dense ``logits``, then its activation as the float32 layer ``name``."""
    x = layers.Dense(num_classes, name=logits)(x)
    return layers.Activation(classifier_activation or "linear", dtype="float32", name=name)(x)


def fc_top(x, num_classes: int, *, fc_units: int, dropout: float, classifier_activation="softmax", hidden=("fc6", "fc7")):
    """AlexNet's head, which VGG kept: flatten, fully connected layers with ReLU and dropout, the classifier."""
    x = layers.Flatten(name="flatten")(x)
    for name in hidden:
        x = layers.Dense(fc_units, activation="relu", name=name)(x)
        x = layers.Dropout(dropout, name=f"drop{name[2:]}" if name[2:] else "dropout")(x)  # fc6 → drop6
    return classify(x, num_classes, classifier_activation)


def pooled_top(x, num_classes: int, *, dropout: float = 0.0, classifier_activation="softmax"):
    """GoogLeNet's and ResNet's head: global average pooling (no fully connected layers), dropout, the classifier."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return classify(x, num_classes, classifier_activation)


def features(x, pooling):
    """The end of a network built with ``include_top=False``: its last maps, pooled if asked."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x
