"""Checks a student runs on an exercise: real inputs, the reference behaviour, and plain words when wrong.

Each ``check_*`` function calls the student's code, compares it with what the course's reference (Keras,
TensorFlow or the paper) does, and raises :class:`CheckFailed` with one sentence saying what differs. An
unfinished exercise (``NotImplementedError``) and errors inside the student's code are reported the same way,
so the learner sees a short message instead of a deep traceback.
"""

from __future__ import annotations


class CheckFailed(AssertionError):
    """The exercise is not finished or gives a wrong answer; the message says what is wrong."""


def _show_message_only(shell, etype, value, tb, tb_offset=None):
    """How a notebook shows a failed check: its message, without the traceback through this module.

    The cell still ends in an error (the rest of "Run All" stops, and grading sees the failure); only what the
    learner reads changes: one red line saying what to fix, not 25 lines of frames with this file's source.
    """
    lines = [f"\x1b[1;31mCheck failed:\x1b[0m {value}"]
    shell._showtraceback(etype, value, lines)  # the notebook's error output, with these lines as its traceback
    return lines


def _register_with_ipython() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: an ordinary exception with its traceback
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((CheckFailed,), _show_message_only)


_register_with_ipython()


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


def _block_model(fn, input_shape, *args, what: str):
    """A Keras model of the student's block on an input of ``input_shape``."""
    import keras

    inputs = keras.Input(input_shape)
    outputs = _call(fn, inputs, *args)
    if not isinstance(outputs, keras.KerasTensor):
        raise CheckFailed(f"{what} should return the Keras tensor it builds, not {type(outputs).__name__}.")
    return keras.Model(inputs, outputs)


def _conv_kernels(model) -> list[tuple]:
    import keras

    return sorted(tuple(layer.kernel.shape) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def _describe_kernel(shape) -> str:
    kh, kw, c_in, c_out = shape
    return f"a {kh}×{kw} convolution from {c_in} to {c_out} channels"


def _compare_kernels(ours, reference, what: str) -> None:
    missing = [k for k in reference if k not in ours or ours.count(k) < reference.count(k)]
    extra = [k for k in ours if k not in reference or reference.count(k) < ours.count(k)]
    if missing:
        raise CheckFailed(f"{what} lacks {_describe_kernel(missing[0])}"
                          + (f" (it has {_describe_kernel(extra[0])} instead)." if extra else "."))
    if extra:
        raise CheckFailed(f"{what} has an extra {_describe_kernel(extra[0])}.")


def check_inception_module(fn) -> None:
    """``fn(x, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj)``: GoogLeNet's dimension-reduced module."""
    import numpy as np

    from helpers.models.googlenet import inception_module

    cases = {"3a": ((28, 28, 192), (64, 96, 128, 16, 32, 32)), "4e": ((14, 14, 528), (256, 160, 320, 32, 128, 128))}
    for module, (shape, (n1, n3r, n3, n5r, n5, proj)) in cases.items():
        what = f"Your module {module} (input {shape[0]}×{shape[1]}×{shape[2]})"
        ours = _block_model(fn, shape, n1, n3r, n3, n5r, n5, proj, what="inception_module")
        reference = _block_model(lambda x: inception_module(x, n1, n3, n5, n3x3_reduce=n3r, n5x5_reduce=n5r,
                                                            pool_proj=proj, name=f"reference_{module}"),
                                 shape, what="reference")
        expected = tuple(reference.output_shape)
        if tuple(ours.output_shape) != expected:
            raise CheckFailed(f"{what} outputs {ours.output_shape}; expected {expected}: the four branches keep "
                              f"the {shape[0]}×{shape[1]} size ('same' padding, pool stride 1) and are concatenated "
                              f"along the channels ({n1} + {n3} + {n5} + {proj} = {expected[-1]}).")
        _compare_kernels(_conv_kernels(ours), _conv_kernels(reference), what)
        if ours.count_params() != reference.count_params():
            raise CheckFailed(f"{what} has {ours.count_params():,} parameters; the paper's has "
                              f"{reference.count_params():,} (every convolution has a bias).")
    image = _real_activations(channels=24, size=28)
    x = np.concatenate([image] * 8, axis=-1) / 255.0  # 192 channels from a real photo
    response = np.asarray(_block_model(fn, (28, 28, 192), *cases["3a"][1], what="inception_module")(x))
    if response.min() < 0:
        raise CheckFailed("inception_module gives negative outputs on a real image: every convolution, the "
                          "1×1 reductions and the pool projection included, is followed by a ReLU.")
    _passed("inception_module matches modules 3a and 4e of the paper's Table 1 (shapes, kernels, parameters)")


def check_residual_block(fn) -> None:
    """``fn(x, filters, stride)``: a basic residual block with option-B shortcut (projection only when needed)."""
    import keras
    import numpy as np

    from helpers.models.resnet import basic_block

    for shape, filters, stride in [((16, 16, 16), 32, 2), ((16, 16, 32), 32, 1), ((16, 16, 16), 16, 1)]:
        changes = stride != 1 or shape[-1] != filters
        what = f"residual_block(x, {filters}, stride={stride}) on a {shape[0]}×{shape[1]}×{shape[2]} input"
        ours = _block_model(fn, shape, filters, stride, what="residual_block")
        reference = _block_model(lambda x: basic_block(x, filters, stride, name="reference"), shape, what="reference")
        if tuple(ours.output_shape) != tuple(reference.output_shape):
            raise CheckFailed(f"{what} outputs {ours.output_shape}; expected {reference.output_shape} (the first "
                              f"3×3 convolution has the stride, both have 'same' padding).")
        if not any(isinstance(layer, keras.layers.Add) for layer in ours.layers):
            raise CheckFailed(f"{what} has no Add layer: the block must add its shortcut to the residual branch.")
        ours_k, reference_k = _conv_kernels(ours), _conv_kernels(reference)
        if changes and (1, 1, shape[-1], filters) not in ours_k:
            raise CheckFailed(f"{what} changes the shape, so its shortcut needs a 1×1 projection from "
                              f"{shape[-1]} to {filters} channels with stride {stride} (then BN).")
        if not changes and any(k[:2] == (1, 1) for k in ours_k):
            raise CheckFailed(f"{what} keeps the shape, so option B uses the identity shortcut, no projection.")
        _compare_kernels(ours_k, reference_k, what)
        if ours.count_params() != reference.count_params():
            raise CheckFailed(f"{what} has {ours.count_params():,} parameters; expected {reference.count_params():,}: "
                              "convolutions have no bias, and each is followed by BatchNormalization.")
    x = _real_activations(channels=16, size=16) / 255.0
    block = _block_model(fn, (16, 16, 16), 16, 1, what="residual_block")
    if np.asarray(block(x, training=False)).min() < 0:
        raise CheckFailed("residual_block gives negative outputs on a real image: apply the ReLU after the addition.")
    _passed("residual_block matches the paper's basic block with option-B shortcuts in 3 configurations")


def check_fold_bias(fn) -> None:
    """``fn(bias, moving_mean)``: the moving mean that lets a bias-free convolution + BN equal one with the bias."""
    import numpy as np

    rng = np.random.default_rng(7)
    channels = 6
    bias, mean = rng.normal(0, 1, channels), rng.normal(0, 1, channels)
    gamma, beta, variance, epsilon = rng.uniform(0.5, 1.5, channels), rng.normal(0, 1, channels), \
        rng.uniform(0.5, 2.0, channels), 1e-5
    z = rng.normal(0, 2, (32, channels))  # convolution outputs without the bias, one row per position

    def bn(values, moving_mean):
        return gamma * (values - moving_mean) / np.sqrt(variance + epsilon) + beta

    folded = _call(fn, bias.copy(), mean.copy())
    folded = np.asarray(folded, dtype=float) if folded is not None else None
    if folded is None or folded.shape != (channels,):
        raise CheckFailed(f"fold_bias should return one moving mean per channel (shape ({channels},)), "
                          f"not {None if folded is None else folded.shape}.")
    expected, got = bn(z + bias, mean), bn(z, folded)
    if not np.allclose(got, expected, atol=1e-6):
        if np.allclose(folded, mean + bias):
            raise CheckFailed("fold_bias adds the bias to the mean; BN subtracts the mean from conv(x) + b, so "
                              "look at the sign.")
        raise CheckFailed("with fold_bias's mean, BN(conv(x)) differs from BN(conv(x) + b) by up to "
                          f"{np.abs(got - expected).max():.3g} on random values: the bias must move the mean only.")
    _passed("fold_bias: BN(conv(x); your mean) equals BN(conv(x) + b; μ) on 32 random positions of 6 channels")


def check_freeze_all_but_classifier(fn) -> None:
    """``fn(model)`` freezes every layer but ``logits`` and returns the trainable parameter count left."""
    import helpers.models
    from helpers.transfer import with_new_classifier

    for size, classes in ((32, 2), (48, 5)):
        base = helpers.models.build("resnet20", input_shape=(size, size, 3), num_classes=classes,
                                    include_top=False, pooling="avg")
        model = with_new_classifier(base, "scratch", classes)  # everything trainable to begin with
        returned = _call(fn, model)
        learning = sorted({w.path.split("/")[0] for w in model.trainable_weights})
        count = sum(int(w.numpy().size) for w in model.trainable_weights)
        if learning != ["logits"]:
            what = "nothing" if not learning else ", ".join(learning[:4]) + (" …" if len(learning) > 4 else "")
            raise CheckFailed(f"after freeze_all_but_classifier, the trainable layers are: {what}; only 'logits' "
                              "should be (a nested model is one layer: its `trainable` covers all it holds).")
        if returned != count:
            raise CheckFailed(f"freeze_all_but_classifier returned {returned!r}, but {count} parameters are "
                              f"trainable ({64} features × {classes} classes + {classes} biases).")
    _passed("freeze_all_but_classifier leaves only the classifier trainable (130 and 325 parameters)")
