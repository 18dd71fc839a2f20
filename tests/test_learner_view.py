"""What a learner sees in a notebook: no TensorFlow start-up log, a failed check as one short message."""

import os

import nbformat
import pytest
from nbclient import NotebookClient


def run_cells(*sources, env_cell="import os"):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(env_cell)]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # As in JupyterLab, the kernel forwards what C++ writes to its standard error into the notebook; ipykernel
    # does not while it sees pytest's variable, so the kernel starts without it.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute(env=env)
    return nb.cells[1:]


def stderr_of(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")


@pytest.mark.slow
def test_tensorflow_start_up_log_is_hidden_and_can_be_shown():
    quiet, = run_cells("import helpers.settings\nimport tensorflow as tf\nprint(tf.constant(2) * 3)")
    assert "tf.Tensor(6" in "".join(o.get("text", "") for o in quiet.outputs)
    for line in ("absl::InitializeLog", "oneDNN custom operations", "cuInit", "cpu_feature_guard"):
        assert line not in stderr_of(quiet)
    shown, = run_cells("import helpers.settings\nimport tensorflow as tf\ntf.constant(1)",
                       env_cell="import os\nos.environ['CNN_TF_LOGS'] = '1'")
    assert "oneDNN" in stderr_of(shown) or "absl" in stderr_of(shown)  # the switch in the setup cell's comment


@pytest.mark.slow
def test_a_failed_check_is_one_short_message_and_still_an_error():
    cell, after = run_cells(
        "import helpers.checks\n"
        "def output_size(n, k, s=1, p=0):\n    raise NotImplementedError('write me')\n"
        "helpers.checks.check_output_size(output_size)",
        "print('the next cell still runs')")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "CheckFailed"  # grading sees the failure
    assert len(errors[0].traceback) == 1  # no frames, no source of helpers/checks.py
    assert "output_size is not written yet" in errors[0].traceback[0] and "checks.py" not in errors[0].traceback[0]


TRAIN_SEVERAL = """
import helpers.settings
import keras, numpy as np, tensorflow as tf
x, y = np.zeros((8, 4), "float32"), np.zeros((8,), "int32")
for _ in range(7):  # a notebook that trains several networks one after the other
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    model.predict(x, verbose=0)
"""


def streams_of(cell):
    """Everything a cell printed (TensorFlow's Python logger writes to whichever stream it found first)."""
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_training_several_models_is_not_reported_as_retracing():
    """Keras's per-model functions are not a learner's retracing; a learner's own retraced tf.function still is."""
    quiet, = run_cells(TRAIN_SEVERAL)
    assert "retracing" not in streams_of(quiet)
    own, = run_cells("import helpers.settings\nimport tensorflow as tf\n"
                     "@tf.function\ndef square(v):\n    return v * v\n"
                     "for i in range(8):\n    square(tf.constant([1.0] * (i + 1)))")
    assert "retracing" in streams_of(own)
    shown, = run_cells(TRAIN_SEVERAL, env_cell="import os\nos.environ['CNN_TF_LOGS'] = '1'")
    assert "retracing" in streams_of(shown)  # the warning itself is real: the filter removed it
