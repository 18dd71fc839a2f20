"""The README's nbgrader promise, with the real nbgrader: generate_assignment makes student versions without the
solutions and hidden tests, and autograde gives the course's solutions full marks and the student version 0.

Needs nbgrader (requirements-nbgrader.txt); skipped without it, unless CNN_REQUIRE_NBGRADER is set (CI).
"""

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from helpers import assignments
from tests.notebook_tools import ROOT

if os.environ.get("CNN_REQUIRE_NBGRADER"):
    import nbgrader  # noqa: F401 - CI promises it
nbgrader_api = pytest.importorskip("nbgrader.api")

NOTEBOOK = "00_cnn_basics"


def _nbgrader(course, *args):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}",
                           "--ExecutePreprocessor.timeout=600", "--ExecutePreprocessor.kernel_name=python3"],
                          capture_output=True, text=True, cwd=course, timeout=1200,
                          env={**os.environ, "CNN_QUICK": "1", "MPLBACKEND": "Agg",  # nbgrader runs alembic:
                               "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_nbgrader_generates_the_student_version_and_autogrades_the_solutions(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", course / "source" / "ps1")
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    released = nbformat.read(course / "release" / "ps1" / f"{NOTEBOOK}.ipynb", as_version=4)
    text = "\n".join(c.source for c in released.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "check_own_work" not in text
    assert "return (n + 2 * p - k) // s + 1" not in text  # the solution of output_size
    ours = nbformat.read(assignments.build(ROOT / "notebooks", tmp_path / "student")[0].parent / f"{NOTEBOOK}.ipynb",
                         as_version=4)
    assert [c.cell_type for c in released.cells] == [c.cell_type for c in ours.cells]

    for student, source in (("solved", ROOT / "notebooks" / f"{NOTEBOOK}.ipynb"),
                            ("unfinished", course / "release" / "ps1" / f"{NOTEBOOK}.ipynb")):
        folder = course / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        shutil.copy(source, folder / f"{NOTEBOOK}.ipynb")
        _nbgrader(course, "db", "student", "add", student)
    _nbgrader(course, "autograde", "ps1")
    with nbgrader_api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        solved = gradebook.find_submission("ps1", "solved")
        unfinished = gradebook.find_submission("ps1", "unfinished")
        assert solved.max_score == 2.0
        assert (solved.score, unfinished.score) == (2.0, 0.0)
