"""Student versions of the course notebooks, and grading of what students hand back.

The course notebooks carry nbgrader's markers, so instructors who use nbgrader can adopt them as they are::

    def output_size(n, k, s=1, p=0):
        # Hint: ...                       <- kept in the student version
        ### BEGIN SOLUTION
        return (n + 2 * p - k) // s + 1    <- replaced by a stub that raises NotImplementedError
        ### END SOLUTION

    helpers.checks.output_size(output_size)   <- a graded cell (nbgrader metadata: grade=True)
    ### BEGIN HIDDEN TESTS
    assert output_size(227, 11, 4) == 55       <- removed from the student version, used for grading
    ### END HIDDEN TESTS

Without nbgrader::

    python -m helpers.assignments build [--out build/student]          # write student versions
    python -m helpers.assignments grade SUBMISSIONS [--out scores.csv]  # run hidden tests, score each file
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import re
import sys
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


def grade_one(submission: Path, source: Path, timeout: int = 600) -> dict[str, float]:
    """Run a submitted notebook with the source's graded cells (and hidden tests) put back; points per cell."""
    from nbclient import NotebookClient

    nb = nbformat.read(submission, as_version=4)
    reference = nbformat.read(source, as_version=4)
    ref_cells, sub_cells = graded_cells(reference), graded_cells(nb)
    for grade_id, ref_index in ref_cells.items():
        if grade_id in sub_cells:  # graded cells are the instructor's: restore them, hidden tests included
            nb.cells[sub_cells[grade_id]].source = reference.cells[ref_index].source
    # Later cells may depend on earlier answers: run everything, then see which graded cells raised.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(source.parent)}})
    client.execute()
    scores = {}
    for grade_id, value in points(reference).items():
        cell = nb.cells[sub_cells[grade_id]] if grade_id in sub_cells else None  # a deleted cell scores 0
        failed = cell is None or any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        scores[grade_id] = 0.0 if failed else value
    return scores


def grade(submissions: Path, notebooks_dir: Path, out_csv: Path) -> list[dict]:
    """Grade every ``*.ipynb`` under ``submissions`` whose name ends like a course notebook's; write a CSV.

    Notebooks run in QUICK mode unless ``CNN_QUICK`` says otherwise.
    """
    os.environ.setdefault(settings.QUICK_ENV, "1")
    rows = []
    sources = {p.name: p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb")}
    for path in sorted(submissions.rglob("*.ipynb")):
        source = next((s for name, s in sources.items() if path.name.endswith(name)), None)
        if source is None:
            print(f"skipped {path}: its name matches no course notebook", file=sys.stderr)
            continue
        available = points(nbformat.read(source, as_version=4))
        try:
            scores = grade_one(path, source)
        except Exception as e:  # an unreadable file or a kernel that died: zero, with the reason
            print(f"{path}: could not be run ({type(e).__name__}: {e})", file=sys.stderr)
            scores = dict.fromkeys(available, 0.0)
        rows.append({"submission": path.relative_to(submissions).as_posix(), "notebook": source.stem,
                     **scores, "score": sum(scores.values()), "max_score": sum(available.values())})
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
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
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in build(args.notebooks_dir, args.out):
            print(f"wrote {path}")
        return 0
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder of submitted notebooks")
    for row in grade(args.submissions, args.notebooks_dir, args.out):
        print(f"{row['submission']}: {row['score']:g} / {row['max_score']:g}")
    print(f"scores written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
