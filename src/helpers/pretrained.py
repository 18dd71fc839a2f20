"""Published ImageNet weights (keras.applications' VGG16 and ResNet50) in the course's own VGG-16 and ResNet-50.

The course's networks are built from the papers' tables, keras.applications' from its own code; the weights
move from one to the other layer by layer, by name. Two differences are folded in exactly, so that both give
the same outputs on the same images:

- keras.applications' ResNet-50 gives every convolution a bias, although a batch norm follows it; the course's
  convolutions have none (BN's shift β does that job). BN subtracts its moving mean μ from the convolution's
  output, so a bias b only moves that mean: BN(conv(x) + b; μ) = BN(conv(x); μ − b).
- its batch norms use ε = 1.001e-5, the course's 1e-5: BN divides by √(σ² + ε), so adding the difference to the
  moving variance σ² leaves the division unchanged.

Both networks take keras.applications' input: ``preprocess_input(name)`` (BGR channel order, ImageNet mean
subtracted, as the original Caffe models).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

import helpers.models

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
# course name -> keras.applications class, its preprocessing, and where its weight files come from.
SOURCES = {
    "vgg16": (keras.applications.VGG16, keras.applications.vgg16.preprocess_input,
              BASE_URL + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels{}.h5"),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input,
                 BASE_URL + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels{}.h5"),
}
IMAGENET_SIZE = (224, 224, 3)


class WeightsUnavailableError(RuntimeError):
    """The ImageNet weights are neither in Keras's cache nor downloadable here (e.g. no internet)."""


def _check_name(name: str) -> None:
    if name not in SOURCES:
        raise ValueError(f"Published weights are mapped for {sorted(SOURCES)}, not {name!r}.")


def weights_url(name: str, include_top: bool = True) -> str:
    """Where keras.applications downloads ``name``'s ImageNet weights from (with or without the classifier)."""
    _check_name(name)
    return SOURCES[name][2].format("" if include_top else "_notop")


def keras_cache_dir() -> Path:
    """The folder keras.applications keeps downloaded weights in: ``$KERAS_HOME/models``, else ``~/.keras/models``."""
    from keras.src.backend import config  # the one place Keras decides it (it falls back to /tmp/.keras)

    return Path(config.keras_home()) / "models"


def preprocess_input(name: str):
    """keras.applications' preprocessing for ``name``: RGB images in [0, 255] → BGR, ImageNet mean subtracted."""
    _check_name(name)
    return SOURCES[name][1]


def reference(name: str, *, weights="imagenet", include_top: bool = True, input_shape=None, pooling=None,
              classifier_activation="softmax") -> keras.Model:
    """keras.applications' own ``name`` network; ``weights="imagenet"`` downloads into Keras's cache once.

    Offline, with the file not cached yet, raises ``WeightsUnavailableError`` naming the file, the cache folder
    and the URL.
    """
    _check_name(name)
    application = SOURCES[name][0]
    kwargs = dict(weights=weights, include_top=include_top, input_shape=input_shape, pooling=pooling,
                  classifier_activation=classifier_activation)
    if weights != "imagenet":
        return application(**kwargs)
    url = weights_url(name, include_top)
    cached = keras_cache_dir() / url.rsplit("/", 1)[1]
    try:
        return application(**kwargs)
    except Exception as error:  # Keras reports a failed download as a bare Exception
        if cached.is_file():
            raise
        raise WeightsUnavailableError(
            f"The ImageNet weights of {name} are not available: {cached.name} is not in Keras's cache folder "
            f"{cached.parent}, and downloading it from {url} failed ({error}). Run with internet access once "
            f"(Colab has it), or copy the file into that folder.") from error


def fold_conv_bias(bias, moving_mean):
    """The moving mean that makes a bias-free convolution + BN equal a convolution with ``bias`` + BN."""
    return np.asarray(moving_mean) - np.asarray(bias)


def _course_layer_name(name: str, source_layer: str) -> str:
    """The course's name of keras.applications' layer ``source_layer`` (a layer with weights)."""
    renamed = {"fc1": "fc6", "fc2": "fc7", "predictions": "logits", "conv1_conv": "stem_conv", "conv1_bn": "stem_bn"}
    if source_layer in renamed:
        return renamed[source_layer]
    if name == "resnet50" and source_layer.startswith("conv"):  # conv3_block2_1_bn -> stage2_block2_1_bn
        stage, block, index, kind = source_layer.split("_")
        part = "shortcut" if index == "0" else index
        return f"stage{int(stage[4:]) - 1}_{block}_{part}_{kind}"
    return source_layer  # VGG-16's convolutions have the same names in both


def transfer_weights(source: keras.Model, target: keras.Model, name: str) -> int:
    """Copy keras.applications' ``source`` weights into the course's ``target``; returns the layers set.

    Every layer of ``target`` that has weights must receive them; conv biases are folded into the next BN.
    """
    _check_name(name)
    pending = {layer.name for layer in target.layers if layer.weights}
    for layer in source.layers:
        values = layer.get_weights()
        if not values:
            continue
        course_name = _course_layer_name(name, layer.name)
        try:
            course_layer = target.get_layer(course_name)
        except ValueError:
            raise ValueError(f"The course's {target.name} has no layer {course_name!r} for keras.applications' "
                             f"{layer.name!r}: are both built with the same include_top?") from None
        if isinstance(layer, keras.layers.Conv2D) and layer.use_bias and not course_layer.use_bias:
            values = values[:1]  # the bias goes into the BN below
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = values
            conv = source.get_layer(layer.name[:-len("bn")] + "conv")
            if conv.use_bias and not target.get_layer(_course_layer_name(name, conv.name)).use_bias:
                mean = fold_conv_bias(conv.bias.numpy(), mean)
            variance = variance + (layer.epsilon - course_layer.epsilon)
            values = [gamma, beta, mean, variance]
        expected = [tuple(w.shape) for w in course_layer.weights]
        if [v.shape for v in values] != expected:
            raise ValueError(f"keras.applications' {layer.name} has weights of shapes {[v.shape for v in values]}, "
                             f"the course's {course_name} {expected}.")
        course_layer.set_weights(values)
        pending.discard(course_name)
    if pending:
        raise ValueError(f"No weights for {sorted(pending)} of the course's {target.name}.")
    return len([layer for layer in target.layers if layer.weights])


def build(name: str, *, weights="imagenet", include_top: bool = True, input_shape=None, pooling=None,
          classifier_activation="softmax") -> keras.Model:
    """The course's ``name`` (vgg16 or resnet50) holding keras.applications' weights (``weights=None``: its random
    ones, for testing the transfer offline). ``include_top=True`` needs 224×224×3 images (the fully connected
    layers fix the size); without the top any size of at least 32 pixels works."""
    _check_name(name)
    if input_shape is None:
        input_shape = IMAGENET_SIZE
    input_shape = tuple(input_shape)
    if include_top and input_shape != IMAGENET_SIZE:
        raise ValueError(f"With include_top=True the published {name} needs 224×224×3 images, not {input_shape}; "
                         "use include_top=False (and pooling) for other sizes.")
    source = reference(name, weights=weights, include_top=include_top, input_shape=input_shape, pooling=pooling,
                       classifier_activation=classifier_activation)
    target = helpers.models.build(name, input_shape=input_shape, num_classes=1000, include_top=include_top,
                                  pooling=pooling, classifier_activation=classifier_activation)
    transfer_weights(source, target, name)
    return target

