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
