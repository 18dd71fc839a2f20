"""Student versions of the course notebooks, and grading of what students hand back.

The course notebooks carry nbgrader's markers, so instructors who use nbgrader can adopt them as they are::

    def output_size(n, k, s=1, p=0):
        # Hint: ...                       <- kept in the student version
        ### BEGIN SOLUTION
        return (n + 2 * p - k) // s + 1    <- replaced by a stub that raises NotImplementedError
        ### END SOLUTION

    helpers.checks.check_output_size(output_size)   <- a graded cell (nbgrader metadata: grade=True)
    ### BEGIN HIDDEN TESTS
    import helpers.grading                                       <- removed from the student version; run
    helpers.grading.check_own_work("output_size", output_size)     by nbgrader's autograde
    ### END HIDDEN TESTS

Without nbgrader::

    python -m helpers.assignments build [--out build/student]          # write student versions
    python -m helpers.assignments grade SUBMISSIONS [--out scores.csv]  # score each file, in a sandbox

A submission is recognised by the course notebook id in its metadata (``metadata["course"]["notebook"]``, which
every course notebook and student version carries), so renamed copies ("Copy of 01_lenet5.ipynb",
"alice-lenet.ipynb") still grade; files without it fall back to their name, and the rest are reported. The CSV
gets a ``feedback`` column and every submission a short Markdown report.

How a submission is graded, and what its code can and cannot reach, is ``helpers.grading``: its answer cells run
in a sandbox without the course's own implementations of the exercises, and the checks judge, in this process,
what they return. The hidden tests are for graders that run the whole notebook (nbgrader).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import csv
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from helpers import grading, settings

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


def _graded(path: Path, reference, stage: Path, limit: int, sandbox: bool, judging) -> tuple[dict | None, str | None, float]:
    """(what each exercise's check said, or None; why it could not be graded, or None; seconds) of one submission."""
    start = time.perf_counter()
    try:
        submission = nbformat.read(path, as_version=4)
    except Exception as error:  # not a notebook (or a damaged one): nothing of it can run
        return None, f"could not be read as a notebook ({type(error).__name__}: {error})", time.perf_counter() - start
    said = grading.grade_answers(submission, reference, stage, limit=limit, sandbox=sandbox, judging=judging)
    return said, None, time.perf_counter() - start


def _report(row: dict, feedback: dict[str, str], available: dict[str, float]) -> str:
    lines = [f"# Feedback: {row['submission']}", "",
             f"Course notebook: {row['notebook']}. Score: {row['score']:g} / {row['max_score']:g}.", "",
             "| exercise | points | what the check said |", "|---|---|---|"]
    for grade_id, value in available.items():
        said = feedback.get(grade_id, "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {grade_id} | {row.get(grade_id, 0):g} / {value:g} | {said} |")
    return "\n".join(lines) + "\n"


def grade(submissions: Path, notebooks_dir: Path, out_csv: Path, *, jobs: int | None = None,
          limit: int = 900, sandbox: bool = True) -> list[dict]:
    """Grade every ``*.ipynb`` under ``submissions`` that is a course notebook; write a CSV and, beside it, a
    Markdown report per submission (``<csv name>_feedback/``).

    Each submission's answer cells run in a sandbox of their own (``helpers.grading``), ``jobs`` at a time
    (default: the CPU count), for at most ``limit`` seconds; the checks judge what they return here. One that
    fails or runs out of time scores 0 with the reason, and the others go on. Files that are not course notebooks
    are listed with the reason. Without a sandbox on this machine it refuses, unless ``sandbox=False``.
    """
    if sandbox and (why := grading.sandbox_works()):
        raise grading.SandboxUnavailable(
            f"{why} Grading does not run students' code outside a sandbox; to run it anyway, with this user's "
            "rights over this machine's files, pass --no-sandbox.")
    sources = {p.stem: p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb")}
    references = {name: nbformat.read(path, as_version=4) for name, path in sources.items()}
    paths = sorted(submissions.rglob("*.ipynb"))
    matched = {path: match_course_notebook(path, sources) for path in paths}
    judging = threading.Lock()  # the checks build Keras models: one at a time in this process
    with tempfile.TemporaryDirectory(prefix="course-") as stage:
        grading.stage_course(Path(stage))
        with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
            futures = {path: pool.submit(_graded, path, references[source.stem], Path(stage), limit, sandbox, judging)
                       for path, source in matched.items() if source is not None}
            results = {path: future.result() for path, future in futures.items()}
    rows = []
    reports = out_csv.parent / f"{out_csv.stem}_feedback"
    for path, source in matched.items():
        name = path.relative_to(submissions).as_posix()
        if source is None:
            rows.append({"submission": name, "notebook": "", "score": 0.0, "max_score": 0.0, "seconds": 0.0,
                         "feedback": "not recognised: no course notebook id in its metadata, and its name matches "
                                     "no course notebook"})
            continue
        available = points(references[source.stem])
        said, error, seconds = results[path]
        feedback = {gid: error or (said or {}).get(gid.removeprefix("check_"), "no check of the grader's grades this "
                                                   "cell") for gid in available}
        scores = {gid: value if feedback[gid] == "passed" else 0.0 for gid, value in available.items()}
        failed = [f"{gid}: {why}" for gid, why in feedback.items() if why != "passed"]
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
    grade_cmd.add_argument("--no-sandbox", action="store_true",
                           help="grade without the sandbox where it cannot be made (students' code then runs with "
                                "your rights)")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in build(args.notebooks_dir, args.out):
            print(f"wrote {path}")
        return 0
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder of submitted notebooks")
    try:
        rows = grade(args.submissions, args.notebooks_dir, args.out, jobs=args.jobs, limit=args.limit,
                     sandbox=not args.no_sandbox)
    except grading.SandboxUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"{row['submission']}: {row['score']:g} / {row['max_score']:g} ({row['feedback']})")
    print(f"scores written to {args.out}; a report per submission in {args.out.parent / (args.out.stem + '_feedback')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
