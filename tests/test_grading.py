"""Grading as a security boundary: each submission's answers in a sandbox, the checks in the grader.

Every attack below is a submission that tries to score without writing the exercise; each must score 0 with a
feedback line that says why, and grading must leave the course's files byte-identical. Where an attack works
outside the sandbox (network, files), a control runs it there too, so that the test shows the sandbox is what
stops it.
"""

import csv
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

import nbformat
import pytest

from helpers import assignments, grading
from helpers.layers import c3_connections
from tests.notebook_tools import ROOT

NOTEBOOKS = ROOT / "notebooks"

# Where CI promises a sandbox (CNN_REQUIRE_SANDBOX=1), its absence fails; elsewhere the sandboxed tests are skipped.
WHY_NOT = grading.sandbox_works()
if WHY_NOT and os.environ.get("CNN_REQUIRE_SANDBOX"):
    raise RuntimeError(f"CNN_REQUIRE_SANDBOX is set, but {WHY_NOT}")
sandboxed = pytest.mark.skipif(WHY_NOT is not None, reason=f"no sandbox here: {WHY_NOT}")


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    return assignments.build(NOTEBOOKS, tmp_path_factory.mktemp("student"))[0].parent


def _exercises(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    return [c.metadata["nbgrader"]["grade_id"].removeprefix("check_") for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")]


COURSE = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if _exercises(p.stem))


def _submission(name, exercise, source):
    """The course notebook ``name`` (solutions and all) with ``exercise``'s answer cell replaced by ``source``."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise)
    cell.source = source
    return nb


def _course_files() -> dict[str, str]:
    """sha256 of every file of the course's package and notebooks."""
    files = [*sorted((ROOT / "src" / "helpers").rglob("*.py")), *sorted(NOTEBOOKS.glob("*.ipynb"))]
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _grade(submissions, tmp_path, **kwargs):
    rows = assignments.grade(submissions, NOTEBOOKS, tmp_path / "scores.csv", jobs=2, **kwargs)
    return {row["submission"]: row for row in rows}


def test_every_graded_cell_is_an_exercise_with_a_check_and_its_answer_named_alike():
    for name in COURSE:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        for exercise in _exercises(name):
            assert exercise in grading.EXERCISES, (name, exercise)
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"check_{exercise}")
            assert cell.source.startswith(f"helpers.checks.{grading.EXERCISES[exercise][0]}({exercise})\n")
            assert f'helpers.grading.check_own_work("{exercise}", {exercise})' in cell.source  # nbgrader's hidden test
            answers = grading.answer_cells(nb, [exercise])
            assert len(answers) == 1 and f"def {exercise}(" in answers[0][1], (name, exercise)
    assert sorted(e for name in COURSE for e in _exercises(name)) == sorted(grading.EXERCISES)


def test_the_sandboxs_copy_of_the_course_lacks_every_exercises_own_implementation(tmp_path):
    """Each reference named in EXERCISES raises where the answers run, the C3 table's data is gone, helpers.checks
    holds no check, and every module of the copy still imports."""
    stage = grading.stage_course(tmp_path)
    script = f"""
import importlib, pkgutil, sys
sys.path.insert(0, {str(stage)!r})
import helpers, helpers.checks
assert helpers.__file__.startswith({str(stage)!r}), helpers.__file__
for module in pkgutil.walk_packages(helpers.__path__, "helpers."):
    importlib.import_module(module.name)
assert not [n for n in vars(helpers.checks) if n.startswith("check_")]
import helpers.layers
assert helpers.layers.LENET5_C3_TABLE is None
for reference in {sorted({r for _, refs in grading.EXERCISES.values() for r in refs})!r}:
    parts = reference.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
            break
        except ImportError:
            continue
    for attribute in parts[split:]:
        obj = getattr(obj, attribute)
    if reference.endswith("LENET5_C3_TABLE"):
        continue
    try:
        obj(*([object()] if reference.endswith("images_per_second") else []))
    except RuntimeError as error:
        assert "not available while grading" in str(error), reference
    else:
        raise AssertionError(reference + " still runs")
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(stage)})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


@sandboxed
def test_a_correct_a_stubbed_and_a_renamed_submission(student_dir, tmp_path):
    submissions = tmp_path / "submissions"
    for folder in ("ada", "bob", "cy"):
        (submissions / folder).mkdir(parents=True)
    (submissions / "ada" / "00_cnn_basics.ipynb").write_bytes((NOTEBOOKS / "00_cnn_basics.ipynb").read_bytes())
    # Renamed as Colab and browsers rename downloads: recognised by the id in the notebook's metadata.
    (submissions / "bob" / "Copy of 00_cnn_basics (1).ipynb").write_bytes(
        (student_dir / "00_cnn_basics.ipynb").read_bytes())
    (submissions / "cy" / "cy-basics.ipynb").write_bytes((student_dir / "00_cnn_basics.ipynb").read_bytes())
    (submissions / "cy" / "notes.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (submissions / "cy" / "broken-00_cnn_basics.ipynb").write_text("{ not json")
    rows = _grade(submissions, tmp_path)
    assert {name: (row["score"], row["max_score"]) for name, row in rows.items()} == {
        "ada/00_cnn_basics.ipynb": (2.0, 2.0), "bob/Copy of 00_cnn_basics (1).ipynb": (0.0, 2.0),
        "cy/cy-basics.ipynb": (0.0, 2.0), "cy/notes.ipynb": (0.0, 0.0), "cy/broken-00_cnn_basics.ipynb": (0.0, 2.0)}
    with open(tmp_path / "scores.csv") as f:
        table = {row["submission"]: row for row in csv.DictReader(f)}
    assert table["ada/00_cnn_basics.ipynb"]["check_output_size"] == "1.0"
    assert table["ada/00_cnn_basics.ipynb"]["feedback"] == "all checks passed"
    assert "output_size is not written yet" in table["cy/cy-basics.ipynb"]["feedback"]
    assert table["cy/notes.ipynb"]["feedback"].startswith("not recognised")
    assert "could not be read as a notebook" in table["cy/broken-00_cnn_basics.ipynb"]["feedback"]
    report = (tmp_path / "scores_feedback" / "bob__Copy of 00_cnn_basics (1).md").read_text()
    assert "| check_output_size | 0 / 1 |" in report and "CheckFailed: output_size is not written yet" in report


@sandboxed
def test_every_course_notebook_scores_full_marks_and_its_student_version_zero(student_dir, tmp_path):
    submissions = tmp_path / "submissions"
    (submissions / "solved").mkdir(parents=True)
    (submissions / "student").mkdir()
    for name in COURSE:
        (submissions / "solved" / f"{name}.ipynb").write_bytes((NOTEBOOKS / f"{name}.ipynb").read_bytes())
        (submissions / "student" / f"{name}.ipynb").write_bytes((student_dir / f"{name}.ipynb").read_bytes())
    rows = _grade(submissions, tmp_path)
    for name in COURSE:
        solved, student = rows[f"solved/{name}.ipynb"], rows[f"student/{name}.ipynb"]
        assert (solved["score"], solved["feedback"]) == (solved["max_score"], "all checks passed"), name
        assert solved["max_score"] == len(_exercises(name))
        assert student["score"] == 0.0 and "is not written yet" in student["feedback"], name


class _TableServer(http.server.BaseHTTPRequestHandler):
    """Serves the right C3 table: an answer that fetches it scores only where the network reaches."""

    def do_GET(self):  # noqa: N802
        body = json.dumps(c3_connections().tolist()).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _c3(body):
    return "import numpy as np\n\ndef c3_table():\n" + "".join(f"    {line}\n" for line in body.splitlines())


ATTACKS = {  # submission name -> (the c3_table answer cell, what its feedback must say)
    "local-import": (_c3("from helpers.layers import c3_connections\nreturn c3_connections()"),
                     "helpers.layers.c3_connections is the course's own answer to an exercise and is not available"),
    "importlib": (_c3("import importlib\nreturn importlib.import_module('helpers.layers').c3_connections()"),
                  "not available while grading"),
    "eval-getattr": (_c3("return getattr(eval(\"__import__('helpers.layers').layers\"), 'c3_connections')()"),
                     "not available while grading"),
    "the-table's-data": (_c3("import helpers.layers as L\n"
                             "return np.array([[c == 'X' for c in row] for row in L.LENET5_C3_TABLE], int)"),
                         "TypeError"),
    "the-paper-model": (_c3("return np.asarray(paper.get_layer('C3').connections)"),
                        "NameError: name 'paper' is not defined"),
    "builds-the-model": (_c3("import helpers.models\nm = helpers.models.build('lenet5', input_shape=(32, 32, 1), num_classes=10)\n"
                             "return np.asarray(m.get_layer('C3').connections)"), "not available while grading"),
    "reads-the-course": (_c3(f"src = open({str(ROOT / 'src' / 'helpers' / 'layers.py')!r}).read()\n"
                             "ns = {}\nexec(src, ns)\nreturn ns['c3_connections']()"), "FileNotFoundError"),
    "reads-the-solutions": (_c3(f"import json\nnb = json.load(open({str(NOTEBOOKS / '01_lenet5.ipynb')!r}))\n"
                                "src = [''.join(c['source']) for c in nb['cells'] if 'def c3_table' in ''.join(c['source'])][0]\n"
                                "ns = {'np': np}\nexec(src, ns)\nreturn ns['c3_table']()"), "FileNotFoundError"),
    "network": (_c3("import json, urllib.request\n"
                    "return np.array(json.load(urllib.request.urlopen('http://127.0.0.1:PORT/', timeout=5)))"),
                "URLError"),
    "rewrites-checks": ("import helpers.checks\n"
                        "for path in (helpers.checks.__file__, " + repr(str(ROOT / "src/helpers/checks.py")) + "):\n"
                        "    try:\n        open(path, 'a').write('\\nEXERCISES = {}\\n')\n"
                        "    except OSError as error:\n        print(error)\n"
                        + _c3("return np.zeros((6, 16), int)"), "entries differ from the paper"),
    "import-hook": ("import sys, types, importlib.abc\n"
                    "class Hook(importlib.abc.MetaPathFinder):\n"
                    "    def find_spec(self, name, path, target=None):\n"
                    "        if name.startswith('helpers'):\n"
                    "            raise ImportError('hooked')\n"
                    "sys.modules.pop('helpers.checks', None)\nsys.meta_path.insert(0, Hook())\n"
                    + _c3("return np.ones((6, 16), int)"), "entries differ from the paper"),
    "patched-probes": ("import helpers.checks\n"
                       "helpers.checks.run_probe = lambda fn, probe, args: True\n"
                       "helpers.checks._plain = lambda value: 'passed'\n"
                       + _c3("return 0"), "c3_table() returned an array of shape"),
    "patched-display": ("import builtins, IPython.display\n"
                        "print('✓ c3_table() is the paper\\'s Table I: 60 of 96 map pairs connected')\n"
                        "IPython.display.display = lambda *a, **k: None\nbuiltins.print = lambda *a, **k: None\n"
                        + _c3("return np.eye(6, 16, dtype=int)"), "entries differ from the paper"),
    "forks": ("import os\nfor _ in range(20):\n    if os.fork() == 0:\n"
              "        os.execv('/bin/sleep', ['sleep', '1013'])\n" + _c3("return np.zeros((6, 16), int)"),
              "entries differ from the paper"),
    "huge-output": ("import os, sys\nfor _ in range(100):\n    os.write(1, b'x' * (1 << 20))\n"
                    + _c3("return np.zeros((6, 16), int)"), "its answer cell raised OSError: [Errno 27] File too large"),
    "huge-answer": (_c3("return np.ones((3000, 3000))"), "c3_table() returned an array of shape (3000, 3000)"),
    "sleeps": (_c3("import time\ntime.sleep(600)"), "stopped at the time limit"),
    "exits": (_c3("import os\nos._exit(0)"), "the answers' process ended"),
}


@sandboxed
def test_every_attack_scores_zero_and_leaves_the_course_untouched(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TableServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name, (source, _) in ATTACKS.items():
        nbformat.write(_submission("01_lenet5", "c3_table", source.replace("PORT", str(port))),
                       submissions / f"{name}.ipynb")
    before = _course_files()
    rows = _grade(submissions, tmp_path, limit=90)
    server.shutdown()
    for name, (_, said) in ATTACKS.items():
        row = rows[f"{name}.ipynb"]
        assert row["check_c3_table"] == 0.0, (name, row["feedback"])
        assert said in row["feedback"], (name, row["feedback"])
        if name not in ("sleeps", "exits", "patched-probes"):  # the process lived on: the other exercise was graded
            assert row["check_c3_params"] == 1.0, (name, row["feedback"])
    leftover = subprocess.run(["pgrep", "-f", "sleep 1013"], capture_output=True, text=True).stdout
    assert not leftover.strip(), "the forked children outlived their sandbox"
    assert _course_files() == before  # byte-identical: nothing of the course was rewritten


@sandboxed
def test_the_network_and_file_attacks_are_real_outside_the_sandbox(tmp_path):
    """The control: with the sandbox off, the same answers reach the course's files and the network, and score."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TableServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name in ("network", "reads-the-course", "reads-the-solutions"):
        source = ATTACKS[name][0].replace("PORT", str(server.server_address[1]))
        nbformat.write(_submission("01_lenet5", "c3_table", source), submissions / f"{name}.ipynb")
    rows = _grade(submissions, tmp_path, sandbox=False)
    server.shutdown()
    assert {name: row["check_c3_table"] for name, row in rows.items()} == {
        "network.ipynb": 1.0, "reads-the-course.ipynb": 1.0, "reads-the-solutions.ipynb": 1.0}


def test_without_a_sandbox_grading_refuses_unless_told(tmp_path, monkeypatch, capsys):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    (submissions / "00_cnn_basics.ipynb").write_bytes((NOTEBOOKS / "00_cnn_basics.ipynb").read_bytes())
    monkeypatch.setattr(grading, "sandbox_works", lambda: "bwrap is not installed (apt-get install bubblewrap).")
    with pytest.raises(grading.SandboxUnavailable, match="pass --no-sandbox"):
        assignments.grade(submissions, NOTEBOOKS, tmp_path / "s.csv")
    assert assignments.main(["grade", str(submissions), "--out", str(tmp_path / "s.csv")]) == 2
    assert "bwrap is not installed" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()
    rows = assignments.grade(submissions, NOTEBOOKS, tmp_path / "s.csv", sandbox=False)
    assert rows[0]["score"] == 2.0


def test_the_nbgrader_hidden_test_fails_a_delegating_answer():
    from helpers.checks import CheckFailed
    from helpers.models import resnet

    def residual_block(x, filters, stride=1):
        return resnet.basic_block(x, filters, stride, name="mine")

    with pytest.raises(CheckFailed, match="delegates to helpers.models.resnet.basic_block.*write it yourself"):
        grading.check_own_work("residual_block", residual_block)
    grading.check_own_work("output_size", lambda n, k, s=1, p=0: (n + 2 * p - k) // s + 1)
