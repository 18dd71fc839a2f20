"""Checks a student runs on an exercise: real inputs, the reference behaviour, and plain words when wrong.

Each ``check_*`` function calls the student's code, compares it with what the course's reference (Keras,
TensorFlow or the paper) does, and raises :class:`CheckFailed` with one sentence saying what differs. An
unfinished exercise (``NotImplementedError``) and errors inside the student's code are reported the same way,
so the learner sees a short message instead of a deep traceback.

For grading, a check can also run on a :class:`Remote`: the student's function where this process cannot reach
it (in the grading sandbox, ``helpers.grading``). Every place a check looks at the student's code is a *probe*
(:data:`PROBES`): a small function of this module that runs where the student's code is and returns plain data,
which the check then judges here, against this process's own references.
"""

from __future__ import annotations

import functools


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


class Remote:
    """The student's function where this process cannot reach it: ``ask(probe_name, args)`` runs the probe on it
    there (in the grading sandbox) and returns what the probe saw, as plain data."""

    def __init__(self, name: str, ask):
        self.__name__, self.ask = name, ask


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


def _observe(fn, probe, *args):
    """``probe(fn, *args)`` as plain data: what a check needs to know of the student's answer. On a :class:`Remote`
    the probe runs where the student's code is, and only its plain result comes back here."""
    if isinstance(fn, Remote):
        seen = fn.ask(probe.__name__, args)
        if isinstance(seen, dict) and _FAILED in seen:
            raise CheckFailed(seen[_FAILED])
        return seen
    return _plain(probe(fn, *args))


def run_probe(fn, probe: str, args) -> object:
    """Where the student's code is (the grading sandbox): probe ``probe`` of :data:`PROBES` on ``fn``, as plain data;
    a failure becomes its message."""
    try:
        return _plain(PROBES[probe](fn, *args))
    except CheckFailed as failure:
        return {_FAILED: str(failure)}


# --- Probes: what the checks ask of the student's code. They use no reference of any exercise. ----------------

def _returns(fn, *args):
    return _call(fn, *args)


def _returns_array(fn, name: str, *args):
    import numpy as np

    got = _call(fn, *args)
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should return an array of numbers, not {type(got).__name__}.") from None


def _answer(fn, *args):
    """The student's ``fn(*args)`` as plain data (numbers, lists, arrays); errors become a :class:`CheckFailed`."""
    return _observe(fn, _returns, *args)


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
        got = _answer(fn, n, k, s, p)
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
        got = _answer(fn, k, c_in, c_out)
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

    got = np.asarray(_observe(fn, _returns_array, name, *args), dtype=np.float64)
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
        got = _answer(fn, table.copy())
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
        got = _answer(fn, k, c_in, c_out, groups)
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


def _block(fn, input_shape, args, what: str, image):
    return _block_facts(_block_model(fn, tuple(input_shape), *args, what=what), image)


def _student_block(fn, input_shape, *args, what: str, image=None) -> dict:
    """:func:`_block_facts` of the block the student's ``fn`` builds on an ``input_shape`` input."""
    return _observe(fn, _block, input_shape, args, what, image)


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
        got = _answer(fn, *args)
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

    folded = _answer(fn, bias.copy(), mean.copy())
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


def _frozen(fn, size: int, classes: int) -> dict:
    """What ``fn`` leaves trainable of a small network (a nested feature extractor of 64 features and a new
    classifier, everything trainable to begin with)."""
    import keras

    from helpers.transfer import with_new_classifier

    base = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(16, 3, name="conv1"),
                             keras.layers.BatchNormalization(name="bn1"), keras.layers.ReLU(),
                             keras.layers.Conv2D(64, 3, name="conv2"), keras.layers.GlobalAveragePooling2D()],
                            name="features")
    model = with_new_classifier(base, "scratch", classes)
    returned = _call(fn, model)
    return {"returned": returned, "learning": sorted({w.path.split("/")[0] for w in model.trainable_weights}),
            "count": sum(int(w.numpy().size) for w in model.trainable_weights)}


def check_freeze_all_but_classifier(fn) -> None:
    """``fn(model)`` freezes every layer but ``logits`` and returns the trainable parameter count left."""
    for size, classes in ((32, 2), (48, 5)):
        seen = _observe(fn, _frozen, size, classes)
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
        got = _answer(fn, kernels)
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
        got = _answer(fn, *args)
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
        got = _answer(fn, list(seconds), batch)
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


def check_inverted_dropout(fn) -> None:
    """``fn(x, rate, training, seed)``: inverted dropout on a NumPy array, as keras.layers.Dropout computes it."""
    import keras
    import numpy as np

    x = _real_activations()  # (1, 24, 24, 12), photo-derived, ≥ 0
    live = x != 0  # a zero of the output says "dropped" only where the input was not zero already
    n = int(live.sum())
    name = "inverted_dropout(x, 0.5, training=False, seed=0)"
    y = _array(fn, x.copy(), 0.5, False, 0, name=name, shape=x.shape)
    if not np.allclose(y, x, rtol=1e-5):
        if (y[live] == 0).any():
            raise CheckFailed(f"{name} drops values: at inference dropout does nothing (the scaling during training "
                              "already keeps each value's expected size), so return x as it is.")
        raise CheckFailed(f"{name} changes x: at inference dropout is the identity, no scaling either.")
    for seed, rate in enumerate((0.25, 0.5, 0.1, 0.8)):
        name = f"inverted_dropout(x, {rate}, training=True, seed={seed})"
        y = _array(fn, x.copy(), rate, True, seed, name=name, shape=x.shape)
        dropped = float((y[live] == 0).mean())
        # The count of zeros is Binomial(n, rate): 5 standard deviations leave a correct answer a chance below 1e-6
        # per rate (below 1e-5 for the four) of failing, and still catch a rate off by 3 points at n ≈ 6,900.
        tolerance = 5 * np.sqrt(rate * (1 - rate) / n)
        if abs(dropped - rate) > tolerance:
            said = f"{name} zeroes {dropped:.1%} of the values; expected {rate:.0%} ± {tolerance:.1%}"
            if abs(dropped - (1 - rate)) <= tolerance:
                raise CheckFailed(f"{said}: `rate` is the probability of dropping a value, not of keeping it.")
            raise CheckFailed(f"{said} (each value dropped on its own with probability `rate`).")
        kept = live & (y != 0)
        layer = keras.layers.Dropout(rate, seed=seed)(x, training=True).numpy()  # Keras's own: the same scaling?
        keras_scale = float(np.median(layer[live & (layer != 0)] / x[live & (layer != 0)]))
        scale = y[kept] / x[kept]
        if not np.allclose(scale, keras_scale, rtol=1e-5):
            said = (f"{name} scales the values it keeps by {np.median(scale):.4g}; keras.layers.Dropout scales them by "
                    f"{keras_scale:.4g} = 1/(1 − rate)")
            if np.allclose(scale, 1.0, rtol=1e-5):
                raise CheckFailed(f"{said}: without the scaling the output's mean shrinks by (1 − rate) in training, "
                                  "and inference would see larger values than training did.")
            if np.allclose(scale, 1 - rate, rtol=1e-5):
                raise CheckFailed(f"{said}: divide the kept values by (1 − rate) instead of multiplying by it.")
            raise CheckFailed(f"{said}: every kept value is x / (1 − rate), the dropped ones exactly 0.")
        # With the right rate and scale, the mean is kept: its standard error is √(Σx²·rate/(1 − rate)) / size.
        spread = 5 * np.sqrt((x.astype(np.float64) ** 2).sum() * rate / (1 - rate)) / x.size
        if abs(y.mean() - x.mean()) > spread:
            raise CheckFailed(f"{name} has mean {y.mean():.4g} where x has {x.mean():.4g}: drop values at random, "
                              "whatever their size.")
    masks = [_array(fn, x.copy(), 0.5, True, seed, name=f"inverted_dropout(x, 0.5, training=True, seed={seed}){again}",
                    shape=x.shape) == 0 for seed, again in ((1, ""), (7, ""), (7, ", again"))]
    if np.array_equal(masks[0], masks[1]):
        raise CheckFailed("inverted_dropout gives the same mask for seeds 1 and 7: draw the mask from "
                          "np.random.default_rng(seed).")
    if not np.array_equal(masks[1], masks[2]):
        raise CheckFailed("inverted_dropout gives different masks for the same seed (7): draw the mask from "
                          "np.random.default_rng(seed), so that a run can be repeated.")
    _passed("inverted_dropout: identity at inference; at rates 0.1–0.8 it drops the right share of a photo's "
            "activations and scales the rest by 1/(1 − rate), as keras.layers.Dropout does")


def _keras_batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum, epsilon):
    """keras.layers.BatchNormalization on ``x``: its output and its moving averages afterwards, in float64."""
    import keras
    import numpy as np

    layer = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    layer.build(x.shape)
    layer.set_weights([np.asarray(w, np.float32) for w in (gamma, beta, moving_mean, moving_var)])
    y = layer(x.astype(np.float32), training=training)
    return [np.asarray(v, np.float64) for v in (y, layer.moving_mean, layer.moving_variance)]


def check_batch_norm_forward(fn) -> None:
    """``fn(x, gamma, beta, moving_mean, moving_var, training, momentum, epsilon)`` -> (y, moving mean, moving
    variance): batch normalisation of a (N, H, W, C) array per channel, as keras.layers.BatchNormalization does."""
    import numpy as np

    a = _real_activations(channels=24, size=16) / 255.0  # three "images" of 8 channels, from one photo
    x = np.concatenate(np.split(a, 3, axis=-1), axis=0).astype(np.float64)
    channels = x.shape[-1]
    x = x * np.linspace(0.05, 1.0, channels) + np.linspace(-0.5, 0.5, channels)  # small variances make ε matter
    rng = np.random.default_rng(5)
    gamma, beta = rng.uniform(0.5, 2.0, channels), rng.normal(0.0, 1.0, channels)
    batch_mean, batch_var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # Keras: the biased variance
    moving_mean, moving_var = 0.5 * batch_mean + 0.1, 2.0 * batch_var + 0.01  # far from this batch's statistics

    def normalised(mean, var, eps, outside=False):
        return gamma * (x - mean) / ((np.sqrt(var) + eps) if outside else np.sqrt(var + eps)) + beta

    def close(got, expected):
        return np.allclose(got, expected, rtol=1e-4, atol=1e-4)

    cases = [(True, (), 0.99, 1e-3), (True, (0.9, 1e-2), 0.9, 1e-2), (False, (), 0.99, 1e-3)]
    for training, extra, momentum, eps in cases:
        shown = f"momentum={momentum}, epsilon={eps:g}" + ("" if extra else " (the defaults)")
        name = f"batch_norm_forward(x, …, training={training}, {shown})"
        got = _answer(fn, x.copy(), gamma.copy(), beta.copy(), moving_mean.copy(), moving_var.copy(), training, *extra)
        if not isinstance(got, list) or len(got) != 3:
            raise CheckFailed(f"{name} should return three arrays, (y, new_moving_mean, new_moving_var).")
        try:
            y, new_mean, new_var = (np.asarray(v, dtype=np.float64) for v in got)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name} should return three arrays of numbers.") from None
        for what, value, shape in (("y", y, x.shape), ("new_moving_mean", new_mean, (channels,)),
                                   ("new_moving_var", new_var, (channels,))):
            if value.shape != shape:
                raise CheckFailed(f"{name} returns {what} of shape {value.shape}; expected {shape} "
                                  f"({'like x' if what == 'y' else 'one value per channel'}).")
        expected_y, expected_mean, expected_var = _keras_batch_norm(x, gamma, beta, moving_mean, moving_var,
                                                                    training, momentum, eps)
        if not close(y, expected_y):
            said = f"{name}: y differs from keras.layers.BatchNormalization's by up to {np.abs(y - expected_y).max():.3g}"
            mean, var = (batch_mean, batch_var) if training else (moving_mean, moving_var)
            other = (moving_mean, moving_var) if training else (batch_mean, batch_var)
            if close(y, normalised(*other, eps)):
                raise CheckFailed(f"{said}: in training mode normalise with this batch's mean and variance (the "
                                  "moving averages are for inference)." if training else
                                  f"{said}: at inference normalise with the moving mean and variance, not the "
                                  "batch's.")
            if close(y, normalised(mean, var, eps, outside=True)):
                raise CheckFailed(f"{said}: ε goes inside the square root, (x − μ) / √(σ² + ε).")
            if close(y, (x - mean) / np.sqrt(var + eps)):
                raise CheckFailed(f"{said}: after normalising, scale by γ (gamma) and shift by β (beta).")
            if training and close(y, normalised(mean, x.var(axis=(0, 1, 2), ddof=1), eps)):
                raise CheckFailed(f"{said}: Keras normalises with the biased batch variance (divide by N·H·W, "
                                  "not N·H·W − 1).")
            if training:
                for axes in ((1, 2), (0,), (0, 1, 2, 3), (3,)):
                    if close(y, normalised(x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True), eps)):
                        raise CheckFailed(f"{said}: the statistics are taken over axes {axes}; batch norm takes one "
                                          "mean and variance per channel, over N, H and W (axes (0, 1, 2)).")
            raise CheckFailed(f"{said}: y = γ·(x − μ)/√(σ² + ε) + β per channel.")
        for what, value, expected, old, batch in (("new_moving_mean", new_mean, expected_mean, moving_mean, batch_mean),
                                                  ("new_moving_var", new_var, expected_var, moving_var, batch_var)):
            if close(value, expected):
                continue
            said = f"{name}: {what} is {np.round(value[:3], 4).tolist()}… where Keras has {np.round(expected[:3], 4).tolist()}…"
            if not training:
                raise CheckFailed(f"{said}: at inference the moving averages stay as they are.")
            if close(value, momentum * batch + (1 - momentum) * old):
                raise CheckFailed(f"{said}: the momentum convention is reversed; Keras keeps `momentum` of the old "
                                  "average: moving = momentum·moving + (1 − momentum)·batch.")
            if close(value, old):
                raise CheckFailed(f"{said}: in training mode the moving averages move towards this batch's statistics.")
            if what == "new_moving_var" and close(value, momentum * old + (1 - momentum) * x.var(axis=(0, 1, 2), ddof=1)):
                raise CheckFailed(f"{said}: Keras 3 feeds the moving variance the biased batch variance (÷ N·H·W), "
                                  "the one it normalises with.")
            raise CheckFailed(f"{said} (moving = momentum·moving + (1 − momentum)·batch statistic).")
    _passed("batch_norm_forward agrees with keras.layers.BatchNormalization on a photo's activations: training mode "
            "(batch statistics, moving averages updated) and inference mode (moving statistics, left unchanged)")


# The probes a check may ask for, by name (the grading sandbox runs only these).
PROBES = {probe.__name__: probe for probe in (_returns, _returns_array, _block, _frozen)}
