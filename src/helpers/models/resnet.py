"""ResNet (He, Zhang, Ren, Sun 2015, "Deep residual learning for image recognition"): blocks + configuration table.

Two block types (basic: 3×3 → 3×3; bottleneck: 1×1 → 3×3 → 1×1 with 4× wider output) and three shortcut
options (§3.3): A = identity, subsampled and zero-padded where the shape changes (no parameters); B = 1×1
projection + BN only where the shape changes; C = projection everywhere. Convolutions have no bias (the BN
after each one has its own shift β). "Plain" twins are the same stacks without shortcuts, for the paper's
degradation experiment.

ImageNet nets (224×224): resnet18/34/50/101/152, option B by default; their trainable counts equal
torchvision's (11,689,512 for ResNet-18 … 60,192,808 for ResNet-152). CIFAR nets (32×32): resnet20/32/44/56/110
with 16/32/64 channels and option A, as in §4.2 (269,722 parameters for ResNet-20).
"""

from __future__ import annotations

import keras
from keras import layers

from helpers.layers import BatchNormalization, ZeroPadShortcut
from helpers.models._parts import check_top_options, check_width, features, pooled_top, scaled
from helpers.models._registry import check_input_size, register

EXPANSION = {"basic": 1, "bottleneck": 4}  # output channels of a block = expansion × its width

# name -> (family, block, blocks per stage); the stage widths come from the family.
CONFIGS = {
    "resnet18": ("imagenet", "basic", (2, 2, 2, 2)),
    "resnet34": ("imagenet", "basic", (3, 4, 6, 3)),
    "resnet50": ("imagenet", "bottleneck", (3, 4, 6, 3)),
    "resnet101": ("imagenet", "bottleneck", (3, 4, 23, 3)),
    "resnet152": ("imagenet", "bottleneck", (3, 8, 36, 3)),
    # CIFAR-10 nets of depth 6n + 2: three stages of n basic blocks.
    "resnet20": ("cifar", "basic", (3, 3, 3)),
    "resnet32": ("cifar", "basic", (5, 5, 5)),
    "resnet44": ("cifar", "basic", (7, 7, 7)),
    "resnet56": ("cifar", "basic", (9, 9, 9)),
    "resnet110": ("cifar", "basic", (18, 18, 18)),
}
STAGE_WIDTHS = {"imagenet": (64, 128, 256, 512), "cifar": (16, 32, 64)}
DEFAULT_SHORTCUT = {"imagenet": "B", "cifar": "A"}  # the paper's choices (ImageNet Table 3 / CIFAR §4.2)
# The plain twins the paper trains (Fig. 4 for 18/34 on ImageNet, Fig. 6 for 20–110 on CIFAR-10).
PLAIN_TWINS = ("resnet18", "resnet34", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110")


def _conv_bn(x, filters, kernel_size, strides, name, *, relu=True, zero_gamma=False, padding="same"):
    """Bias-free convolution → batch norm (→ ReLU), the unit every ResNet layer is made of."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    # Keras's BN defaults (momentum 0.99, ε 1e-3) are not the ResNet ports'; these are Torch's and torchvision's
    # (momentum 0.1 in their convention, ε 1e-5).
    x = BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer="zeros" if zero_gamma else "ones",
                           name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def shortcut(x, channels, stride, option, name):
    """The identity path of a block: options A, B or C of §3.3 (see the module docstring)."""
    changes_shape = stride != 1 or x.shape[-1] != channels
    if option == "C" or (option == "B" and changes_shape):
        return _conv_bn(x, channels, 1, stride, f"{name}_shortcut", relu=False)
    if option == "A" and changes_shape:
        return ZeroPadShortcut(channels, stride, name=f"{name}_shortcut")(x)
    return x


def _merge(x, residual, channels, stride, option, name):
    """Add the shortcut (residual nets) or nothing (plain nets), then the block's final ReLU."""
    if option is not None:
        residual = layers.Add(name=f"{name}_add")([shortcut(x, channels, stride, option, name), residual])
    return layers.Activation("relu", name=f"{name}_out")(residual)


def basic_block(x, width, stride=1, *, shortcut_option="B", zero_init_last_bn=False, name="block"):
    """3×3 conv → BN → ReLU → 3×3 conv → BN, + shortcut, ReLU. ``shortcut_option=None`` makes it plain."""
    y = _conv_bn(x, width, 3, stride, f"{name}_1")
    y = _conv_bn(y, width, 3, 1, f"{name}_2", relu=False, zero_gamma=zero_init_last_bn)
    return _merge(x, y, width, stride, shortcut_option, name)


def bottleneck_block(x, width, stride=1, *, shortcut_option="B", zero_init_last_bn=False, stride_on="1x1",
                     name="block"):
    """1×1 (reduce to ``width``) → 3×3 → 1×1 (expand to 4 × ``width``), each with BN, + shortcut, ReLU.

    ``stride_on="1x1"`` downsamples in the first 1×1 conv as the paper (and keras.applications) does;
    ``"3x3"`` downsamples in the 3×3 conv as torchvision's "ResNet v1.5" does. The counts are the same.
    """
    y = _conv_bn(x, width, 1, stride if stride_on == "1x1" else 1, f"{name}_1")
    y = _conv_bn(y, width, 3, stride if stride_on == "3x3" else 1, f"{name}_2")
    y = _conv_bn(y, EXPANSION["bottleneck"] * width, 1, 1, f"{name}_3", relu=False, zero_gamma=zero_init_last_bn)
    return _merge(x, y, EXPANSION["bottleneck"] * width, stride, shortcut_option, name)


def _check_choice(what, value, allowed):
    if value not in allowed:
        raise ValueError(f"{what} must be one of {list(allowed)}, not {value!r}.")


def build_resnet(*, input_shape, num_classes, family, block, blocks, plain, shortcut=None, width=1.0,
                 stride_on=None, zero_init_last_bn=False, cifar=False, include_top=True, pooling=None,
                 classifier_activation="softmax"):
    """A ResNet (or its plain twin) of ``family`` "imagenet"/"cifar" with ``blocks`` blocks per stage.

    Options: ``shortcut`` "A"/"B"/"C" (default: B for ImageNet nets, A for CIFAR nets, as in the paper);
    ``width`` scales every channel count (e.g. 0.5 for a CPU run); ``stride_on`` "1x1" (default, the
    paper's) or "3x3" (torchvision v1.5) for bottleneck nets; ``zero_init_last_bn`` starts each block's last
    BN at γ = 0, so every residual block begins as the identity (Goyal et al. 2017). ``cifar=True`` adapts an
    ImageNet net (ResNet-18 …) to 32×32 images as the standard CIFAR ports do (kuangliu/pytorch-cifar): the
    stem's 7×7/2 convolution and 3×3/2 max-pool (which shrink a 224-pixel image 4×) become one 3×3 stride-1
    convolution, so the four stages see 32, 16, 8 and 4 pixels. ``include_top``/``pooling``/
    ``classifier_activation``: as keras.applications' (see ``helpers.models._parts``).
    """
    _check_choice("family", family, STAGE_WIDTHS)
    _check_choice("block", block, EXPANSION)
    depth = (2 if block == "basic" else 3) * sum(blocks) + 2
    name = f"{'plain' if plain else 'resnet'}{depth}"
    if plain and (shortcut is not None or zero_init_last_bn):
        raise ValueError(f"{name} is a plain net: it has no shortcuts, so shortcut/zero_init_last_bn do not apply.")
    option = None if plain else (shortcut or DEFAULT_SHORTCUT[family]).upper()
    if option is not None:
        _check_choice("shortcut", option, ("A", "B", "C"))
    if block == "basic" and stride_on is not None:
        raise ValueError(f"{name} has basic blocks; stride_on only applies to bottleneck nets (ResNet-50 and up).")
    stride_on = stride_on or "1x1"
    _check_choice("stride_on", stride_on, ("1x1", "3x3"))
    if cifar and family == "cifar":
        raise ValueError(f"{name} is already a CIFAR net (3×3 stem, 16/32/64 channels): cifar=True applies to "
                         "the ImageNet nets (resnet18 …).")
    check_width(width)
    check_top_options(include_top, pooling, classifier_activation)
    # Every stride 2 halves the maps ("same" padding rounds up); below the total stride the last stage
    # would see only padding.
    imagenet_stem = family == "imagenet" and not cifar
    total_stride = (4 if imagenet_stem else 1) * 2 ** (len(blocks) - 1)
    check_input_size(name, input_shape, min_size=total_stride)

    scale = lambda channels: scaled(channels, width)  # noqa: E731
    inputs = keras.Input(input_shape, name="image")
    if imagenet_stem:
        # Padding 3 and 1 on every side, as fb.resnet.torch, torchvision and keras.applications pad:
        # "same" would pad 2 before and 3 after, shifting every sample by a pixel (published weights expect this).
        x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
        x = _conv_bn(x, scale(64), 7, 2, "stem", padding="valid")
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)  # zeros lose no maximum after a ReLU
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    else:
        x = _conv_bn(inputs, scale(STAGE_WIDTHS[family][0]), 3, 1, "stem")

    for stage, (stage_width, count) in enumerate(zip(STAGE_WIDTHS[family], blocks), start=1):
        for index in range(1, count + 1):
            stride = 2 if (stage > 1 and index == 1) else 1
            common = dict(shortcut_option=option, zero_init_last_bn=zero_init_last_bn,
                          name=f"stage{stage}_block{index}")
            if block == "basic":
                x = basic_block(x, scale(stage_width), stride, **common)
            else:
                x = bottleneck_block(x, scale(stage_width), stride, stride_on=stride_on, **common)

    if include_top:
        x = pooled_top(x, num_classes, classifier_activation=classifier_activation)
    else:
        x = features(x, pooling)
    return keras.Model(inputs, x, name=name)


for _name, (_family, _block, _blocks) in CONFIGS.items():
    register(_name, family=_family, block=_block, blocks=_blocks, plain=False)(build_resnet)
for _name in PLAIN_TWINS:
    _family, _block, _blocks = CONFIGS[_name]
    register(_name.replace("resnet", "plain"), family=_family, block=_block, blocks=_blocks, plain=True)(build_resnet)
