"""Checks a student runs on an exercise: real inputs, the reference behaviour, and plain words when wrong.

Each ``check_*`` function calls the student's code, compares it with what the course's reference (Keras,
TensorFlow or the paper) does, and raises :class:`CheckFailed` with one sentence saying what differs. An
unfinished exercise (``NotImplementedError``) and errors inside the student's code are reported the same way,
so the learner sees a short message instead of a deep traceback.

For grading, a check can also run on a :class:`Record` of the student's function (in the student's kernel: what
it returned, as plain data) and on a :class:`Replay` of that record (in the grader's own process, against the
grader's own reference): every place a check looks at the student's code goes through :func:`_observe`.
:data:`EXERCISES` lists the graded exercises, their checks and the course's own implementations of them.
"""

from __future__ import annotations

import functools
import json
import os


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


class Record:
    """The student's function, with what each check saw of it kept as plain data (in the student's kernel)."""

    def __init__(self, fn):
        self.fn, self.observations = fn, {}
        self.__name__ = getattr(fn, "__name__", "your function")


class Replay:
    """What a :class:`Record` kept, in place of the student's function: a check run on it judges the recorded
    answers with this process's references, whatever the student's kernel computed."""

    def __init__(self, name: str, observations: dict):
        self.__name__, self.observations = name, observations


_FAILED = "__check_failed__"


def _plain(value):
    """``value`` as data that survives JSON: numbers, strings, None, lists, dicts and NumPy arrays."""
    import numpy as np

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        array = np.asarray(value)
    except Exception:
        return repr(value)
    return array if array.dtype.kind in "biuf" else repr(value)


def _observe(fn, key: str, look):
    """``look(fn)``: what a check needs to know of the student's answer, as plain data. Kept by a :class:`Record`,
    read back from a :class:`Replay`, so that the same check gives the same verdict in the grader's process."""
    if isinstance(fn, Replay):
        if key not in fn.observations:
            raise CheckFailed(f"no answer was recorded for {key}: the graded cell did not run the check to the end.")
        seen = fn.observations[key]
        if isinstance(seen, dict) and _FAILED in seen:
            raise CheckFailed(seen[_FAILED])
        return seen
    record = fn if isinstance(fn, Record) else None
    try:
        seen = _plain(look(record.fn if record else fn))
    except CheckFailed as failure:
        if record:
            record.observations[key] = {_FAILED: str(failure)}
        raise
    if record:
        record.observations[key] = seen
    return seen


def _answer(fn, *args, key: str):
    """The student's ``fn(*args)`` as plain data (numbers, lists, arrays); errors become a :class:`CheckFailed`."""
    return _observe(fn, key, lambda f: _call(f, *args))


@functools.cache
def _keras_output_size(n: int, k: int, s: int, p: int) -> int:
    import keras

    stack = keras.Sequential([keras.Input((n, n, 1)), keras.layers.ZeroPadding2D(p), keras.layers.Conv2D(1, k, s)])
    return stack.output_shape[1]


def check_output_size(fn) -> None:
    """``fn(n, k, s, p)`` must give the output length Keras gives, on layers of this course's networks."""
    cases = [  # (n, k, s, p): LeNet C1, AlexNet conv1 (227 and padded 224), pool 3/2, VGG 3×3, ResNet stem
        (32, 5, 1, 0), (227, 11, 4, 0), (224, 11, 4, 2), (55, 3, 2, 0), (224, 3, 1, 1), (224, 7, 2, 3),
        (112, 3, 2, 1), (28, 2, 2, 0), (10, 4, 3, 0), (7, 7, 1, 0),
    ]
    for n, k, s, p in cases:
        expected = _keras_output_size(n, k, s, p)
        got = _answer(fn, n, k, s, p, key=f"output_size({n}, {k}, {s}, {p})")
        if isinstance(got, float) and not got.is_integer():
            raise CheckFailed(f"output_size(n={n}, k={k}, s={s}, p={p}) returned {got}, a fraction: sizes are "
                              "whole numbers, so round down (use // rather than /).")
        if got != expected:
            raise CheckFailed(f"output_size(n={n}, k={k}, s={s}, p={p}) returned {got}, but a Keras Conv2D "
                              f"with that padding gives {expected}.")
    _passed(f"output_size agrees with Keras on {len(cases)} layers of the course's networks")


@functools.cache
def _keras_conv_params(k: int, c_in: int, c_out: int, groups: int = 1) -> int:
    import keras

    layer = keras.layers.Conv2D(c_out, k, groups=groups)
    layer.build((None, k, k, c_in))
    return layer.count_params()


def check_conv_params(fn) -> None:
    """``fn(k, c_in, c_out)``: the parameters of a k×k convolution from c_in to c_out channels, with biases."""
    cases = [(5, 1, 6), (3, 1, 32), (3, 32, 64), (11, 3, 96), (3, 64, 128), (1, 192, 64), (7, 3, 64)]
    for k, c_in, c_out in cases:
        expected = _keras_conv_params(k, c_in, c_out)
        got = _answer(fn, k, c_in, c_out, key=f"conv_params({k}, {c_in}, {c_out})")
        if got == expected:
            continue
        said = f"conv_params(k={k}, c_in={c_in}, c_out={c_out}) returned {got}, but Keras's Conv2D has {expected:,}"
        if got == k * k * c_in * c_out:
            raise CheckFailed(f"{said}: the biases are missing (one per output channel).")
        if got == (k * k + 1) * c_in * c_out:
            raise CheckFailed(f"{said}: there is one bias per output channel, not one per kernel slice.")
        if got == k * k * c_out + c_out:
            raise CheckFailed(f"{said}: each kernel has one k×k slice per input channel.")
        raise CheckFailed(f"{said}.")
    _passed(f"conv_params agrees with Keras on {len(cases)} convolutions of the course's networks")


def _array(fn, *args, name: str, shape: tuple):
    """Call ``fn`` and return its result as a NumPy array of ``shape``, or say why it is not one."""
    import numpy as np

    def look(f):
        got = _call(f, *args)
        try:
            return np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name} should return an array of numbers, not {type(got).__name__}.") from None

    got = np.asarray(_observe(fn, name, look), dtype=np.float64)
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


@functools.cache
def _sparse_c3_params(table: tuple) -> int:
    import numpy as np

    from helpers.layers import SparseConv2D

    layer = SparseConv2D(np.array(table), kernel_size=5)
    layer.build((None, 14, 14, len(table)))
    return layer.count_params()


def check_c3_params(fn) -> None:
    """``fn(table)``: the trainable parameters of C3 (5×5 kernels, one bias per map) for a connection table."""
    import numpy as np

    from helpers.layers import c3_connections

    rng = np.random.default_rng(3)
    random_table = (rng.random((6, 16)) < 0.5).astype(int)
    random_table[0, random_table.sum(axis=0) == 0] = 1  # every C3 map reads at least one S2 map
    cases = {"the paper's table": c3_connections(), "a full table (every map pair)": np.ones((6, 16), int),
             "a random table": random_table, "a 3×4 table": np.eye(3, 4, dtype=int) + np.eye(3, 4, 1, dtype=int)}
    for label, table in cases.items():
        expected = _sparse_c3_params(tuple(map(tuple, table.tolist())))
        got = _answer(fn, table.copy(), key=f"c3_params({label})")
        if got == expected:
            continue
        said = f"c3_params on {label} returned {got}, but C3 built with that table has {expected:,} parameters"
        pairs, maps = int(table.sum()), table.shape[1]
        if got == 25 * pairs:
            raise CheckFailed(f"{said}: the biases are missing (one per C3 map).")
        if got == 25 * pairs + pairs:
            raise CheckFailed(f"{said}: there is one bias per C3 map, not one per connected pair.")
        if got == (25 * table.shape[0] + 1) * maps:
            raise CheckFailed(f"{said}: only the connected pairs (the 1s of the table) have a 5×5 kernel.")
        raise CheckFailed(f"{said} (25 weights for each connected map pair, plus one bias per C3 map).")
    _passed(f"c3_params agrees with the course's sparse C3 layer on {len(cases)} tables (the paper's: 1,516)")


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


def check_grouped_conv_params(fn) -> None:
    """``fn(k, c_in, c_out, groups)``: parameters of a grouped k×k convolution with biases (AlexNet's two towers)."""
    cases = [(11, 3, 96, 1), (5, 96, 256, 2), (3, 256, 384, 1), (3, 384, 384, 2), (3, 384, 256, 2), (3, 64, 128, 4)]
    for k, c_in, c_out, groups in cases:
        expected = _keras_conv_params(k, c_in, c_out, groups)
        got = _answer(fn, k, c_in, c_out, groups, key=f"grouped_conv_params({k}, {c_in}, {c_out}, {groups})")
        if got == expected:
            continue
        said = (f"grouped_conv_params(k={k}, c_in={c_in}, c_out={c_out}, groups={groups}) returned {got}, but "
                f"Keras's Conv2D(groups={groups}) has {expected:,}")
        if groups > 1 and got == _keras_conv_params(k, c_in, c_out):
            raise CheckFailed(f"{said}: with groups, each output channel reads only c_in / groups input channels.")
        if got == expected - c_out:
            raise CheckFailed(f"{said}: the biases are missing (one per output channel).")
        if isinstance(got, float) and not got.is_integer():
            raise CheckFailed(f"{said}: parameter counts are whole numbers (c_in / groups divides exactly; use //).")
        raise CheckFailed(f"{said}.")
    _passed("grouped_conv_params agrees with Keras on AlexNet's five convolutions and one 4-group layer")


def _block_model(fn, input_shape, *args, what: str):
    """A Keras model of the student's block on an input of ``input_shape``."""
    import keras

    inputs = keras.Input(input_shape)
    outputs = _call(fn, inputs, *args)
    if not isinstance(outputs, keras.KerasTensor):
        raise CheckFailed(f"{what} should return the Keras tensor it builds, not {type(outputs).__name__}.")
    return keras.Model(inputs, outputs)


def _conv_kernels(model) -> list[list]:
    import keras

    return sorted(list(layer.kernel.shape) for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def _rectified(layer) -> bool:
    """Whether every path from ``layer``'s output reaches a ReLU through nothing but batch norms (a layer's own
    ``activation="relu"`` counts)."""
    import keras

    def is_relu(op) -> bool:  # a ReLU layer (a next convolution's own activation does not rectify this one)
        return isinstance(op, keras.layers.ReLU) or (isinstance(op, keras.layers.Activation)
                                                     and op.activation is keras.activations.relu)

    if getattr(layer, "activation", None) is keras.activations.relu:
        return True
    consumers = [node.operation for node in layer._outbound_nodes]
    return bool(consumers) and all(
        is_relu(op) or (isinstance(op, keras.layers.BatchNormalization) and _rectified(op)) for op in consumers)


def _block_facts(model, image=None) -> dict:
    """What the block checks look at, as plain data: shapes, convolutions (and which of them a ReLU follows),
    poolings, parameters, the response to an image."""
    import keras
    import numpy as np

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D
                                                           | keras.layers.AveragePooling2D)]
    return {"output_shape": list(model.output_shape), "params": model.count_params(),
            "kernels": _conv_kernels(model), "kernel_sizes": [layer.kernel_size[0] for layer in convs],
            "unrectified": sorted(list(layer.kernel.shape) for layer in convs if not _rectified(layer)),
            "pools": sorted([type(layer).__name__, list(layer.pool_size), list(layer.strides)] for layer in pools),
            "adds": any(isinstance(layer, keras.layers.Add) for layer in model.layers),
            "min_response": None if image is None else float(np.asarray(model(image, training=False)).min())}


def _student_block(fn, input_shape, *args, what: str, image=None) -> dict:
    """:func:`_block_facts` of the block the student's ``fn`` builds on an ``input_shape`` input."""
    shown = "×".join(map(str, input_shape))
    key = f"{what}({', '.join(map(repr, args))}) on a {shown} input"
    return _observe(fn, key, lambda f: _block_facts(_block_model(f, input_shape, *args, what=what), image))


def check_vgg_block(fn) -> None:
    """``fn(x, filters, kernels)`` must add one VGG block: a conv + ReLU per kernel size, then 2×2 max-pool."""
    image = _real_activations(channels=16, size=32) / 255.0
    cases = [(128, (3, 3, 1)), (64, (3,)), (32, (3, 3, 3, 3))]  # C's block 3 (scaled), A's block 1, E's block 3
    for filters, kernels in cases:
        block = _student_block(fn, (32, 32, 16), filters, kernels, what="vgg_block",
                               image=image if kernels == cases[-1][1] else None)
        output_shape, expected_shape = tuple(block["output_shape"]), (None, 16, 16, filters)
        if output_shape != expected_shape:
            hint = " Did you forget the 2×2 max-pooling (stride 2) at the end?" if output_shape[1] == 32 else ""
            hint += " Use padding='same' so the convolutions keep the size." if output_shape[1] < 16 else ""
            raise CheckFailed(f"vgg_block(x, {filters}, {kernels}) on a 32×32×16 input gives {output_shape}; "
                              f"expected {expected_shape}.{hint}")
        expected_params, channels = 0, 16
        for k in kernels:
            expected_params += (k * k * channels + 1) * filters
            channels = filters
        if block["params"] != expected_params:
            raise CheckFailed(f"vgg_block(x, {filters}, {kernels}) has {block['params']:,} parameters; one "
                              f"{'×'.join(map(str, kernels))} stack of convolutions with biases has "
                              f"{expected_params:,}. It has {len(block['kernel_sizes'])} Conv2D layers with kernel "
                              f"sizes {block['kernel_sizes']}; expected {list(kernels)}.")
        if block["unrectified"]:
            raise CheckFailed(f"vgg_block(x, {filters}, {kernels}): {_describe_kernel(block['unrectified'][0])} "
                              f"is not followed by a ReLU: each convolution needs its ReLU.")
        if block["pools"] != [["MaxPooling2D", [2, 2], [2, 2]]]:
            raise CheckFailed(f"vgg_block(x, {filters}, {kernels}) pools with "
                              f"{', '.join(f'{kind} {size[0]}×{size[1]} stride {stride[0]}' for kind, size, stride in block['pools']) or 'nothing'}; "
                              "a VGG block ends in one 2×2 max-pooling with stride 2.")
    if block["min_response"] < 0:
        raise CheckFailed("vgg_block gives negative outputs on a real image: each convolution needs its ReLU.")
    _passed(f"vgg_block builds the right shapes and parameter counts for {len(cases)} configurations")


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


INCEPTION_3A = ((28, 28, 192), (64, 96, 128, 16, 32, 32))  # paper Table 1: input, then #1×1 … pool proj
INCEPTION_4E = ((14, 14, 528), (256, 160, 320, 32, 128, 128))


@functools.cache
def _reference_inception(shape: tuple, sizes: tuple) -> dict:
    from helpers.models.googlenet import inception_module

    n1, n3r, n3, n5r, n5, proj = sizes
    model = _block_model(lambda x: inception_module(x, n1, n3, n5, n3x3_reduce=n3r, n5x5_reduce=n5r,
                                                    pool_proj=proj, name="reference"), shape, what="reference")
    return _plain({**_block_facts(model), "macs": _multiply_adds(model)})


def _multiply_adds(model) -> int:
    from helpers.analysis import layer_table

    return layer_table(model).macs


def check_inception_module(fn) -> None:
    """``fn(x, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj)``: GoogLeNet's dimension-reduced module."""
    import numpy as np

    image = np.concatenate([_real_activations(channels=24, size=28)] * 8, axis=-1) / 255.0  # 192 channels
    for module, (shape, sizes) in {"3a": INCEPTION_3A, "4e": INCEPTION_4E}.items():
        what = f"Your module {module} (input {shape[0]}×{shape[1]}×{shape[2]})"
        ours = _student_block(fn, shape, *sizes, what="inception_module", image=image if module == "3a" else None)
        reference = _reference_inception(shape, sizes)
        expected = tuple(reference["output_shape"])
        if tuple(ours["output_shape"]) != expected:
            n1, _, n3, _, n5, proj = sizes
            raise CheckFailed(f"{what} outputs {tuple(ours['output_shape'])}; expected {expected}: the four branches "
                              f"keep the {shape[0]}×{shape[1]} size ('same' padding, pool stride 1) and are "
                              f"concatenated along the channels ({n1} + {n3} + {n5} + {proj} = {expected[-1]}).")
        _compare_kernels(ours["kernels"], reference["kernels"], what)
        if ours["params"] != reference["params"]:
            raise CheckFailed(f"{what} has {ours['params']:,} parameters; the paper's has "
                              f"{reference['params']:,} (every convolution has a bias).")
        if ours["unrectified"]:
            raise CheckFailed(f"{what}: {_describe_kernel(ours['unrectified'][0])} is not followed by a ReLU; "
                              "every convolution, the 1×1 reductions and the pool projection included, is.")
        if ours["pools"] != reference["pools"]:
            raise CheckFailed(f"{what} pools with {ours['pools'] or 'nothing'}; the pool branch is a 3×3 "
                              "max-pooling with stride 1 ('same' padding), then its 1×1 projection.")
        if module == "3a":
            response = ours["min_response"]
    if response < 0:
        raise CheckFailed("inception_module gives negative outputs on a real image: every convolution, the "
                          "1×1 reductions and the pool projection included, is followed by a ReLU.")
    _passed("inception_module matches modules 3a and 4e of the paper's Table 1 (shapes, kernels, parameters)")


def check_inception_multiply_adds(fn) -> None:
    """``fn(h, w, c_in, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj)``: the reduced module's
    multiply-adds for one image, as ``helpers.analysis`` counts them on the course's module."""
    cases = {"3a": INCEPTION_3A, "4e": INCEPTION_4E, "5b": ((7, 7, 832), (384, 192, 384, 48, 128, 128))}
    for module, (shape, sizes) in cases.items():
        expected = _reference_inception(shape, sizes)["macs"]
        args = (*shape, *sizes)
        got = _answer(fn, *args, key=f"inception_multiply_adds{args}")
        if got == expected:
            continue
        h, w, c_in = shape
        n1, n3r, n3, n5r, n5, proj = sizes
        said = f"inception_multiply_adds{args} (module {module}) returned {got}, but the course's module costs {expected:,}"
        naive = h * w * (c_in * n1 + 9 * c_in * n3 + 25 * c_in * n5)
        if got == naive:
            raise CheckFailed(f"{said}: that is the naive module; the 3×3 and 5×5 convolutions read the "
                              f"{n3r} and {n5r} reduced channels, and the 1×1 reductions cost too.")
        if got == expected - h * w * c_in * proj:
            raise CheckFailed(f"{said}: the pool projection (a 1×1 convolution after the max-pool) is missing.")
        if got == expected // (h * w):
            raise CheckFailed(f"{said}: each convolution runs at all {h}×{w} output positions.")
        raise CheckFailed(f"{said} (a k×k convolution from C_in to C_out channels on an H×W output costs "
                          "k·k·C_in·C_out·H·W; pooling costs nothing here).")
    _passed("inception_multiply_adds agrees with the course's modules 3a, 4e and 5b")


@functools.cache
def _reference_residual(shape: tuple, filters: int, stride: int) -> dict:
    from helpers.models.resnet import basic_block

    return _plain(_block_facts(_block_model(lambda x: basic_block(x, filters, stride, name="reference"), shape,
                                            what="reference")))


def check_residual_block(fn) -> None:
    """``fn(x, filters, stride)``: a basic residual block with option-B shortcut (projection only when needed)."""
    image = _real_activations(channels=16, size=16) / 255.0
    for shape, filters, stride in [((16, 16, 16), 32, 2), ((16, 16, 32), 32, 1), ((16, 16, 16), 16, 1)]:
        changes = stride != 1 or shape[-1] != filters
        what = f"residual_block(x, {filters}, stride={stride}) on a {shape[0]}×{shape[1]}×{shape[2]} input"
        ours = _student_block(fn, shape, filters, stride, what="residual_block",
                              image=image if (shape, filters, stride) == ((16, 16, 16), 16, 1) else None)
        reference = _reference_residual(shape, filters, stride)
        if ours["output_shape"] != reference["output_shape"]:
            raise CheckFailed(f"{what} outputs {tuple(ours['output_shape'])}; expected "
                              f"{tuple(reference['output_shape'])} (the first 3×3 convolution has the stride, both "
                              f"have 'same' padding).")
        if not ours["adds"]:
            raise CheckFailed(f"{what} has no Add layer: the block must add its shortcut to the residual branch.")
        ours_k = ours["kernels"]
        if changes and [1, 1, shape[-1], filters] not in ours_k:
            raise CheckFailed(f"{what} changes the shape, so its shortcut needs a 1×1 projection from "
                              f"{shape[-1]} to {filters} channels with stride {stride} (then BN).")
        if not changes and any(k[:2] == [1, 1] for k in ours_k):
            raise CheckFailed(f"{what} keeps the shape, so option B uses the identity shortcut, no projection.")
        _compare_kernels(ours_k, reference["kernels"], what)
        if ours["params"] != reference["params"]:
            raise CheckFailed(f"{what} has {ours['params']:,} parameters; expected {reference['params']:,}: "
                              "convolutions have no bias, and each is followed by BatchNormalization.")
        if ours["unrectified"] != reference["unrectified"]:
            raise CheckFailed(f"{what}: a ReLU must follow the first convolution's batch norm (before the second "
                              "convolution), and none the second's or the projection's: the block's other ReLU "
                              "comes after the addition.")
    if ours["min_response"] < 0:
        raise CheckFailed("residual_block gives negative outputs on a real image: apply the ReLU after the addition.")
    _passed("residual_block matches the paper's basic block with option-B shortcuts in 3 configurations")


def check_zero_pad_shortcut(fn) -> None:
    """``fn(a, channels, stride)``: ResNet's option-A shortcut on a NumPy array (N, H, W, C): every stride-th
    pixel, then zero channels appended up to ``channels``."""
    import numpy as np

    from helpers.layers import ZeroPadShortcut

    cases = [(16, 16, 32, 2), (16, 16, 16, 1), (15, 12, 24, 2), (8, 8, 24, 4)]  # size, channels in, out, stride
    for size, c_in, channels, stride in cases:
        a = _real_activations(channels=c_in, size=size)
        expected = np.asarray(ZeroPadShortcut(channels, stride)(a))
        name = f"zero_pad_shortcut(a, {channels}, {stride}) on a {size}×{size}×{c_in} input"
        got = _array(fn, a.copy(), channels, stride, name=name, shape=expected.shape)
        if np.allclose(got, expected):
            continue
        if np.allclose(got[..., channels - c_in:], expected[..., :c_in]) and c_in < channels:
            raise CheckFailed(f"{name}: the zeros come first; keep the input's channels first and append the zeros.")
        if not np.allclose(got[..., c_in:], 0):
            raise CheckFailed(f"{name}: the {channels - c_in} new channels should be zeros (option A adds no "
                              "parameters).")
        raise CheckFailed(f"{name} differs from the course's layer in the input's channels: keep every "
                          f"{stride}-th pixel from the first (a[:, ::{stride}, ::{stride}]), no averaging.")
    _passed(f"zero_pad_shortcut agrees with the course's option-A layer on {len(cases)} real activations")


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

    folded = _answer(fn, bias.copy(), mean.copy(), key="fold_bias(bias, moving_mean)")
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

    def frozen(size, classes):
        def look(f):
            base = helpers.models.build("resnet20", input_shape=(size, size, 3), num_classes=classes,
                                        include_top=False, pooling="avg")
            model = with_new_classifier(base, "scratch", classes)  # everything trainable to begin with
            returned = _call(f, model)
            return {"returned": returned, "learning": sorted({w.path.split("/")[0] for w in model.trainable_weights}),
                    "count": sum(int(w.numpy().size) for w in model.trainable_weights)}
        return look

    for size, classes in ((32, 2), (48, 5)):
        seen = _observe(fn, f"freeze_all_but_classifier(a {size}-pixel ResNet-20 for {classes} classes)",
                        frozen(size, classes))
        returned, learning, count = seen["returned"], seen["learning"], seen["count"]
        if learning != ["logits"]:
            what = "nothing" if not learning else ", ".join(learning[:4]) + (" …" if len(learning) > 4 else "")
            raise CheckFailed(f"after freeze_all_but_classifier, the trainable layers are: {what}; only 'logits' "
                              "should be (a nested model is one layer: its `trainable` covers all it holds).")
        if returned != count or count != 64 * classes + classes:
            raise CheckFailed(f"freeze_all_but_classifier returned {returned!r}, but {count} parameters are "
                              f"trainable ({64} features × {classes} classes + {classes} biases).")
    _passed("freeze_all_but_classifier leaves only the classifier trainable (130 and 325 parameters)")


def check_stack_receptive_field(fn) -> None:
    """``fn(kernels)``: the receptive field of a stack of stride-1 convolutions with these kernel sizes."""
    cases = [(3,), (3, 3), (3, 3, 3), (7,), (3, 3, 1), (5, 5), (3, 3, 3, 3), (1, 1)]
    for kernels in cases:
        expected = 1 + sum(k - 1 for k in kernels)  # each stride-1 layer widens the window by k − 1 (VGG §2.3)
        got = _answer(fn, kernels, key=f"stack_receptive_field({kernels})")
        if got == expected:
            continue
        said = f"stack_receptive_field({kernels}) returned {got}, but that stack sees {expected}×{expected} pixels"
        if got == sum(kernels):
            raise CheckFailed(f"{said}: each layer adds k − 1 to the window, starting from the 1 pixel of the input.")
        if got == expected ** 2:
            raise CheckFailed(f"{said}: return the side of the square window, not its area.")
        raise CheckFailed(f"{said}.")
    _passed(f"stack_receptive_field is right on {len(cases)} stacks (three 3×3 see 7×7, like one 7×7)")


@functools.cache
def _course_multiply_adds(k: int, c_in: int, c_out: int, h_out: int, w_out: int, groups: int) -> int:
    import keras

    from helpers.analysis import multiply_adds

    layer = keras.layers.Conv2D(c_out, k, groups=groups)
    layer.build((None, None, None, c_in))
    return multiply_adds(layer, (None, None, c_in), (h_out, w_out, c_out))


def check_conv_multiply_adds(fn) -> None:
    """``fn(k, c_in, c_out, h_out, w_out, groups)``: a convolution's multiply-adds for one image."""
    cases = [(3, 3, 64, 224, 224, 1), (11, 3, 96, 55, 55, 1), (5, 96, 256, 27, 27, 2), (7, 3, 64, 112, 112, 1),
             (1, 192, 64, 28, 28, 1), (3, 16, 16, 32, 32, 1), (3, 384, 256, 13, 13, 2)]
    for k, c_in, c_out, h_out, w_out, groups in cases:
        expected = _course_multiply_adds(k, c_in, c_out, h_out, w_out, groups)
        args = (k, c_in, c_out, h_out, w_out, groups)
        got = _answer(fn, *args, key=f"conv_multiply_adds{args}")
        if got == expected:
            continue
        said = f"conv_multiply_adds{args} returned {got}, but helpers.analysis counts {expected:,}"
        if groups > 1 and got == expected * groups:
            raise CheckFailed(f"{said}: with groups, each output channel reads only c_in / groups input channels.")
        if got == k * k * c_in * c_out // groups:
            raise CheckFailed(f"{said}: the kernel runs at every one of the {h_out}×{w_out} output positions.")
        if got == expected + c_out * h_out * w_out:
            raise CheckFailed(f"{said}: adding the bias is not a multiplication; count the kernel's products only.")
        raise CheckFailed(f"{said} (k·k·(c_in / groups)·c_out products at each of the h_out·w_out positions).")
    _passed(f"conv_multiply_adds agrees with helpers.analysis on {len(cases)} layers (VGG, AlexNet, ResNet, GoogLeNet)")


def check_images_per_second(fn) -> None:
    """``fn(step_seconds, batch_size)``: training speed from the seconds of each step, as the race measures it."""
    import statistics

    from helpers.measure import StepTimer

    cases = [([5.0, 0.2, 0.25, 0.21, 0.9, 0.22], 128), ([2.0, 0.1, 0.1, 0.1], 32), ([3.0, 0.1, 0.3, 0.2, 0.4], 64),
             ([0.5, 0.05, 0.06, 0.04], 256)]
    for seconds, batch in cases:
        timer = StepTimer()
        timer.seconds = list(seconds)
        expected = timer.images_per_second(batch)
        got = _answer(fn, list(seconds), batch, key=f"images_per_second({seconds}, {batch})")
        if isinstance(got, int | float) and abs(got - expected) <= 1e-6 * expected:
            continue
        said = f"images_per_second({seconds}, {batch}) returned {got}, but the race measures {expected:.6g}"
        near = lambda value: isinstance(got, int | float) and abs(got - value) <= 1e-6 * value  # noqa: E731
        if near(batch / statistics.mean(seconds[1:])):
            raise CheckFailed(f"{said}: that uses the mean step; one slow step (other work on the machine) pulls "
                              "the mean, so take the median.")
        if near(batch / statistics.median(seconds)) or near(batch / statistics.mean(seconds)):
            raise CheckFailed(f"{said}: leave out the first step, which also traces the graph.")
        if near(statistics.median(seconds[1:]) / batch):
            raise CheckFailed(f"{said}: that is seconds per image; images per second is its inverse.")
        raise CheckFailed(f"{said} (the batch size ÷ the median seconds of a step, the first step left out).")
    _passed(f"images_per_second agrees with the race's step timer on {len(cases)} runs")


# --- Grading ---------------------------------------------------------------------------------------------------

# Graded exercise -> (its check, the course's own implementations of it, which an answer must not call).
EXERCISES = {
    "output_size": (check_output_size, ()),
    "conv_params": (check_conv_params, ()),
    "c3_table": (check_c3_table, ("helpers.layers.c3_connections",)),
    "c3_params": (check_c3_params, ("helpers.layers.SparseConv2D",)),
    "grouped_conv_params": (check_grouped_conv_params, ()),
    "lrn": (check_lrn, ("helpers.layers.LocalResponseNormalization",)),
    "vgg_block": (check_vgg_block, ("helpers.models.vgg.build_vgg",)),
    "stack_receptive_field": (check_stack_receptive_field, ()),
    "inception_module": (check_inception_module, ("helpers.models.googlenet.inception_module",
                                                  "helpers.models.googlenet._conv")),
    "inception_multiply_adds": (check_inception_multiply_adds, ("helpers.analysis.layer_table",
                                                                "helpers.analysis.multiply_adds",
                                                                "helpers.models.googlenet.inception_module")),
    "residual_block": (check_residual_block, ("helpers.models.resnet.basic_block", "helpers.models.resnet._merge",
                                              "helpers.models.resnet.shortcut")),
    "zero_pad_shortcut": (check_zero_pad_shortcut, ("helpers.layers.ZeroPadShortcut",)),
    "conv_multiply_adds": (check_conv_multiply_adds, ("helpers.analysis.multiply_adds", "helpers.analysis.layer_table")),
    "images_per_second": (check_images_per_second, ("helpers.measure.StepTimer",
                                                    "helpers.measure.StepTimer.images_per_second")),
    "fold_bias": (check_fold_bias, ("helpers.pretrained.fold_conv_bias",)),
    "freeze_all_but_classifier": (check_freeze_all_but_classifier, ("helpers.transfer.with_new_classifier",)),
}

GRADING_ENV = "CNN_GRADING"  # set by the grader: record_answer hands the answer over only then
ANSWER_MIME = "application/vnd.classic-cnns.answer+json"


def _course_objects(fn) -> list[str]:
    """Qualified names of the course's functions and classes ``fn`` refers to: directly, through modules
    (``resnet.basic_block``, ``helpers.layers.c3_connections``), closures, or other functions of the notebook."""
    import builtins
    import inspect
    import types

    found, seen, todo = set(), set(), [fn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            todo.append(obj.func)
            continue
        if isinstance(obj, types.MethodType):
            todo.append(obj.__func__)
            continue
        module = getattr(obj, "__module__", None) or ""
        if module.split(".")[0] == "helpers" and hasattr(obj, "__qualname__"):
            found.add(f"{module}.{obj.__qualname__}")
            continue
        if getattr(obj, "__wrapped__", None) is not None:
            todo.append(obj.__wrapped__)
        if isinstance(obj, type) and module == "__main__":  # a class of the notebook: its methods
            todo.extend(vars(obj).values())
            continue
        if not isinstance(obj, types.FunctionType):
            continue
        names, codes = set(), [obj.__code__]
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes.extend(c for c in code.co_consts if inspect.iscode(c))
        scope = {**vars(builtins), **obj.__globals__}
        values = [scope[name] for name in names if name in scope]
        for cell in obj.__closure__ or ():
            try:
                values.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        modules = [v for v in values if isinstance(v, types.ModuleType)]
        for _ in range(4):  # helpers.models.resnet.basic_block: attributes of attributes
            attributes = [getattr(m, name) for m in modules for name in names if name in vars(m)]
            values += attributes
            modules = [a for a in attributes if isinstance(a, types.ModuleType)]
        todo.extend(v for v in values if callable(v) and (getattr(v, "__module__", "") or "").split(".")[0]
                    in ("helpers", "__main__"))
    return sorted(found)


class _Encoder(json.JSONEncoder):
    def default(self, value):
        import numpy as np

        if isinstance(value, np.ndarray):
            return {"__array__": value.tolist(), "dtype": str(value.dtype)}
        return super().default(value)


def _decoded(value):
    import numpy as np

    if isinstance(value, dict):
        if "__array__" in value:
            return np.asarray(value["__array__"], dtype=value["dtype"])
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def record_answer(exercise: str, fn) -> None:
    """For grading (the hidden test of a graded cell): run ``exercise``'s check on a :class:`Record` of ``fn``
    and show what it saw as plain data, for the grader to judge in its own process. Outside grading it does
    nothing."""
    if not os.environ.get(GRADING_ENV):
        return
    import contextlib
    import io

    from IPython.display import display

    with contextlib.redirect_stdout(io.StringIO()):  # the visible check above has already said it
        answer = recorded_answer(exercise, fn)
    display({ANSWER_MIME: answer}, raw=True)


def recorded_answer(exercise: str, fn) -> dict:
    """What ``exercise``'s check saw of ``fn`` and which of the course's code ``fn`` calls, as JSON data."""
    check, _ = EXERCISES[exercise]
    record = Record(fn)
    try:
        check(record)
    except Exception:  # a failure is recorded where it happened; the grader reaches it again
        pass
    answer = {"exercise": exercise, "observations": record.observations, "uses": _course_objects(fn)}
    return json.loads(json.dumps(answer, cls=_Encoder))


def judge(exercise: str, answer: dict) -> None:
    """Judge a recorded answer here, with this process's checks and references; raises :class:`CheckFailed`."""
    import contextlib
    import io

    check, course = EXERCISES[exercise]
    delegated = sorted(set(answer.get("uses", ())) & set(course))
    if delegated:
        raise CheckFailed(f"{exercise} delegates to {delegated[0]}, the course's own implementation of this "
                          "exercise: write it yourself.")
    with contextlib.redirect_stdout(io.StringIO()):  # the grader reports the verdict, not the ✓ line
        check(Replay(exercise, _decoded(answer.get("observations", {}))))
