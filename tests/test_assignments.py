"""Student versions, the checks students run, and grading with hidden tests."""

import json
import re

import nbformat
import numpy as np
import papermill
import pytest

from helpers import assignments, checks, grading
from tests.notebook_tools import ROOT

NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = assignments.build(NOTEBOOKS, out)
    assert written, "no course notebook has exercises"
    return out


def _solution_lines(nb):
    """Every non-blank line inside a solution or hidden-test region of the course notebook."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.split("\n"):
            if assignments.BEGIN_SOLUTION in line or assignments.BEGIN_HIDDEN in line:
                inside = True
            elif assignments.END_SOLUTION in line or assignments.END_HIDDEN in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


def test_no_solution_or_hidden_test_survives(student_dir):
    for path in sorted(student_dir.glob("*.ipynb")):
        course = nbformat.read(NOTEBOOKS / path.name, as_version=4)
        student = nbformat.read(path, as_version=4)
        nbformat.validate(student)
        text = "\n".join(c.source for c in student.cells)
        secrets = _solution_lines(course)
        assert secrets
        for line in secrets:
            assert line not in text, f"{path.name} still contains solution text: {line!r}"
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "raise NotImplementedError" in text
        assert not any(c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_building_is_idempotent(student_dir, tmp_path):
    again = assignments.build(NOTEBOOKS, tmp_path / "again")
    for path in again:
        assert path.read_bytes() == (student_dir / path.name).read_bytes()
        # A student version is its own student version.
        student = nbformat.read(path, as_version=4)
        assert assignments.student_notebook(student) == student


def test_unpaired_markers_are_reported():
    with pytest.raises(assignments.MarkerError, match="never closed"):
        assignments.student_source("x = 1\n### BEGIN SOLUTION\ny = 2", "ex", "probe")
    with pytest.raises(assignments.MarkerError, match="without a"):
        assignments.student_source("### END SOLUTION", "ex", "probe")


EXERCISES = {  # the graded exercises of each course notebook, in order
    "00_cnn_basics": ["output_size", "conv_params"], "01_lenet5": ["c3_table", "c3_params"],
    "02_alexnet": ["grouped_conv_params", "lrn", "inverted_dropout"],
    "03_vgg": ["vgg_block", "stack_receptive_field", "batch_norm_forward"],
    "04_googlenet": ["inception_module", "inception_multiply_adds"], "05_resnet": ["residual_block", "zero_pad_shortcut"],
    "06_model_comparison": ["conv_multiply_adds", "images_per_second"],
    "07_transfer_learning": ["fold_bias", "freeze_all_but_classifier"],
}


def _graded(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")]


def test_no_student_cell_shows_or_runs_an_exercise_reference_before_its_check(student_dir):
    """The course's own implementation of an exercise appears in no code cell above that exercise's check."""
    for name, exercises in EXERCISES.items():
        nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
        for index, cell in _graded(nb):
            exercise = cell.metadata["nbgrader"]["grade_id"].removeprefix("check_")
            for reference in grading.EXERCISES[exercise][1]:
                module, function = reference.split(".")[-2:]
                pattern = re.compile(rf"\b{module}\.{function}\b|import[^\n]*\b{function}\b")
                before = [c.source for c in nb.cells[:index] if c.cell_type == "code"]
                assert not any(pattern.search(source) for source in before), (name, exercise, reference)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_student_version_stops_at_its_first_exercise_with_a_plain_message(student_dir, tmp_path, name):
    if not (NOTEBOOKS / f"{name}.ipynb").exists():
        pytest.fail(f"{name}.ipynb is missing")
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(str(student_dir / f"{name}.ipynb"), str(tmp_path / "run.ipynb"),
                                   parameters={"QUICK": True}, cwd=str(NOTEBOOKS), progress_bar=False)
    assert error.value.ename == "CheckFailed"
    assert f"{EXERCISES[name][0]} is not written yet" in error.value.evalue
    assert "site-packages" not in "".join(error.value.traceback)  # no frame from inside TensorFlow or Keras


@pytest.mark.parametrize("wrong, message", [
    (lambda n, k, s=1, p=0: (n + 2 * p - k) // s, "returned 27, but a Keras Conv2D with that padding gives 28"),
    (lambda n, k, s=1, p=0: (n + 2 * p - k) / s + 1, "a fraction"),
    (lambda n, k, s=1, p=0: (n + p - k) // s + 1, r"output_size\(n=224, k=11, s=4, p=2\) returned 54, but a Keras Conv2D with that padding gives 55"),
    (lambda n, k, s=1, p=0: 1 // 0, "raised ZeroDivisionError"),
])
def test_output_size_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_output_size(wrong)


def _c3_with_one_change():
    from helpers.layers import c3_connections

    table = c3_connections()
    table[0, 9] = 0
    return table


@pytest.mark.parametrize("wrong, message", [
    (lambda: _c3_with_one_change(), "1 of 96 entries differ from the paper. First: C3 map 9 should read S2 map 0"),
    (lambda: _c3_with_one_change().T, "rows and columns swapped"),
    (lambda: _c3_with_one_change() * 2, "only 0"),
])
def test_c3_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_c3_table(wrong)


def _lrn(**params):
    import tensorflow as tf

    return lambda a: tf.nn.local_response_normalization(a, **params).numpy()


@pytest.mark.parametrize("wrong, message", [
    (_lrn(depth_radius=2, bias=2.0, alpha=2e-5, beta=0.75), "α is divided by n"),
    (_lrn(depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75), "k = 1 and α = 2e-5"),
    (_lrn(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.5), "differs from the paper's formula: at index"),
    (lambda a: a[..., :3], "shape"),
])
def test_lrn_check_names_the_usual_mistakes(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_lrn(wrong)


def _block(pool=True, relu="relu", kernel=None, final_relu=False, pooling="max"):
    import keras

    def vgg_block(x, filters, kernels):
        for k in kernels:
            x = keras.layers.Conv2D(filters, kernel or k, padding="same", activation=relu)(x)
        if final_relu:  # one ReLU after a stack of linear convolutions
            x = keras.layers.ReLU()(x)
        layer = keras.layers.MaxPooling2D(2) if pooling == "max" else keras.layers.AveragePooling2D(2)
        return layer(x) if pool else x
    return vgg_block


@pytest.mark.parametrize("wrong, message", [
    (_block(pool=False), "forget the 2×2 max-pooling"),
    (_block(relu=None), "needs its ReLU"),
    (_block(kernel=3), "kernel sizes [3, 3, 3]; expected [3, 3, 1]"),
    (_block(relu=None, final_relu=True), "is not followed by a ReLU: each convolution needs its ReLU"),
    (_block(pooling="average"), "pools with AveragePooling2D 2×2 stride 2; a VGG block ends in one 2×2 max-pooling"),
    (_block(relu=None, final_relu=True, pooling="average"), "is not followed by a ReLU"),
])
def test_vgg_block_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_vgg_block(wrong)


def _inception(five=5, relu="relu", pool_proj=True, reduce_relu="relu", pooling="max"):
    import keras

    def inception_module(x, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, proj):
        def conv(t, filters, size, activation=relu):
            return keras.layers.Conv2D(filters, size, padding="same", activation=activation)(t)
        kind = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
        pool = kind(3, strides=1, padding="same")(x)
        branches = [conv(x, n1x1, 1), conv(conv(x, n3x3_reduce, 1, reduce_relu), n3x3, 3),
                    conv(conv(x, n5x5_reduce, 1, reduce_relu), n5x5, five),
                    conv(pool, proj, 1) if pool_proj else pool]
        return keras.layers.Concatenate()(branches)
    return inception_module


@pytest.mark.parametrize("wrong, message", [
    (_inception(five=3), "lacks a 5×5 convolution from 16 to 32 channels (it has a 3×3 convolution from 16 to 32"),
    (_inception(pool_proj=False), "outputs (None, 28, 28, 416); expected (None, 28, 28, 256)"),
    (_inception(relu=None), "followed by a ReLU"),
    (_inception(reduce_relu=None), "a 1×1 convolution from 192 to 16 channels is not followed by a ReLU"),
    (_inception(pooling="average"), "the pool branch is a 3×3 max-pooling with stride 1"),
])
def test_inception_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_inception_module(wrong)


def _residual(project="when needed", add=True, final_relu=True, middle_relu=True):
    import keras

    def residual_block(x, filters, stride=1):
        def conv_bn(t, size, strides):
            t = keras.layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False)(t)
            return keras.layers.BatchNormalization()(t)
        first = conv_bn(x, 3, stride)
        y = conv_bn(keras.layers.ReLU()(first) if middle_relu else first, 3, 1)
        needed = stride != 1 or x.shape[-1] != filters
        if not add:
            return keras.layers.ReLU()(y)
        shortcut = conv_bn(x, 1, stride) if project == "always" or (needed and project) else x
        if needed and not project:  # shapes differ: make the add possible without a projection
            shortcut = keras.layers.ZeroPadding2D(0)(keras.layers.AveragePooling2D(stride)(x))
            shortcut = keras.layers.Concatenate()([shortcut, shortcut])
        out = keras.layers.Add()([shortcut, y])
        return keras.layers.ReLU()(out) if final_relu else out
    return residual_block


@pytest.mark.parametrize("wrong, message", [
    (_residual(add=False), "has no Add layer"),
    (_residual(project=None), "needs a 1×1 projection from 16 to 32 channels with stride 2"),
    (_residual(project="always"), "keeps the shape, so option B uses the identity shortcut"),
    (_residual(final_relu=False), "apply the ReLU after the addition"),
    (_residual(middle_relu=False), "a ReLU must follow the first convolution's batch norm"),
])
def test_residual_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_residual_block(wrong)


def test_the_course_solutions_pass_their_checks():
    """The reference behaviour itself passes (the notebooks' own solutions run under nbval too)."""
    from helpers.layers import c3_connections

    checks.check_c3_table(c3_connections)
    checks.check_lrn(_lrn(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75))
    checks.check_vgg_block(_block())
    checks.check_inception_module(_inception())
    checks.check_residual_block(_residual())
    checks.check_conv_params(lambda k, c_in, c_out: (k * k * c_in + 1) * c_out)
    checks.check_c3_params(lambda table: int(25 * np.sum(table) + np.shape(table)[1]))
    checks.check_grouped_conv_params(lambda k, c_in, c_out, groups: (k * k * (c_in // groups) + 1) * c_out)
    checks.check_stack_receptive_field(lambda kernels: 1 + sum(k - 1 for k in kernels))
    checks.check_zero_pad_shortcut(lambda a, channels, stride: np.pad(
        a[:, ::stride, ::stride], [(0, 0), (0, 0), (0, 0), (0, channels - a.shape[-1])]))
    checks.check_conv_multiply_adds(lambda k, c_in, c_out, h, w, groups=1: k * k * (c_in // groups) * c_out * h * w)
    checks.check_images_per_second(lambda seconds, batch: batch / float(np.median(seconds[1:])))


@pytest.mark.parametrize("wrong, message", [
    (lambda bias, mean: mean + bias, "look at the sign"),
    (lambda bias, mean: mean, "the bias must move the mean only"),
    (lambda bias, mean: float(mean.sum() - bias.sum()), "one moving mean per channel"),
    (lambda bias, mean: bias.undefined, "raised AttributeError"),
])
def test_fold_bias_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_fold_bias(wrong)


def _freeze(everything=False, count=None):
    def freeze_all_but_classifier(model):
        if everything:
            model.trainable = False
        else:
            for layer in model.layers:
                layer.trainable = layer.name == "logits"
        return count if count is not None else sum(int(w.numpy().size) for w in model.trainable_weights)
    return freeze_all_but_classifier


@pytest.mark.parametrize("wrong, message", [
    (_freeze(everything=True), "the trainable layers are: nothing"),
    (_freeze(count=130), "returned 130, but 325 parameters are trainable"),
    (lambda model: 130, "the trainable layers are: .* only .logits. should be"),
])
def test_freeze_check_says_what_is_wrong(wrong, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_freeze_all_but_classifier(wrong)


def test_the_transfer_solutions_pass_their_checks():
    checks.check_fold_bias(lambda bias, mean: mean - bias)
    checks.check_freeze_all_but_classifier(_freeze())


def _inverted_dropout(scale="divide", at_inference=False, keep_probability=False):
    """The course's inverted dropout, or one of its usual mistakes."""
    def inverted_dropout(x, rate, training, seed):
        if not training and not at_inference:
            return x
        drop = 1 - rate if keep_probability else rate
        keep = np.random.default_rng(seed).random(np.shape(x)) >= drop
        factor = {"divide": 1 / (1 - drop), "none": 1.0, "multiply": 1 - drop}[scale]
        return np.where(keep, np.asarray(x) * factor, 0.0)
    return inverted_dropout


def _batch_norm_forward(reversed_momentum=False, moving_in_training=False, epsilon_outside=False, axes=(0, 1, 2),
                        affine=True):
    """The course's batch norm forward pass, or one of its usual mistakes."""
    def batch_norm_forward(x, gamma, beta, moving_mean, moving_var, training, momentum=0.99, epsilon=1e-3):
        keep = 1 - momentum if reversed_momentum else momentum
        per_channel = axes == (0, 1, 2)
        mean, var = x.mean(axis=axes, keepdims=not per_channel), x.var(axis=axes, keepdims=not per_channel)
        if training:
            new_mean = keep * moving_mean + (1 - keep) * x.mean(axis=(0, 1, 2))
            new_var = keep * moving_var + (1 - keep) * x.var(axis=(0, 1, 2))
        else:
            new_mean, new_var = moving_mean, moving_var
        if not training or moving_in_training:
            mean, var = moving_mean, moving_var
        y = (x - mean) / (np.sqrt(var) + epsilon if epsilon_outside else np.sqrt(var + epsilon))
        return (gamma * y + beta if affine else y), new_mean, new_var
    return batch_norm_forward


def test_the_dropout_and_batch_norm_solutions_pass_and_stubs_are_not_written_yet():
    checks.check_inverted_dropout(_inverted_dropout())
    checks.check_batch_norm_forward(_batch_norm_forward())

    def inverted_dropout(x, rate, training, seed):
        raise NotImplementedError("Exercise inverted_dropout: write this part")

    def batch_norm_forward(x, gamma, beta, moving_mean, moving_var, training, momentum=0.99, epsilon=1e-3):
        raise NotImplementedError("Exercise batch_norm_forward: write this part")

    for check, stub in ((checks.check_inverted_dropout, inverted_dropout),
                        (checks.check_batch_norm_forward, batch_norm_forward)):
        with pytest.raises(checks.CheckFailed, match=f"{stub.__name__} is not written yet"):
            check(stub)


@pytest.mark.parametrize("wrong, message", [
    (_inverted_dropout(scale="none"), "without the scaling the output's mean shrinks"),
    (_inverted_dropout(scale="multiply"), "divide the kept values by (1 − rate) instead of multiplying by it"),
    (_inverted_dropout(at_inference=True), "drops values: at inference dropout does nothing"),
    (_inverted_dropout(keep_probability=True), "`rate` is the probability of dropping a value, not of keeping it"),
    (lambda x, rate, training, seed: np.where(np.random.default_rng(0).random(np.shape(x)) >= rate,
                                              x / (1 - rate), 0.0) if training else x,
     "the same mask for seeds 1 and 7"),
])
def test_inverted_dropout_check_names_the_usual_mistakes(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_inverted_dropout(wrong)


@pytest.mark.parametrize("wrong, message", [
    (_batch_norm_forward(reversed_momentum=True), "the momentum convention is reversed"),
    (_batch_norm_forward(moving_in_training=True), "in training mode normalise with this batch's mean and variance"),
    (_batch_norm_forward(epsilon_outside=True), "ε goes inside the square root"),
    (_batch_norm_forward(axes=(1, 2)), "the statistics are taken over axes (1, 2)"),
    (_batch_norm_forward(axes=(0, 1, 2, 3)), "the statistics are taken over axes (0, 1, 2, 3)"),
    (_batch_norm_forward(affine=False), "scale by γ (gamma) and shift by β (beta)"),
    (lambda x, gamma, beta, mean, var, training, momentum=0.99, epsilon=1e-3: x, "should return three arrays"),
])
def test_batch_norm_forward_check_names_the_usual_mistakes(wrong, message):
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        checks.check_batch_norm_forward(wrong)


@pytest.mark.parametrize("exercise, wrong, message", [
    ("conv_params", lambda k, c_in, c_out: k * k * c_in * c_out, "the biases are missing"),
    ("conv_params", lambda k, c_in, c_out: (k * k + 1) * c_in * c_out, "not one per kernel slice"),
    ("c3_params", lambda table: 25 * int(np.sum(table)), "the biases are missing (one per C3 map)"),
    ("c3_params", lambda table: (25 * np.shape(table)[0] + 1) * np.shape(table)[1], "only the connected pairs"),
    ("grouped_conv_params", lambda k, c_in, c_out, groups: (k * k * c_in + 1) * c_out, "reads only c_in / groups"),
    ("stack_receptive_field", lambda kernels: sum(kernels), "each layer adds k − 1"),
    ("inception_multiply_adds", lambda h, w, c, n1, n3r, n3, n5r, n5, p: h * w * c * (n1 + 9 * n3 + 25 * n5),
     "that is the naive module"),
    ("zero_pad_shortcut", lambda a, channels, stride: np.pad(a[:, ::stride, ::stride],
                                                            [(0, 0), (0, 0), (0, 0), (channels - a.shape[-1], 0)]),
     "the zeros come first"),
    ("conv_multiply_adds", lambda k, c_in, c_out, h, w, groups=1: k * k * c_in * c_out * h * w, "reads only c_in / groups"),
    ("conv_multiply_adds", lambda k, c_in, c_out, h, w, groups=1: k * k * c_in * c_out // groups,
     "at every one of the"),
    ("images_per_second", lambda seconds, batch: batch / float(np.mean(seconds[1:])), "take the median"),
    ("images_per_second", lambda seconds, batch: batch / float(np.median(seconds)), "leave out the first step"),
])
def test_new_checks_say_what_is_wrong(exercise, wrong, message):
    check = getattr(checks, grading.EXERCISES[exercise][0])
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        check(wrong)
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):  # and the grader says the same
        check(_remote(exercise, wrong))


def _remote(name, fn):
    """``fn`` as the grader sees it: every probe's arguments and result go through the sandbox's wire format."""
    def through(value):
        return grading.from_wire(json.loads(json.dumps(grading.to_wire(value))))

    return checks.Remote(name, lambda probe, args: through(checks.run_probe(fn, probe, through(list(args)))))


