"""The speed records' CIFAR-10 network (Jordan 2024, airbench's 93 % net), built from the course's own parts.

A VGG-style stack (Simonyan & Zisserman 2014) of three conv groups, each conv → max-pool → BatchNorm → GELU →
conv → BatchNorm → GELU, widths 64/128/128, after a 2×2 *whitening* convolution whose kernel is computed from
the training images (``helpers.tricks.whitening_kernel``) and frozen. The convolutions start as identities on
their first channels (``helpers.tricks.Dirac``), BatchNorm has no scale (γ = 1) and a fast-moving average
(Keras momentum 0.4: each batch weighs 60 % in the running statistics; airbench's ``batchnorm_momentum`` 0.6
is PyTorch's momentum 0.4, 40 %: a difference of this translation, which the recorded figures were measured with), the classifier is one bias-free Dense layer whose
scores are divided by 9. About 0.57 M parameters; 32×32 inputs are CIFAR-10's pixels 0–255.
"""

import keras
from keras import layers

from helpers.layers import BatchNormalization
from helpers.models._parts import check_top_options, features
from helpers.models._registry import check_input_size, register
from helpers.tricks import Bias, Dirac

# Per-channel mean and standard deviation of CIFAR-10's training pixels (in 0–1), as the reference normalises.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
WIDTHS = (64, 128, 128)


def _conv(filters, dirac, name):
    init = Dirac() if dirac else keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
    return layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=name)


def _norm(name, bn_momentum, fused):
    # The course's batch norm by default: Keras's, computed by TensorFlow's fused kernel (faster on a CPU, same
    # results); fused=False gives Keras's own layer, for comparison.
    layer = BatchNormalization if fused else layers.BatchNormalization
    return layer(momentum=bn_momentum, epsilon=1e-12, scale=False, name=name)


def conv_group(x, filters, *, name, dirac=True, bn_momentum=0.4, activation="gelu", fused_batch_norm=True):
    """conv → 2×2 max-pool → BN → GELU → conv → BN → GELU: VGG's block with BN (Ioffe & Szegedy 2015) placed
    after the pooling, where it costs a quarter as much."""
    x = _conv(filters, dirac, f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = _norm(f"{name}_norm1", bn_momentum, fused_batch_norm)(x)
    x = _conv(filters, dirac, f"{name}_conv2")(layers.Activation(activation, name=f"{name}_act1")(x))
    x = _norm(f"{name}_norm2", bn_momentum, fused_batch_norm)(x)
    return layers.Activation(activation, name=f"{name}_act2")(x)


@register("speedrun")
def build_speedrun(*, input_shape, num_classes, widths=WIDTHS, whitening=True, dirac=True, bn_momentum=0.4,
                   activation="gelu", fused_batch_norm=True, include_top=True, pooling=None,
                   classifier_activation="softmax"):
    """The net with its options for the ablation: ``whitening=False`` makes the first layer an ordinary
    trainable 2×2 convolution of the same width, ``dirac=False`` initialises every convolution at random.
    ``activation`` (any Keras activation) and ``fused_batch_norm=False`` (Keras's own layer) are there for
    ``benchmarks/speedrun_step.py``'s comparisons.

    Call ``helpers.tricks.whitening_kernel`` on normalised training images and set it into the layer
    ``whiten`` (``helpers.speedrun.init_whitening`` does both) before training.
    """
    if len(widths) != 3 or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(f"widths must be three positive ints, not {widths!r}.")
    check_input_size("speedrun", input_shape, min_size=9)  # 2×2 valid conv, then three 2×2 pools: (n − 1) ≥ 8
    check_top_options(include_top, pooling, classifier_activation)
    channels = input_shape[-1]
    whiten_width = 2 * 2 * 2 * channels

    inputs = keras.Input(input_shape, name="image")
    x = layers.Normalization(mean=[255 * m for m in CIFAR10_MEAN][:channels],
                             variance=[(255 * s) ** 2 for s in CIFAR10_STD][:channels], name="normalize")(inputs)
    x = layers.Conv2D(whiten_width, 2, use_bias=False, trainable=not whitening, name="whiten",
                      kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"))(x)
    x = layers.Activation(activation, name="whiten_act")(Bias(name="whiten_bias")(x))
    for index, width in enumerate(widths, start=1):
        x = conv_group(x, width, name=f"group{index}", dirac=dirac, bn_momentum=bn_momentum, activation=activation,
                       fused_batch_norm=fused_batch_norm)
    if not include_top:
        return keras.Model(inputs, features(x, pooling), name="speedrun")
    x = layers.GlobalMaxPooling2D(name="max_pool")(x)  # the reference's 3×3 max-pool of the 3×3 maps
    x = layers.Dense(num_classes, use_bias=False, name="logits_unscaled",
                     kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"))(x)
    x = layers.Rescaling(1 / 9, name="logits")(x)
    outputs = layers.Activation(classifier_activation or "linear", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="speedrun")
