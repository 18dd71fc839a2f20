"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions"), from the paper's Table 1.

Faithful to the paper: conv biases, ReLU after every convolution, LRN in the stem, no batch normalisation,
and a true 5×5 branch (torchvision's "5×5" branch is really a 3×3). At 224×224×3 and 1000 classes the network
has 6,998,552 parameters, 13,378,280 with both auxiliary classifiers.

The auxiliary classifiers only exist to help training: ``build("googlenet", aux_heads=True)`` gives a
training model with three outputs (``main``, ``aux1`` on 4a, ``aux2`` on 4d); ``compile_with_aux`` weights
their losses 1 / 0.3 / 0.3 as the paper does, ``with_aux_targets`` repeats each label for the three outputs,
and ``inference_model`` drops the heads while sharing every weight of the main path.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import layers

from helpers.layers import BatchNormalization, LocalResponseNormalization
from helpers.models._parts import check_top_options, check_width, classify, features, pooled_top, scaled
from helpers.models._registry import check_input_size, register


class Inception(NamedTuple):
    """One row of the paper's Table 1: the output channels of each branch of an inception module."""

    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool_proj: int


# Table 1; "pool" marks the 3×3 / stride-2 max-pools between the stages.
TABLE_1 = (
    Inception("3a", 64, 96, 128, 16, 32, 32),
    Inception("3b", 128, 128, 192, 32, 96, 64),
    "pool",
    Inception("4a", 192, 96, 208, 16, 48, 64),
    Inception("4b", 160, 112, 224, 24, 64, 64),
    Inception("4c", 128, 128, 256, 24, 64, 64),
    Inception("4d", 112, 144, 288, 32, 64, 64),
    Inception("4e", 256, 160, 320, 32, 128, 128),
    "pool",
    Inception("5a", 256, 160, 320, 32, 128, 128),
    Inception("5b", 384, 192, 384, 48, 128, 128),
)
AUX_AFTER = {"4a": "aux1", "4d": "aux2"}  # where the paper attaches its auxiliary classifiers
AUX_LOSS_WEIGHT = 0.3


def _conv(x, filters, kernel_size, name, strides=1, batch_norm=False):
    """Convolution with bias and ReLU, "same" padding: the only convolution GoogLeNet uses.

    ``batch_norm=True`` is the later variant (Inception v2 / torchvision): conv without bias → BN → ReLU.
    """
    if not batch_norm:
        return layers.Conv2D(filters, kernel_size, strides=strides, padding="same", activation="relu", name=name)(x)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name)(x)
    # momentum 0.9 (torchvision's 0.1): with Keras's 0.99 the moving statistics lag far behind a short run
    x = BatchNormalization(momentum=0.9, epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def inception_module(x, n1x1, n3x3, n5x5, *, n3x3_reduce=None, n5x5_reduce=None, pool_proj=None, name="inception",
                     batch_norm=False):
    """An inception module: 1×1, 3×3 and 5×5 convolutions and a 3×3 max-pool side by side, concatenated.

    Without the three reduction sizes it is the paper's naive module (Fig. 2a): the pooling branch passes all
    input channels through, and the 3×3 and 5×5 convolutions see every input channel. With them it is the
    module the network uses (Fig. 2b): 1×1 convolutions shrink the channels before the 3×3 and 5×5
    convolutions and project the pooling branch, which keeps both the cost and the output width in check.
    """
    reductions = (n3x3_reduce, n5x5_reduce, pool_proj)
    if any(r is None for r in reductions) and not all(r is None for r in reductions):
        raise ValueError(f"{name}: give all of n3x3_reduce, n5x5_reduce and pool_proj (dimension-reduced "
                         f"module) or none of them (naive module), not {reductions}.")
    naive = n3x3_reduce is None
    conv = lambda inputs, filters, size, part: _conv(inputs, filters, size, f"{name}_{part}", batch_norm=batch_norm)  # noqa: E731
    branch1 = conv(x, n1x1, 1, "1x1")
    branch3 = x if naive else conv(x, n3x3_reduce, 1, "3x3_reduce")
    branch3 = conv(branch3, n3x3, 3, "3x3")
    branch5 = x if naive else conv(x, n5x5_reduce, 1, "5x5_reduce")
    branch5 = conv(branch5, n5x5, 5, "5x5")
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if not naive:
        pool = conv(pool, pool_proj, 1, "pool_proj")
    return layers.Concatenate(name=f"{name}_output")([branch1, branch3, branch5, pool])


def auxiliary_head(x, num_classes, *, conv_filters=128, dense_units=1024, dropout=0.7, name="aux", batch_norm=False,
                   classifier_activation="softmax"):
    """The paper's auxiliary classifier: avg-pool 5/3, 1×1 conv, FC + ReLU, dropout 0.7, linear + softmax.

    Its last two layers are ``<name>_logits`` and the float32 activation ``<name>``, as the main head's.
    """
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, conv_filters, 1, f"{name}_conv", batch_norm=batch_norm)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return classify(x, num_classes, classifier_activation, name=name, logits=f"{name}_logits")


@register("googlenet")
def build_googlenet(*, input_shape, num_classes, aux_heads=False, width=1.0, dropout=0.4, aux_dropout=0.7,
                    batch_norm=False, cifar=False, include_top=True, pooling=None, classifier_activation="softmax"):
    """GoogLeNet from Table 1; ``width`` < 1 scales every layer's channels (and the aux heads) for CPU runs.

    ``aux_heads=True`` returns the training model with outputs ``{"main", "aux1", "aux2"}``; pass it to
    ``inference_model`` to get the single-output network that shares its weights. ``batch_norm=True`` is not
    the paper's network (BN came a year later and replaced LRN) but trains from scratch far more readily.
    ``cifar=True`` is the 32×32 adaptation of the standard CIFAR port (kuangliu/pytorch-cifar): the stem
    (7×7/2 conv, pool, 1×1 and 3×3 convs, pool: a 224-pixel image shrunk 8×) becomes one 3×3 convolution to
    192 channels at full resolution, so the inception modules see 32×32, 16×16 and 8×8 maps; the modules keep
    the paper's true 5×5 branch. ``include_top``/``pooling``/``classifier_activation``: as keras.applications'
    (see ``helpers.models._parts``); the auxiliary heads need the top.
    """
    check_width(width)
    check_top_options(include_top, pooling, classifier_activation)
    if aux_heads and not include_top:
        raise ValueError("aux_heads=True needs include_top=True: the auxiliary heads train the classifier.")
    # The ImageNet stem and the three max-pools halve the image five times ("same" padding rounds up); the aux
    # heads' 5×5 average pool needs stage 4's maps to be at least 5×5, i.e. inputs of at least 65 pixels
    # (17 with the CIFAR stem, which does not shrink the image).
    check_input_size("googlenet" + (" with aux_heads" if aux_heads else ""), input_shape,
                     min_size=(17 if cifar else 65) if aux_heads else (4 if cifar else 32))
    s = lambda channels: scaled(channels, width)  # noqa: E731
    inputs = keras.Input(input_shape, name="image")
    if cifar:
        x = _conv(inputs, s(192), 3, "conv1_3x3", batch_norm=batch_norm)
        pools = 0
    else:
        x = _conv(inputs, s(64), 7, "conv1_7x7", strides=2, batch_norm=batch_norm)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
        if not batch_norm:  # BN replaced LRN in the later Inception versions
            x = LocalResponseNormalization(name="lrn1")(x)
        x = _conv(x, s(64), 1, "conv2_3x3_reduce", batch_norm=batch_norm)
        x = _conv(x, s(192), 3, "conv2_3x3", batch_norm=batch_norm)
        if not batch_norm:
            x = LocalResponseNormalization(name="lrn2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
        pools = 2

    aux_outputs = {}
    for row in TABLE_1:
        if row == "pool":
            pools += 1
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{pools}")(x)
            continue
        x = inception_module(x, s(row.n1x1), s(row.n3x3), s(row.n5x5), n3x3_reduce=s(row.n3x3_reduce),
                             n5x5_reduce=s(row.n5x5_reduce), pool_proj=s(row.pool_proj), name=f"inception_{row.name}",
                             batch_norm=batch_norm)
        if aux_heads and row.name in AUX_AFTER:
            head = AUX_AFTER[row.name]
            aux_outputs[head] = auxiliary_head(x, num_classes, conv_filters=s(128), dense_units=s(1024),
                                               dropout=aux_dropout, name=head, batch_norm=batch_norm,
                                               classifier_activation=classifier_activation)

    if not include_top:
        return keras.Model(inputs, features(x, pooling), name="googlenet")
    main = pooled_top(x, num_classes, dropout=dropout, classifier_activation=classifier_activation)
    if not aux_heads:
        return keras.Model(inputs, main, name="googlenet")
    return keras.Model(inputs, {"main": main, **aux_outputs}, name="googlenet_training")


def inference_model(model: keras.Model) -> keras.Model:
    """The main path of a (training) GoogLeNet without its auxiliary heads; every weight is shared."""
    return keras.Model(model.input, model.get_layer("predictions").output, name="googlenet")


def with_aux_targets(dataset):
    """Map a ``(image, label)`` dataset to ``(image, {"main": label, "aux1": label, "aux2": label})``."""
    return dataset.map(lambda x, y: (x, {"main": y, "aux1": y, "aux2": y}))


def compile_with_aux(model: keras.Model, optimizer, *, aux_weight: float = AUX_LOSS_WEIGHT,
                     loss="sparse_categorical_crossentropy", metrics=("accuracy",)) -> keras.Model:
    """Compile a training GoogLeNet: total loss = main + ``aux_weight`` × (aux1 + aux2), accuracy per output."""
    heads = list(model.output.keys()) if isinstance(model.output, dict) else []
    if sorted(heads) != ["aux1", "aux2", "main"]:
        raise ValueError("compile_with_aux needs the training model from build('googlenet', aux_heads=True).")
    model.compile(
        optimizer=optimizer,
        loss={head: loss for head in heads},
        loss_weights={head: 1.0 if head == "main" else aux_weight for head in heads},
        metrics={head: list(metrics) for head in heads},
    )
    return model
