"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) as in the paper (its augmentation: ``helpers.data.augment``).

Five convolutions and three fully connected layers. The paper split the network over two GPUs: conv2, conv4
and conv5 only see the feature maps on their own GPU, which is a 2-group convolution
(``Conv2D(groups=2)``: each half of the output channels sees one half of the input channels). With 1,000
classes and 227×227 inputs that gives exactly 60,965,224 parameters; ``groups=1`` is the single-tower
variant with 62,378,344.
"""

import keras
from keras import layers

from helpers.layers import BatchNormalization, LocalResponseNormalization
from helpers.models._parts import check_size_options, check_top_options, fc_top, features, scaled, subtract_mean
from helpers.models._registry import check_input_size, register

PAPER_INPUT = (227, 227, 3)
# (name, filters, kernel, stride, padding, grouped, then LRN, then max-pooling)
CONVOLUTIONS = [
    ("conv1", 96, 11, 4, "valid", False, True, True),
    ("conv2", 256, 5, 1, "same", True, True, True),
    ("conv3", 384, 3, 1, "same", False, False, False),
    ("conv4", 384, 3, 1, "same", True, False, False),
    ("conv5", 256, 3, 1, "same", True, False, True),
]
# conv1 11/4 then three 3/2 poolings: the smallest input that still leaves a 1×1 map after pool5.
MIN_INPUT = 67
CIFAR_MIN_INPUT = 15  # with a 3×3 stride-1 conv1 the three 3/2 poolings take 15 → 7 → 3 → 1


@register("alexnet")
def build_alexnet(*, input_shape=PAPER_INPUT, num_classes=1000, groups=2, width=1.0, fc_units=4096,
                  dropout=0.5, lrn=True, batch_norm=False, cifar=False, mean=None, include_top=True, pooling=None,
                  classifier_activation="softmax"):
    """AlexNet; ``groups=1`` for one tower, ``width``/``fc_units`` to shrink it for a CPU (paper: 1.0, 4096).

    ``cifar=True`` adapts it to 32×32 images the way the CIFAR ports of VGG and ResNet adapt theirs: conv1
    becomes 3×3 with stride 1 (an 11×11 stride-4 filter would leave 6×6 maps after one layer), everything else
    is the paper's, so the three overlapping poolings take 32 → 15 → 7 → 3. ``batch_norm=True`` puts batch
    normalisation between each convolution and its ReLU and drops LRN (as BN replaced it in later networks).
    ``mean``: the training images' mean RGB value, subtracted from the input first (the paper subtracted the
    mean image; the per-channel mean is the common simplification). None leaves the input as it is.
    ``include_top``/``pooling``/``classifier_activation``: as keras.applications' (see ``helpers.models._parts``).
    """
    check_input_size("alexnet", input_shape, min_size=CIFAR_MIN_INPUT if cifar else MIN_INPUT)
    if groups not in (1, 2):
        raise ValueError(f"groups must be 2 (the paper's two GPUs) or 1 (one tower), not {groups!r}.")
    check_size_options(width, fc_units, dropout)
    check_top_options(include_top, pooling, classifier_activation)

    inputs = keras.Input(input_shape, name="image")
    x = inputs if mean is None else subtract_mean(inputs, mean, input_shape[-1])
    for i, (name, filters, kernel, stride, padding, grouped, has_lrn, has_pool) in enumerate(CONVOLUTIONS, 1):
        if cifar and name == "conv1":
            kernel, stride, padding = 3, 1, "same"
        conv = layers.Conv2D(scaled(filters, width, groups), kernel, strides=stride, padding=padding,
                             groups=groups if grouped else 1, use_bias=not batch_norm,
                             activation=None if batch_norm else "relu", name=name)
        x = conv(x)
        if batch_norm:
            x = BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
            x = layers.Activation("relu", name=f"{name}_relu")(x)
        elif has_lrn and lrn:
            # The paper's constants k=2, n=5, α=1e-4, β=0.75 are the layer's defaults.
            x = LocalResponseNormalization(name=f"norm{i}")(x)
        if has_pool:
            x = layers.MaxPooling2D(pool_size=3, strides=2, name=f"pool{i}")(x)  # overlapping pooling
    if include_top:
        x = fc_top(x, num_classes, fc_units=fc_units, dropout=dropout, classifier_activation=classifier_activation)
    else:
        x = features(x, pooling)
    return keras.Model(inputs, x, name="alexnet" if groups == 2 else "alexnet_one_tower")
