"""VGG (Simonyan & Zisserman 2014): configurations A–E of the paper's Table 1 from one table.

Every configuration is five blocks of 3×3 convolutions (stride 1, padding 1) with 64, 128, 256, 512, 512
filters, each block ending in 2×2 max-pooling, then fc6 4096 → fc7 4096 → fc8 (dropout 0.5 on fc6 and fc7).
Configurations differ only in how many convolutions each block holds; C replaces the last conv of blocks
3–5 by a 1×1 conv, and A-LRN adds local response normalisation after the first conv. D and E are
keras.applications.VGG16 / VGG19 layer for layer (same names, same parameter counts).
"""

import keras
from keras import layers

from helpers.layers import BatchNormalization, LocalResponseNormalization
from helpers.models._registry import check_input_size, register
from helpers.models._parts import check_size_options, check_top_options, classify, fc_top, features, scaled, \
    subtract_mean

PAPER_INPUT = (224, 224, 3)
# One entry per block: the kernel size of each convolution in it. Widths are the same for every config.
BLOCK_WIDTHS = (64, 128, 256, 512, 512)
CONFIGS = {
    "A": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "A-LRN": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "B": ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    "C": ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    "D": ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    "E": ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
}
NAMES = {"A": "vgg11", "A-LRN": "vgg11_lrn", "B": "vgg13", "C": "vgg16_c", "D": "vgg16", "E": "vgg19"}
MIN_INPUT = 2 ** len(BLOCK_WIDTHS)  # five 2×2 poolings


@register("vgg11", config="A")
@register("vgg11_lrn", config="A-LRN")
@register("vgg13", config="B")
@register("vgg16_c", config="C")
@register("vgg16", config="D")
@register("vgg19", config="E")
def build_vgg(*, input_shape=PAPER_INPUT, num_classes=1000, config="D", width=1.0, fc_units=4096, dropout=0.5,
              batch_norm=False, cifar=False, mean=None, include_top=True, pooling=None, classifier_activation="softmax"):
    """VGG configuration ``config``; ``width``/``fc_units``/``batch_norm`` for a CPU (paper: 1.0, 4096, False).

    ``batch_norm=True`` inserts BatchNormalization between each conv and its ReLU (as torchvision's
    ``vgg16_bn``, but without the conv biases that BN's shift makes redundant); it did not exist in 2014 but
    lets small-data runs train without the paper's staged initialisation from configuration A. ``cifar=True``
    is the 32×32 adaptation of the standard CIFAR ports (kuangliu/pytorch-cifar): the same convolutions, and
    after the fifth pooling (1×1×512 maps) a single fully connected layer, the classifier, instead of fc6–fc8
    (so ``fc_units`` and ``dropout`` do not apply).
    ``mean``: the training set's mean RGB value, subtracted from the input first — the paper's only
    preprocessing. None leaves the input as it is. ``include_top``/``pooling``/``classifier_activation``: as
    keras.applications' (see ``helpers.models._parts``).
    """
    name = NAMES[config]
    check_input_size(name, input_shape, min_size=MIN_INPUT)
    check_size_options(width, fc_units, dropout)
    check_top_options(include_top, pooling, classifier_activation)

    inputs = keras.Input(input_shape, name="image")
    x = inputs if mean is None else subtract_mean(inputs, mean, input_shape[-1])
    for block, (filters, kernels) in enumerate(zip(BLOCK_WIDTHS, CONFIGS[config]), start=1):
        for i, kernel in enumerate(kernels, start=1):
            conv_name = f"block{block}_conv{i}"
            conv = layers.Conv2D(scaled(filters, width), kernel, padding="same", name=conv_name,
                                 activation=None if batch_norm else "relu", use_bias=not batch_norm)
            x = conv(x)
            if batch_norm:
                # momentum 0.9 (torchvision's 0.1): the running statistics keep up on a small dataset
                x = BatchNormalization(momentum=0.9, name=f"{conv_name}_bn")(x)
                x = layers.Activation("relu", name=f"{conv_name}_relu")(x)
            if config == "A-LRN" and block == 1 and i == 1:
                x = LocalResponseNormalization(name="block1_lrn")(x)  # AlexNet's constants, as the paper says
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if not include_top:
        x = features(x, pooling)
    elif cifar:
        x = classify(layers.Flatten(name="flatten")(x), num_classes, classifier_activation)
    else:
        x = fc_top(x, num_classes, fc_units=fc_units, dropout=dropout, classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)
