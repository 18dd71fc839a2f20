"""Execute the course notebooks with papermill and print a summary table.

    python -m helpers.run_notebooks                 # every notebook, QUICK mode
    python -m helpers.run_notebooks --mode cpu 05   # notebook 05 in CPU mode (a result on a 2-core CPU)
    python -m helpers.run_notebooks --full 01 03    # notebooks 01 and 03, full length (= --mode full)

Executed copies go to ``build/notebooks`` (kept on failure, up to the failing cell). Exits non-zero when any
notebook fails, naming it and the cell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from helpers import results, settings


def find_notebooks(folder: Path, selection: list[str]) -> list[Path]:
    """Numbered notebooks in ``folder``; ``selection`` items match a path, a full name or a prefix like "01"."""
    available = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return available
    chosen = []
    for item in selection:
        path = Path(item)
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path)
            continue
        matches = [p for p in available if p.stem == item or p.stem.startswith(item)]
        if len(matches) != 1:
            names = ", ".join(p.stem for p in available)
            raise SystemExit(f"'{item}' matches {len(matches)} notebooks; choose one of: {names}")
        chosen.append(matches[0])
    return chosen


QUICK_CELL_TIMEOUT = 600  # seconds; a QUICK cell takes well under a minute, so only a hung kernel reaches it
QUICK_BUDGET = 90  # seconds a notebook, kernel start included; the table marks a QUICK run past it (a shared
# machine can be slow, so it is reported, not failed)


def run_one(notebook: Path, output: Path, mode: str, cell_timeout: int | None = None) -> dict:
    """Execute one notebook; a cell running past ``cell_timeout`` seconds fails it (None: no limit)."""
    import papermill

    name = notebook.stem
    row = {"notebook": name, "status": "ok", "seconds": 0.0, "headline": "", "error": ""}
    previous = settings.results_dir() / f"{name}.json"
    previous.unlink(missing_ok=True)  # a stale result must not pass for this run's
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters={"MODE": mode, "QUICK": mode == "quick"}, cwd=str(notebook.parent),
            progress_bar=False, log_output=False, execution_timeout=cell_timeout,
            # The kernel process logs its own start-up to this console (e.g. a warning that it talks to the
            # runner over local TCP); the notebook's outputs, warnings included, are not affected.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except papermill.PapermillExecutionError as e:
        row["status"] = "FAILED"
        row["error"] = f"cell {e.cell_index} (execution count {e.exec_count}): {e.ename}: {e.evalue}"
    except Exception as e:  # a kernel that died or could not start
        row["status"] = "FAILED"
        row["error"] = f"{type(e).__name__}: {e}"
    row["seconds"] = round(time.perf_counter() - start, 1)
    recorded = results.load(name)
    if recorded:
        key = recorded["headline"]
        value = recorded["metrics"][key]
        row["headline"] = f"{key} = {value:.4f}" if isinstance(value, float) else f"{key} = {value}"
    return row


def print_table(rows: list[dict], mode: str = "quick") -> None:
    headers = ["notebook", "status", "seconds", "headline"]
    widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in headers]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print("\n" + line + "\n" + "-" * len(line))
    for r in rows:
        print("  ".join(str(r[h]).ljust(w) for h, w in zip(headers, widths)))
    print(f"total {sum(r['seconds'] for r in rows):.1f} s")
    over = [r["notebook"] for r in rows if mode == "quick" and r["seconds"] > QUICK_BUDGET]
    if over:
        print(f"over the QUICK budget of {QUICK_BUDGET} s: {', '.join(over)}")
    for r in rows:
        if r["error"]:
            print(f"\n{r['notebook']} failed at {r['error']}")


def main(argv=None) -> int:
    root = settings.repo_root() or Path.cwd()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="names, number prefixes or paths (default: all)")
    parser.add_argument("--mode", choices=settings.MODES, default="quick",
                        help="quick (default: every code path, CI), cpu (a result on a 2-core CPU) or full (a GPU)")
    parser.add_argument("--full", action="store_true", help="the same as --mode full")
    parser.add_argument("--notebooks-dir", type=Path, default=root / "notebooks")
    parser.add_argument("--out", type=Path, default=root / "build" / "notebooks")
    parser.add_argument("--cell-timeout", type=int, default=None,
                        help=f"seconds a cell may run (default: {QUICK_CELL_TIMEOUT} in QUICK mode, none in the others)")
    args = parser.parse_args(argv)

    notebooks = find_notebooks(args.notebooks_dir, args.notebooks)
    if not notebooks:
        print(f"no notebooks found in {args.notebooks_dir}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    # The kernels inherit these: one line per epoch, and results written where this runner reads them.
    os.environ[settings.NONINTERACTIVE_ENV] = "1"
    os.environ.setdefault(settings.RESULTS_DIR_ENV, str(args.out.parent / "results"))
    mode = "full" if args.full else args.mode
    quick = mode == "quick"
    print(f"Running {len(notebooks)} notebook(s) in {mode} mode; "
          f"data from {settings.data_dir()}; executed copies in {args.out}", flush=True)
    rows = []
    for nb in notebooks:
        print(f"- {nb.stem} ...", flush=True)
        timeout = args.cell_timeout or (QUICK_CELL_TIMEOUT if quick else None)
        rows.append(run_one(nb, args.out / nb.name, mode, cell_timeout=timeout))
        print(f"  {rows[-1]['status']} in {rows[-1]['seconds']} s", flush=True)
    print_table(rows, mode)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
