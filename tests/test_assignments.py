"""Student versions, the checks students run, and grading with hidden tests."""

import csv
import re

import nbformat
import numpy as np
import papermill
import pytest

from helpers import assignments, checks
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
    "02_alexnet": ["grouped_conv_params", "lrn"], "03_vgg": ["vgg_block", "stack_receptive_field"],
    "04_googlenet": ["inception_module", "inception_multiply_adds"], "05_resnet": ["residual_block", "zero_pad_shortcut"],
    "06_model_comparison": ["conv_multiply_adds", "images_per_second"],
    "07_transfer_learning": ["fold_bias", "freeze_all_but_classifier"],
}


def _graded(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")]


def test_every_notebook_grades_its_exercises_with_a_check_and_a_recorded_answer():
    for name, exercises in EXERCISES.items():
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        graded = _graded(nb)
        assert [c.metadata["nbgrader"]["grade_id"] for _, c in graded] == [f"check_{e}" for e in exercises], name
        for (_, cell), exercise in zip(graded, exercises):
            assert exercise in checks.EXERCISES
            assert cell.source.startswith(f"helpers.checks.check_{exercise}({exercise})\n")
            assert f'helpers.checks.record_answer("{exercise}", {exercise})' in cell.source  # the hidden test
    assert sorted(e for names in EXERCISES.values() for e in names) == sorted(checks.EXERCISES)


def test_no_student_cell_shows_or_runs_an_exercise_reference_before_its_check(student_dir):
    """The course's own implementation of an exercise appears in no code cell above that exercise's check."""
    for name, exercises in EXERCISES.items():
        nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
        for index, cell in _graded(nb):
            exercise = cell.metadata["nbgrader"]["grade_id"].removeprefix("check_")
            for reference in checks.EXERCISES[exercise][1]:
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


def test_grading_scores_a_correct_and_a_stubbed_submission(student_dir, tmp_path):
    submissions = tmp_path / "submissions"
    for folder in ("ada", "bob", "cy"):
        (submissions / folder).mkdir(parents=True)
    (submissions / "ada" / "00_cnn_basics.ipynb").write_bytes((NOTEBOOKS / "00_cnn_basics.ipynb").read_bytes())
    # Renamed as Colab and browsers rename downloads: recognised by the id in the notebook's metadata.
    (submissions / "bob" / "Copy of 00_cnn_basics (1).ipynb").write_bytes(
        (student_dir / "00_cnn_basics.ipynb").read_bytes())
    (submissions / "cy" / "cy-basics.ipynb").write_bytes((student_dir / "00_cnn_basics.ipynb").read_bytes())
    (submissions / "cy" / "notes.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    rows = assignments.grade(submissions, NOTEBOOKS, tmp_path / "scores.csv", jobs=2)
    scores = {row["submission"]: (row["score"], row["max_score"]) for row in rows}
    assert scores == {"ada/00_cnn_basics.ipynb": (2.0, 2.0), "bob/Copy of 00_cnn_basics (1).ipynb": (0.0, 2.0),
                      "cy/cy-basics.ipynb": (0.0, 2.0), "cy/notes.ipynb": (0.0, 0.0)}
    with open(tmp_path / "scores.csv") as f:
        table = {row["submission"]: row for row in csv.DictReader(f)}
    assert table["ada/00_cnn_basics.ipynb"]["check_output_size"] == "1.0"
    assert table["ada/00_cnn_basics.ipynb"]["check_conv_params"] == "1.0"
    assert table["ada/00_cnn_basics.ipynb"]["feedback"] == "all checks passed"
    assert "output_size is not written yet" in table["cy/cy-basics.ipynb"]["feedback"]
    assert table["cy/notes.ipynb"]["feedback"].startswith("not recognised")
    report = (tmp_path / "scores_feedback" / "bob__Copy of 00_cnn_basics (1).md").read_text()
    assert "| check_output_size | 0 / 1 |" in report and "CheckFailed: output_size is not written yet" in report


def test_a_submission_past_its_time_limit_scores_zero_and_the_rest_are_graded(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    graded = {"grade": True, "grade_id": "check_answer", "points": 2, "schema_version": 3, "solution": False}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 42"),
                                         nbformat.v4.new_code_cell("assert answer == 42", metadata={"nbgrader": graded}),
                                         nbformat.v4.new_code_cell("import time\ntime.sleep(300)  # after the graded cell")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, course / "09_quiz.ipynb")
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    nbformat.write(nb, submissions / "fast_09_quiz.ipynb")
    slow = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(300)\nanswer = 42"),
                                           *nb.cells[1:]], metadata=nb.metadata)
    nbformat.write(slow, submissions / "slow_09_quiz.ipynb")
    crash = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nos._exit(3)  # the kernel dies"),
                                            *nb.cells], metadata=nb.metadata)
    nbformat.write(crash, submissions / "crash_09_quiz.ipynb")
    rows = {r["submission"]: r for r in assignments.grade(submissions, course, tmp_path / "s.csv", jobs=2, limit=20)}
    assert rows["fast_09_quiz.ipynb"]["score"] == 2.0  # its last cell, after the graded one, did not run
    assert rows["slow_09_quiz.ipynb"]["score"] == 0.0
    assert "stopped after 20 s" in rows["slow_09_quiz.ipynb"]["feedback"]
    assert rows["crash_09_quiz.ipynb"]["score"] == 0.0
    assert "could not be run" in rows["crash_09_quiz.ipynb"]["feedback"]
    assert "could not be run" in (tmp_path / "s_feedback" / "crash_09_quiz.md").read_text()


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


def _submission(name, exercise, source):
    """The course notebook ``name`` with ``exercise``'s solution cell replaced by ``source``."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise)
    cell.source = source
    return nb


def test_grading_does_not_trust_the_students_kernel(tmp_path):
    """A replaced check, an answer that only passes the old weak hidden test, and an answer that calls the course's
    own implementation each score 0 for that exercise, with the reason in the feedback; the rest is graded."""
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    weak = ("def output_size(n, k, s=1, p=0):  # right only where the old hidden test looked\n"
            "    return {(227, 11, 4, 0): 55, (13, 3, 1, 1): 13, (6, 3, 2, 0): 2}.get((n, k, s, p), n)\n")
    patched = ("import sys, types\n"
               "helpers.checks.check_conv_params = lambda fn: print('✓ looks right')\n"
               "helpers.checks.record_answer = lambda *args: None\n"
               "sys.modules['helpers.checks'] = types.SimpleNamespace(check_conv_params=print, record_answer=print)\n"
               "def conv_params(k, c_in, c_out):\n    return k * k * c_in * c_out  # no biases\n")
    hidden_only = weak + "helpers.checks.check_output_size = lambda fn: None\n"
    nbformat.write(_submission("00_cnn_basics", "conv_params", patched), submissions / "patched-00.ipynb")
    nbformat.write(_submission("00_cnn_basics", "output_size", hidden_only), submissions / "weak-00.ipynb")
    nbformat.write(_submission("01_lenet5", "c3_table", "def c3_table():\n    return helpers.layers.c3_connections()"),
                   submissions / "delegates-01.ipynb")
    rows = {r["submission"]: r for r in assignments.grade(submissions, NOTEBOOKS, tmp_path / "s.csv", jobs=2)}
    patched_row, weak_row, delegates_row = rows["patched-00.ipynb"], rows["weak-00.ipynb"], rows["delegates-01.ipynb"]
    assert (patched_row["check_output_size"], patched_row["check_conv_params"]) == (1.0, 0.0)
    assert "the biases are missing" in patched_row["feedback"]
    assert (weak_row["check_output_size"], weak_row["check_conv_params"]) == (0.0, 1.0)
    assert "output_size(n=32, k=5, s=1, p=0) returned 32, but a Keras Conv2D with that padding gives 28" in weak_row["feedback"]
    assert (delegates_row["check_c3_table"], delegates_row["check_c3_params"]) == (0.0, 1.0)
    assert "delegates to helpers.layers.c3_connections" in delegates_row["feedback"]
    report = (tmp_path / "s_feedback" / "patched-00.md").read_text()
    assert "| check_conv_params | 0 / 1 | CheckFailed: conv_params(k=5, c_in=1, c_out=6) returned 150" in report


def test_a_recorded_answer_is_judged_again_with_the_graders_own_reference():
    import numpy as np

    from helpers.models import resnet

    def residual_block(x, filters, stride=1):
        return resnet.basic_block(x, filters, stride, name="mine")

    answer = checks.recorded_answer("residual_block", residual_block)
    assert "helpers.models.resnet.basic_block" in answer["uses"]
    with pytest.raises(checks.CheckFailed, match="delegates to helpers.models.resnet.basic_block.*write it yourself"):
        checks.judge("residual_block", answer)
    checks.judge("residual_block", checks.recorded_answer("residual_block", _residual()))  # written out: passes
    # What the kernel recorded is all the grader reads: a recorded wrong value fails, whatever the kernel said.
    answer = checks.recorded_answer("output_size", lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1)
    answer["observations"]["output_size(7, 7, 1, 0)"] = 2
    with pytest.raises(checks.CheckFailed, match=r"output_size\(n=7, k=7, s=1, p=0\) returned 2"):
        checks.judge("output_size", answer)
    del answer["observations"]["output_size(7, 7, 1, 0)"]
    with pytest.raises(checks.CheckFailed, match="no answer was recorded"):
        checks.judge("output_size", answer)
    answer = checks.recorded_answer("zero_pad_shortcut", lambda a, channels, stride: np.zeros_like(a))
    with pytest.raises(checks.CheckFailed, match="shape"):
        checks.judge("zero_pad_shortcut", answer)


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
    check = checks.EXERCISES[exercise][0]
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):
        check(wrong)
    with pytest.raises(checks.CheckFailed, match=re.escape(message)):  # and the grader says the same
        checks.judge(exercise, checks.recorded_answer(exercise, wrong))


@pytest.mark.slow
def test_every_course_notebook_scores_full_marks(tmp_path):
    """The course's own solutions pass the grader's judgement in every notebook (00 is graded above)."""
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name in sorted(EXERCISES)[1:]:
        (submissions / f"{name}.ipynb").write_bytes((NOTEBOOKS / f"{name}.ipynb").read_bytes())
    rows = assignments.grade(submissions, NOTEBOOKS, tmp_path / "scores.csv", jobs=2)
    assert {row["notebook"]: (row["score"], row["feedback"]) for row in rows} == {
        name: (2.0, "all checks passed") for name in sorted(EXERCISES)[1:]}
