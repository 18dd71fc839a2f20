"""Grade a class: N generated submissions of one course notebook, graded in parallel; wall time and per submission.

    python benchmarks/grading.py                       # 60 submissions of 00_cnn_basics, --jobs = CPU count
    python benchmarks/grading.py --count 20 --jobs 1 --notebook 01_lenet5

Each submission's answers run in the grading sandbox (``helpers.grading``; bubblewrap must work here). Half the
submissions are the course notebook (full marks), half its student version (unfinished: 0), under
names as they arrive (``Copy of …``, ``… (1)``, renamed), in a temporary folder. Needs the datasets
(``CNN_DATA_DIR``). Prints the total wall time, the median time per submission (from each report's start and end)
and the scores, which must be right for the timing to count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from helpers import assignments, cpu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--notebook", default="00_cnn_basics")
    args = parser.parse_args()
    print(cpu.header())

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        student = assignments.build(ROOT / "notebooks", tmp / "student")
        student = next(p for p in student if p.stem == args.notebook)
        course = ROOT / "notebooks" / f"{args.notebook}.ipynb"
        submissions = tmp / "submissions"
        names = ["{}.ipynb", "Copy of {}.ipynb", "{} (1).ipynb", "student-{}.ipynb"]
        expected = {}
        for i in range(args.count):
            folder = submissions / f"student{i:02d}"
            folder.mkdir(parents=True)
            name = names[i % len(names)].format(args.notebook)
            finished = i % 2 == 0
            (folder / name).write_bytes((course if finished else student).read_bytes())
            expected[f"{folder.name}/{name}"] = finished
        jobs = args.jobs or os.cpu_count()
        start = time.perf_counter()
        rows = assignments.grade(submissions, ROOT / "notebooks", tmp / "scores.csv", jobs=jobs)
        wall = time.perf_counter() - start
        seconds = [float(row["seconds"]) for row in rows]
    wrong = [row["submission"] for row in rows if (row["score"] == row["max_score"]) != expected[row["submission"]]]
    print(f"{args.count} submissions of {args.notebook}, {jobs} at a time on {os.cpu_count()} CPUs: "
          f"{wall:.1f} s in all ({wall / 60:.2f} min); per submission median {statistics.median(seconds):.1f} s, "
          f"max {max(seconds):.1f} s; {len(wrong)} scored wrongly {wrong[:3]}")


if __name__ == "__main__":
    main()
