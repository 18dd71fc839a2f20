"""Student versions of the course notebooks, and grading of what students hand back.

The course notebooks carry nbgrader's markers, so instructors who use nbgrader can adopt them as they are::

    def output_size(n, k, s=1, p=0):
        # Hint: ...                       <- kept in the student version
        ### BEGIN SOLUTION
        return (n + 2 * p - k) // s + 1    <- replaced by a stub that raises NotImplementedError
        ### END SOLUTION

    helpers.checks.check_output_size(output_size)   <- a graded cell (nbgrader metadata: grade=True)
    ### BEGIN HIDDEN TESTS
    helpers.checks.record_answer("output_size", output_size)   <- removed from the student version
    ### END HIDDEN TESTS

Without nbgrader::

    python -m helpers.assignments build [--out build/student]          # write student versions
    python -m helpers.assignments grade SUBMISSIONS [--out scores.csv]  # run hidden tests, score each file

A submission is recognised by the course notebook id in its metadata (``metadata["course"]["notebook"]``, which
every course notebook and student version carries), so renamed copies ("Copy of 01_lenet5.ipynb",
"alice-lenet.ipynb") still grade; files without it fall back to their name, and the rest are reported. Each
submission runs in its own kernel, up to its last graded cell, several at a time (``--jobs``), each within a
time limit; the CSV gets a ``feedback`` column and every submission a short Markdown report.

Nothing the submission's kernel concludes counts for a grade: each graded cell runs on fresh copies of the
course's modules (a check the student replaced is gone), its hidden test records what the check saw of the
answer as plain data, and this process runs the same check on that record against its own reference
(``helpers.checks.judge``). An answer that calls the course's own implementation of the exercise scores 0.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import csv
import multiprocessing
import os
import re
import sys
import time
import warnings
from pathlib import Path

import nbformat

from helpers import settings

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUB = 'raise NotImplementedError("Exercise {name}: write this part (see the hint above), then run the check below.")'


class MarkerError(ValueError):
    """Solution or hidden-test markers that do not pair up."""


def _regions(lines: list[str], begin: str, end: str, where: str):
    """Yield (start, stop) line indices of each begin..end region; markers must pair and not nest."""
    start = None
    for i, line in enumerate(lines):
        if begin in line:
            if start is not None:
                raise MarkerError(f"{where}: '{begin}' at line {i + 1} before the previous one was closed.")
            start = i
        elif end in line:
            if start is None:
                raise MarkerError(f"{where}: '{end}' at line {i + 1} without a '{begin}'.")
            yield start, i
            start = None
    if start is not None:
        raise MarkerError(f"{where}: '{begin}' at line {start + 1} is never closed.")


def _exercise_name(cell, index: int) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", f"cell-{index}")


def student_source(source: str, name: str, where: str) -> str:
    """The cell's source with solutions stubbed out and hidden tests removed."""
    lines = source.split("\n")
    for begin, end, keep_stub in ((BEGIN_SOLUTION, END_SOLUTION, True), (BEGIN_HIDDEN, END_HIDDEN, False)):
        out, last = [], 0
        for start, stop in _regions(lines, begin, end, where):
            out += lines[last:start]
            if keep_stub:
                indent = re.match(r"\s*", lines[start]).group(0)
                out += [f"{indent}# YOUR CODE HERE", indent + STUB.format(name=name)]
            last = stop + 1
        lines = out + lines[last:]
    return "\n".join(lines)


COURSE_KEY = "course"  # metadata["course"]["notebook"]: which course notebook a file is (or was copied from)


def course_id(nb) -> str | None:
    """The course notebook id written in ``nb``'s metadata, if any."""
    entry = nb.metadata.get(COURSE_KEY)
    return entry.get("notebook") if isinstance(entry, dict) else None


def student_notebook(nb, where: str = "notebook"):
    """A copy of ``nb`` with solutions replaced by stubs, hidden tests removed and outputs cleared."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.source = student_source(cell.source, _exercise_name(cell, index), f"{where}, cell {index}")
        cell.outputs, cell.execution_count = [], None
    return nb


def has_exercises(nb) -> bool:
    return any(BEGIN_SOLUTION in c.source for c in nb.cells if c.cell_type == "code")


def build(notebooks_dir: Path, out: Path) -> list[Path]:
    """Write the student version of every course notebook that has exercises; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if not has_exercises(nb):
            continue
        student = student_notebook(nb, where=path.name)
        student.metadata[COURSE_KEY] = {"notebook": path.stem}  # recognised however the file is renamed
        nbformat.validate(student)
        target = out / path.name
        nbformat.write(student, target)
        written.append(target)
    return written


def graded_cells(nb) -> dict[str, int]:
    """grade_id -> cell index of every graded (nbgrader grade=True) cell."""
    return {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("grade")}


def points(nb) -> dict[str, float]:
    """grade_id -> points of every graded cell (1 when the cell does not say)."""
    return {gid: float(nb.cells[i].metadata["nbgrader"].get("points", 1)) for gid, i in graded_cells(nb).items()}


def _failure(cell) -> str | None:
    """A graded cell's error output, in one line (the check's own message), or None when it passed."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
    return None


# Cells the grader puts around each graded cell. Before: fresh copies of the course's modules, so that nothing the
# submission changed in them (a check replaced, a reference patched) reaches the graded cell. After: the
# submission's own copies again, so its later cells run as they did for the student.
PRISTINE = """\
import sys as _grading_sys
_grading_saved = {name: module for name, module in _grading_sys.modules.items() if name.split(".")[0] == "helpers"}
for _grading_name in _grading_saved:
    del _grading_sys.modules[_grading_name]
import helpers.checks"""
RESTORE = """\
for _grading_name in [name for name in _grading_sys.modules if name.split(".")[0] == "helpers"]:
    del _grading_sys.modules[_grading_name]
_grading_sys.modules.update(_grading_saved)
helpers = _grading_saved.get("helpers", helpers)"""


def _answer(cell) -> dict | None:
    """The answer a graded cell's hidden test recorded (``helpers.checks.record_answer``), if any."""
    from helpers.checks import ANSWER_MIME

    shown = [o["data"][ANSWER_MIME] for o in cell.get("outputs", [])
             if o.get("output_type") == "display_data" and ANSWER_MIME in o.get("data", {})]
    return shown[-1] if shown else None


def run_submission(submission: Path, source: Path, timeout: int = 600) -> dict[str, tuple[str, object]]:
    """Run a submitted notebook with the source's graded cells (and hidden tests) put back, up to its last graded
    cell, each graded cell on fresh copies of the course's modules. Returns, per graded cell of the submission,
    ("failed", the check's message), ("answer", what its hidden test recorded) or ("passed", None)."""
    from nbclient import NotebookClient

    from helpers.checks import GRADING_ENV

    nb = nbformat.read(submission, as_version=4)
    reference = nbformat.read(source, as_version=4)
    ref_cells, sub_cells = graded_cells(reference), graded_cells(nb)
    for grade_id, ref_index in ref_cells.items():
        if grade_id in sub_cells:  # graded cells are the instructor's: restore them, hidden tests included
            nb.cells[sub_cells[grade_id]].source = reference.cells[ref_index].source
    # Later cells may depend on earlier answers: run everything up to the last graded cell (what comes after it
    # cannot change a grade), then see which graded cells raised.
    if sub_cells:
        nb.cells = nb.cells[:max(sub_cells.values()) + 1]
    cells, graded = [], {}
    for index, cell in enumerate(nb.cells):
        if index in sub_cells.values():
            grade_id = next(g for g, i in sub_cells.items() if i == index)
            cells.append(nbformat.v4.new_code_cell(PRISTINE))
            graded[grade_id] = len(cells)
            cells += [cell, nbformat.v4.new_code_cell(RESTORE)]
        else:
            cells.append(cell)
    nb.cells = cells
    os.environ[GRADING_ENV] = "1"  # the kernel inherits it: record_answer hands answers over
    # The kernel is killed at the end instead of asked to shut down: its outputs are in, and the polite
    # shutdown waits about a second per submission for nothing.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(source.parent)}})
    client.execute()
    results = {}
    for grade_id, index in graded.items():
        failure, answer = _failure(nb.cells[index]), _answer(nb.cells[index])
        results[grade_id] = ("failed", failure) if failure else ("answer", answer) if answer else ("passed", None)
    return results


def judge(results: dict[str, tuple[str, object]], available: dict[str, float]) -> tuple[dict, dict]:
    """Points and feedback per graded cell from what ``run_submission`` saw. A graded exercise (its grade id is
    ``check_<exercise>`` of ``helpers.checks.EXERCISES``) scores only when its recorded answer passes its check
    again here, in the grader's process, against the grader's own reference; nothing the submission's kernel
    concluded counts for it."""
    from helpers.checks import EXERCISES, CheckFailed, judge as judge_answer

    scores, feedback = {}, {}
    for grade_id, value in available.items():
        status, detail = results.get(grade_id, ("deleted", None))
        exercise = grade_id.removeprefix("check_")
        if status == "deleted":
            said = "the graded cell was deleted"
        elif status == "failed":
            said = detail
        elif exercise not in EXERCISES:  # a graded cell with its own asserts: it passed in the kernel
            said = "passed"
        elif status != "answer" or detail.get("exercise") != exercise:
            said = "no answer was recorded: the graded cell did not reach its hidden test"
        else:
            try:
                judge_answer(exercise, detail)
                said = "passed"
            except CheckFailed as failure:
                said = f"CheckFailed: {failure}"
            except Exception as error:  # a recorded answer this check cannot read
                said = f"the recorded answer could not be judged ({type(error).__name__}: {error})"
        scores[grade_id], feedback[grade_id] = (value if said == "passed" else 0.0), said
    return scores, feedback


def match_course_notebook(path: Path, sources: dict[str, Path]) -> Path | None:
    """The course notebook a submission is: by the id in its metadata, else by its name (``01_lenet5 (1).ipynb``,
    ``Copy of 01_lenet5.ipynb``, ``alice/01_lenet5.ipynb``); None when neither tells."""
    try:
        notebook = course_id(nbformat.read(path, as_version=4))
    except Exception:  # not a notebook at all: the name may still tell, and running it will say what is wrong
        notebook = None
    if notebook in sources:
        return sources[notebook]
    stem = re.sub(r"\s*\(\d+\)$", "", path.stem)  # "01_lenet5 (1)" -> "01_lenet5"
    return next((source for name, source in sources.items() if stem.endswith(name)), None)


def _grade_in_child(path: Path, source: Path, connection) -> None:
    os.environ["MPLBACKEND"] = "Agg"  # the kernel draws no figures: grading reads the checks, not the plots
    try:
        connection.send(("ok", run_submission(path, source)))
    except Exception as error:  # an unreadable file, a kernel that died
        connection.send(("error", f"{type(error).__name__}: {error}"))


def _grade_in_process(path: Path, source: Path, limit: int) -> dict:
    """``run_submission`` in a process of its own, stopped after ``limit`` seconds (its kernel exits with it). The
    process is forked from this one, so it starts with nbformat and nbclient already imported."""
    context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_grade_in_child, args=(path, source, sender), daemon=True)
    with warnings.catch_warnings():  # "this process is multi-threaded": the child uses none of the threads
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()
    sender.close()
    try:
        if not receiver.poll(limit):
            raise TimeoutError(f"stopped after {limit} s")
        status, value = receiver.recv()
    except EOFError:
        status, value = "error", f"the grading process ended without a result (exit code {process.exitcode})"
    finally:
        if process.is_alive():
            process.kill()
        process.join()
    if status != "ok":
        raise RuntimeError(value)
    return value


def _timed(path: Path, source: Path, limit: int):
    """(what ``run_submission`` saw, or None; the error, or None; seconds taken) of one submission."""
    start = time.perf_counter()
    try:
        return _grade_in_process(path, source, limit), None, time.perf_counter() - start
    except Exception as error:  # an unreadable file, a kernel that died, the time limit
        return None, error, time.perf_counter() - start


def _report(row: dict, feedback: dict[str, str], available: dict[str, float]) -> str:
    lines = [f"# Feedback: {row['submission']}", "",
             f"Course notebook: {row['notebook']}. Score: {row['score']:g} / {row['max_score']:g}.", "",
             "| exercise | points | what the check said |", "|---|---|---|"]
    for grade_id, value in available.items():
        said = feedback.get(grade_id, "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {grade_id} | {row.get(grade_id, 0):g} / {value:g} | {said} |")
    return "\n".join(lines) + "\n"


def grade(submissions: Path, notebooks_dir: Path, out_csv: Path, *, jobs: int | None = None,
          limit: int = 900) -> list[dict]:
    """Grade every ``*.ipynb`` under ``submissions`` that is a course notebook; write a CSV and, beside it, a
    Markdown report per submission (``<csv name>_feedback/``).

    Submissions run ``jobs`` at a time (default: the CPU count), each in its own process and kernel, for at most
    ``limit`` seconds; one that fails or runs out of time scores 0 with the reason, and the others go on. Files
    that are not course notebooks are listed with the reason. Notebooks run in QUICK mode unless ``CNN_QUICK``
    says otherwise.
    """
    os.environ.setdefault(settings.QUICK_ENV, "1")
    sources = {p.stem: p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb")}
    paths = sorted(submissions.rglob("*.ipynb"))
    matched = {path: match_course_notebook(path, sources) for path in paths}
    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        futures = {path: pool.submit(_timed, path, source, limit)
                   for path, source in matched.items() if source is not None}
    rows = []
    reports = out_csv.parent / f"{out_csv.stem}_feedback"
    for path, source in matched.items():
        name = path.relative_to(submissions).as_posix()
        if source is None:
            rows.append({"submission": name, "notebook": "", "score": 0.0, "max_score": 0.0, "seconds": 0.0,
                         "feedback": "not recognised: no course notebook id in its metadata, and its name matches "
                                     "no course notebook"})
            continue
        available = points(nbformat.read(source, as_version=4))
        result, error, seconds = futures[path].result()
        if result is None:  # zero, with the reason
            scores, feedback = dict.fromkeys(available, 0.0), dict.fromkeys(available, f"could not be run: {error}")
        else:  # judged here, after every kernel has run (the checks load TensorFlow into this process)
            scores, feedback = judge(result, available)
        failed = [f"{gid}: {said}" for gid, said in feedback.items() if said != "passed"]
        row = {"submission": name, "notebook": source.stem, **scores, "score": sum(scores.values()),
               "max_score": sum(available.values()), "seconds": round(seconds, 1),
               "feedback": "; ".join(failed) or "all checks passed"}
        rows.append(row)
        report = reports / (name.replace("/", "__").removesuffix(".ipynb") + ".md")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(_report(row, feedback, available))
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    fields.append(fields.pop(fields.index("feedback")))  # the long text last
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv=None) -> int:
    root = settings.repo_root() or Path.cwd()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks-dir", type=Path, default=root / "notebooks")
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="write student versions")
    build_cmd.add_argument("--out", type=Path, default=root / "build" / "student")
    grade_cmd = commands.add_parser("grade", help="grade a folder of submitted notebooks")
    grade_cmd.add_argument("submissions", type=Path)
    grade_cmd.add_argument("--out", type=Path, default=Path("scores.csv"))
    grade_cmd.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU count)")
    grade_cmd.add_argument("--limit", type=int, default=900, help="seconds one submission may take (default 900)")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in build(args.notebooks_dir, args.out):
            print(f"wrote {path}")
        return 0
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder of submitted notebooks")
    for row in grade(args.submissions, args.notebooks_dir, args.out, jobs=args.jobs, limit=args.limit):
        print(f"{row['submission']}: {row['score']:g} / {row['max_score']:g} ({row['feedback']})")
    print(f"scores written to {args.out}; a report per submission in {args.out.parent / (args.out.stem + '_feedback')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
