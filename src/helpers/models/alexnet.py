"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) as in the paper, plus its training-time augmentation.

Five convolutions and three fully connected layers. The paper split the network over two GPUs: conv2, conv4
and conv5 only see the feature maps on their own GPU, which is a 2-group convolution
(``Conv2D(groups=2)``: each half of the output channels sees one half of the input channels). With 1,000
classes and 227×227 inputs that gives exactly 60,965,224 parameters; ``groups=1`` is the single-tower
variant with 62,378,344.
"""

import keras
from keras import layers

from helpers.layers import LocalResponseNormalization, PCAColorJitter
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
# The paper crops 224-pixel patches from 256-pixel images; keep that ratio at any size.
CROP_FRACTION = 224 / 256


def _scaled(filters: int, width: float, groups: int) -> int:
    """``filters × width``, rounded to a multiple of ``groups`` (a grouped conv needs equal halves)."""
    return max(groups, round(filters * width / groups) * groups)


def subtract_mean(x, mean, channels: int):
    """The papers' input preprocessing: subtract the training set's mean RGB value (a layer without parameters)."""
    mean = [float(m) for m in mean]
    if len(mean) != channels:
        raise ValueError(f"mean must have one value per input channel ({channels}), got {len(mean)}.")
    return layers.Normalization(mean=mean, variance=[1.0] * channels, name="subtract_mean")(x)


def check_size_options(width, fc_units, dropout) -> None:
    """Clear errors for the options that shrink a network for a CPU (shared with VGG)."""
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"width must be a positive number, not {width!r}.")
    if not (isinstance(fc_units, int) and fc_units >= 1):
        raise ValueError(f"fc_units must be a positive int, not {fc_units!r}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), not {dropout!r}.")


def classifier(x, num_classes: int, fc_units: int, dropout: float):
    """AlexNet's head, which VGG kept: flatten, fc6 and fc7 (ReLU, dropout), fc8 with softmax."""
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(fc_units, activation="relu", name=name)(x)
        x = layers.Dropout(dropout, name=f"drop{name[2:]}")(x)
    # float32 output: a stable softmax and loss under mixed precision; no extra parameters.
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


@register("alexnet")
def build_alexnet(*, input_shape=PAPER_INPUT, num_classes=1000, groups=2, width=1.0, fc_units=4096,
                  dropout=0.5, lrn=True, mean=None):
    """AlexNet; ``groups=1`` for one tower, ``width``/``fc_units`` to shrink it for a CPU (paper: 1.0, 4096).

    ``mean``: the training images' mean RGB value, subtracted from the input first (the paper subtracted the
    mean image; the per-channel mean is the common simplification). None leaves the input as it is.
    """
    check_input_size("alexnet", input_shape, min_size=MIN_INPUT)
    if groups not in (1, 2):
        raise ValueError(f"groups must be 2 (the paper's two GPUs) or 1 (one tower), not {groups!r}.")
    check_size_options(width, fc_units, dropout)

    inputs = keras.Input(input_shape, name="image")
    x = inputs if mean is None else subtract_mean(inputs, mean, input_shape[-1])
    for i, (name, filters, kernel, stride, padding, grouped, has_lrn, has_pool) in enumerate(CONVOLUTIONS, 1):
        x = layers.Conv2D(_scaled(filters, width, groups), kernel, strides=stride, padding=padding,
                          groups=groups if grouped else 1, activation="relu", name=name)(x)
        if has_lrn and lrn:
            # The paper's constants k=2, n=5, α=1e-4, β=0.75 are the layer's defaults.
            x = LocalResponseNormalization(name=f"norm{i}")(x)
        if has_pool:
            x = layers.MaxPooling2D(pool_size=3, strides=2, name=f"pool{i}")(x)  # overlapping pooling
    outputs = classifier(x, num_classes, fc_units, dropout)
    return keras.Model(inputs, outputs, name="alexnet" if groups == 2 else "alexnet_one_tower")


def load_size(crop_size: int) -> int:
    """The image size to load so that a ``crop_size`` crop is 224/256 of it, as in the paper."""
    return round(crop_size / CROP_FRACTION)


def augmentation(crop_size: int, color_jitter: PCAColorJitter | None = None, seed: int | None = None):
    """The paper's training augmentation (§4.1) as Keras preprocessing layers, for batches of images.

    Random ``crop_size`` crops (of images loaded at ``load_size(crop_size)``), horizontal flips and, if given,
    the adapted PCA colour jitter. Keras's RandomCrop draws one offset per batch, not per image; batches are
    reshuffled every epoch, so each image still sees many different crops over training.
    """
    steps = [layers.RandomCrop(crop_size, crop_size, seed=seed, name="random_crop"),
             layers.RandomFlip("horizontal", seed=seed, name="random_flip")]
    if color_jitter is not None:
        steps.append(color_jitter)
    return keras.Sequential(steps, name="alexnet_augmentation")


def center_crop(crop_size: int):
    """The evaluation counterpart of ``augmentation``: the central ``crop_size`` patch (the paper's single-crop test)."""
    return layers.CenterCrop(crop_size, crop_size, name="center_crop")
