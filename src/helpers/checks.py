"""Checks a student runs on an exercise: real inputs, the reference behaviour, and plain words when wrong.

Each ``check_*`` function calls the student's code, compares it with what the course's reference (Keras,
TensorFlow or the paper) does, and raises :class:`CheckFailed` with one sentence saying what differs. An
unfinished exercise (``NotImplementedError``) and errors inside the student's code are reported the same way,
so the learner sees a short message instead of a deep traceback.
"""

from __future__ import annotations


class CheckFailed(AssertionError):
    """The exercise is not finished or gives a wrong answer; the message says what is wrong."""


def _call(fn, *args, **kwargs):
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(f"{name} is not written yet: replace the `raise NotImplementedError(...)` line "
                          "with your code, run that cell, then run this check again.") from None
    except Exception as e:
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise CheckFailed(f"{name}({shown}) raised {type(e).__name__}: {e}") from None


def _passed(what: str) -> None:
    print(f"✓ {what}")


def check_output_size(fn) -> None:
    """``fn(n, k, s, p)`` must give the output length Keras gives, on layers of this course's networks."""
    import keras

    cases = [  # (n, k, s, p): LeNet C1, AlexNet conv1 (227 and padded 224), pool 3/2, VGG 3×3, ResNet stem
        (32, 5, 1, 0), (227, 11, 4, 0), (224, 11, 4, 2), (55, 3, 2, 0), (224, 3, 1, 1), (224, 7, 2, 3),
        (112, 3, 2, 1), (28, 2, 2, 0), (10, 4, 3, 0), (7, 7, 1, 0),
    ]
    for n, k, s, p in cases:
        stack = keras.Sequential([keras.Input((n, n, 1)), keras.layers.ZeroPadding2D(p), keras.layers.Conv2D(1, k, s)])
        expected = stack.output_shape[1]
        got = _call(fn, n, k, s, p)
        if isinstance(got, float) and not got.is_integer():
            raise CheckFailed(f"output_size(n={n}, k={k}, s={s}, p={p}) returned {got}, a fraction: sizes are "
                              "whole numbers, so round down (use // rather than /).")
        if got != expected:
            raise CheckFailed(f"output_size(n={n}, k={k}, s={s}, p={p}) returned {got}, but a Keras Conv2D "
                              f"with that padding gives {expected}.")
    _passed(f"output_size agrees with Keras on {len(cases)} layers of the course's networks")


def _array(fn, *args, name: str, shape: tuple):
    """Call ``fn`` and return its result as a NumPy array of ``shape``, or say why it is not one."""
    import numpy as np

    got = _call(fn, *args)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should return an array of numbers, not {type(got).__name__}.") from None
    if got.shape != shape:
        transposed = " (rows and columns swapped?)" if got.shape == shape[::-1] else ""
        raise CheckFailed(f"{name} returned an array of shape {got.shape}; expected {shape}{transposed}.")
    return got


def check_c3_table(fn) -> None:
    """``fn()`` must return LeNet-5's 6×16 C3 connection table (paper Table I) as 0/1."""
    import numpy as np

    from helpers.layers import c3_connections

    got = _array(fn, name="c3_table()", shape=(6, 16))
    if not np.isin(got, (0, 1)).all():
        raise CheckFailed("c3_table() should hold only 0 (not connected) and 1 (connected).")
    expected = c3_connections()
    wrong = np.argwhere(got != expected)
    if len(wrong):
        s2, c3 = wrong[0]
        should = "read" if expected[s2, c3] else "not read"
        raise CheckFailed(f"{len(wrong)} of 96 entries differ from the paper. First: C3 map {c3} should {should} "
                          f"S2 map {s2} (row {s2}, column {c3} should be {expected[s2, c3]}).")
    _passed(f"c3_table() is the paper's Table I: {int(expected.sum())} of 96 map pairs connected")


def _real_activations(channels: int = 12, size: int = 24):
    """Non-negative, photo-derived activations (like those after a ReLU) from a real Dogs vs. Cats image."""
    import numpy as np
    from PIL import Image

    from helpers.data.images import ensure_cats_and_dogs

    path = sorted((ensure_cats_and_dogs() / "validation" / "cats").glob("*.jpg"))[0]
    rgb = np.asarray(Image.open(path).convert("RGB").resize((size, size)), dtype=np.float32)
    # Flipped and transposed copies: up to 24 channels with the statistics of a photo.
    views = [v for img in (rgb, rgb.transpose(1, 0, 2)) for v in (img, img[::-1], img[:, ::-1], img[::-1, ::-1])]
    if channels > 3 * len(views):
        raise ValueError(f"at most {3 * len(views)} channels, not {channels}")
    return np.concatenate(views, axis=-1)[None, ..., :channels]


def check_lrn(fn) -> None:
    """``fn(a)`` must apply AlexNet's LRN (k=2, n=5, α=1e-4, β=0.75, α not divided by n) over channels."""
    import numpy as np
    import tensorflow as tf

    a = _real_activations()
    got = _array(fn, a, name="lrn(a)", shape=a.shape)
    paper = tf.nn.local_response_normalization(a, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75).numpy()
    if np.allclose(got, paper, rtol=1e-4, atol=1e-4):
        _passed("lrn matches the paper's formula (k=2, n=5, α=1e-4, β=0.75) on activations from a real photo")
        return
    # Name the usual mistakes when the answer equals one of them.
    mistakes = {
        "α is divided by n (the Caffe convention, not the paper's)":
            dict(depth_radius=2, bias=2.0, alpha=1e-4 / 5, beta=0.75),
        "k = 1 and α = 2e-5 (a common tutorial setting, not the paper's)":
            dict(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75),
        "the window spans n = 5 channels on each side instead of n = 5 in all (2 each side)":
            dict(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.75),
    }
    for description, params in mistakes.items():
        if np.allclose(got, tf.nn.local_response_normalization(a, **params).numpy(), rtol=1e-4, atol=1e-4):
            raise CheckFailed(f"lrn looks like the version where {description}.")
    where = np.unravel_index(np.argmax(np.abs(got - paper)), a.shape)
    raise CheckFailed(f"lrn(a) differs from the paper's formula: at index {tuple(map(int, where))} "
                      f"(channel {where[-1]}) it gives {got[where]:.6g} where the paper gives {paper[where]:.6g}.")


def check_vgg_block(fn) -> None:
    """``fn(x, filters, kernels)`` must add one VGG block: a conv + ReLU per kernel size, then 2×2 max-pool."""
    import keras
    import numpy as np

    cases = [(128, (3, 3, 1)), (64, (3,)), (32, (3, 3, 3, 3))]  # C's block 3 (scaled), A's block 1, E's block 3
    for filters, kernels in cases:
        inputs = keras.Input((32, 32, 16))
        outputs = _call(fn, inputs, filters, kernels)
        block = keras.Model(inputs, outputs)
        expected_shape = (None, 16, 16, filters)
        if tuple(block.output_shape) != expected_shape:
            hint = " Did you forget the 2×2 max-pooling (stride 2) at the end?" if block.output_shape[1] == 32 else ""
            hint += " Use padding='same' so the convolutions keep the size." if block.output_shape[1] < 16 else ""
            raise CheckFailed(f"vgg_block(x, {filters}, {kernels}) on a 32×32×16 input gives {block.output_shape}; "
                              f"expected {expected_shape}.{hint}")
        expected_params, channels = 0, 16
        for k in kernels:
            expected_params += (k * k * channels + 1) * filters
            channels = filters
        if block.count_params() != expected_params:
            convs = [layer for layer in block.layers if isinstance(layer, keras.layers.Conv2D)]
            raise CheckFailed(f"vgg_block(x, {filters}, {kernels}) has {block.count_params():,} parameters; one "
                              f"{'×'.join(map(str, kernels))} stack of convolutions with biases has "
                              f"{expected_params:,}. It has {len(convs)} Conv2D layers with kernel sizes "
                              f"{[layer.kernel_size[0] for layer in convs]}; expected {list(kernels)}.")
    image = _real_activations(channels=16, size=32) / 255.0
    response = np.asarray(block(image))
    if response.min() < 0:
        raise CheckFailed("vgg_block gives negative outputs on a real image: each convolution needs its ReLU.")
    _passed(f"vgg_block builds the right shapes and parameter counts for {len(cases)} configurations")
