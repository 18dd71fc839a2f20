"""The notebook runner: a summary with the headline metric, and a failure that names the notebook and cell."""

import json

import nbformat
import pytest

from helpers import run_notebooks


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def course(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "10_passes.ipynb", [
        "QUICK = False",
        "import helpers.results\nhelpers.results.record('10_passes', headline='score', score=0.5 if QUICK else 1.0)",
    ])
    _notebook(folder / "11_fails.ipynb", ["QUICK = False", "x = 1", "print('before the error')", "1 / 0", "y = 2"])
    return folder


def test_runs_a_selection_and_reports_each_notebook(course, tmp_path, capsys):
    out = tmp_path / "build" / "notebooks"
    code = run_notebooks.main(["--notebooks-dir", str(course), "--out", str(out)])
    assert code == 1  # one of the two failed
    rows = {r["notebook"]: r for r in json.loads((out / "summary.json").read_text())}
    assert rows["10_passes"]["status"] == "ok"
    assert rows["10_passes"]["headline"] == "score = 0.5000"  # QUICK was injected as True
    assert rows["11_fails"]["status"] == "FAILED"
    assert "ZeroDivisionError" in rows["11_fails"]["error"]
    printed = capsys.readouterr().out
    assert "11_fails failed at cell" in printed
    # The partly executed copy is kept, with the output of the cells before the failure.
    kept = nbformat.read(out / "11_fails.ipynb", as_version=4)
    assert any("before the error" in o.get("text", "") for c in kept.cells for o in c.get("outputs", []))


def test_full_mode_and_prefix_selection(course, tmp_path):
    out = tmp_path / "out"
    assert run_notebooks.main(["--full", "10", "--notebooks-dir", str(course), "--out", str(out)]) == 0
    rows = json.loads((out / "summary.json").read_text())
    assert [r["notebook"] for r in rows] == ["10_passes"] and rows[0]["headline"] == "score = 1.0000"


def test_unknown_selection_is_refused(course):
    with pytest.raises(SystemExit, match="matches 0 notebooks"):
        run_notebooks.find_notebooks(course, ["99"])


def test_a_hung_cell_fails_its_notebook_instead_of_hanging(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "12_hangs.ipynb", ["QUICK = False", "import time\ntime.sleep(600)", "z = 3"])
    out = tmp_path / "out"
    assert run_notebooks.main(["12", "--cell-timeout", "3", "--notebooks-dir", str(folder), "--out", str(out)]) == 1
    row = json.loads((out / "summary.json").read_text())[0]
    assert row["status"] == "FAILED" and "Timeout" in row["error"] and row["seconds"] < 120


def test_the_console_shows_the_runner_not_the_kernel_s_log(tmp_path):
    """The kernel's own start-up log (e.g. "[IPKernelApp] WARNING | Kernel is running over TCP …") stays out of the
    runner's console; a warning raised by the notebook's code still reaches the notebook's outputs."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder / "13_warns.ipynb", ["QUICK = False", "import warnings\nwarnings.warn('shown to the learner')"])
    out = tmp_path / "out"
    # A process of its own, as `make run` starts it: ipykernel forwards no stderr while PYTEST_CURRENT_TEST is set.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    console = subprocess.run([sys.executable, "-m", "helpers.run_notebooks", "13", "--notebooks-dir", str(folder),
                              "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert console.returncode == 0, console.stdout + console.stderr
    assert "13_warns" in console.stdout and "IPKernelApp" not in console.stdout + console.stderr
    outputs = [o for cell in nbformat.read(out / "13_warns.ipynb", as_version=4).cells for o in cell.get("outputs", [])]
    assert any("shown to the learner" in o.get("text", "") for o in outputs), outputs
