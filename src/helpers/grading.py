"""Grading one submission: its answers run in a sandbox without the course's references; the checks run here.

How a submission is graded (``python -m helpers.assignments grade``):

1. Only its *answer cells* are read: the code cells that hold an exercise (nbgrader ``solution`` cells, found by
   their grade id, or else by the ``def`` of the exercise's function). Nothing else of the notebook runs, so
   objects the notebook builds from the course's code (``paper = …``) do not exist where the answers run.
2. They run in a fresh Python process (:func:`serve`) inside a bubblewrap sandbox (:func:`sandbox_command`): the
   Python installation read-only, the course's package as a *redacted copy* (:func:`stage_course`: the course's
   own implementation of every graded exercise replaced by a function that raises, and ``helpers.checks``
   reduced to its probes), a throwaway home and working folder, no network, no other process visible, an
   unprivileged user, and limits on CPU time, memory, processes and file size. The course's folder, its
   notebooks (with their solutions), the datasets and this process are not in it.
3. Each graded exercise's check runs here, in the grader's process, on a :class:`helpers.checks.Remote` of the
   student's function: every probe the check makes is sent to the sandbox, which runs it on the student's
   function and sends back plain data (numbers, lists, arrays); the check judges that data against this
   process's own references. Nothing the sandbox says is run or unpickled here.

Where the sandbox cannot be made (no bubblewrap, no namespaces), grading refuses, unless the instructor passes
``sandbox=False`` (``--no-sandbox``): then the same process runs with the same limits and redacted copy, but it
can read and write whatever the grader's user can.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from helpers import checks, settings
from helpers.checks import CheckFailed

# Graded exercise -> (its check in helpers.checks, the course's own implementations of it). The implementations are absent from the
# sandbox's copy of the course (a "Class.method" entry: that method), along with the data they are made from.
EXERCISES = {
    "output_size": ("check_output_size", ()),
    "conv_params": ("check_conv_params", ()),
    "c3_table": ("check_c3_table", ("helpers.layers.c3_connections", "helpers.layers.LENET5_C3_TABLE")),
    "c3_params": ("check_c3_params", ("helpers.layers.SparseConv2D",)),
    "grouped_conv_params": ("check_grouped_conv_params", ()),
    "lrn": ("check_lrn", ("helpers.layers.LocalResponseNormalization",)),
    "vgg_block": ("check_vgg_block", ("helpers.models.vgg.build_vgg",)),
    "stack_receptive_field": ("check_stack_receptive_field", ()),
    "inception_module": ("check_inception_module", ("helpers.models.googlenet.inception_module",
                                                         "helpers.models.googlenet._conv")),
    "inception_multiply_adds": ("check_inception_multiply_adds", ("helpers.analysis.layer_table",
                                                                       "helpers.analysis.multiply_adds",
                                                                       "helpers.models.googlenet.inception_module")),
    "residual_block": ("check_residual_block", ("helpers.models.resnet.basic_block",
                                                     "helpers.models.resnet._merge", "helpers.models.resnet.shortcut")),
    "zero_pad_shortcut": ("check_zero_pad_shortcut", ("helpers.layers.ZeroPadShortcut",)),
    "conv_multiply_adds": ("check_conv_multiply_adds", ("helpers.analysis.multiply_adds",
                                                             "helpers.analysis.layer_table")),
    "images_per_second": ("check_images_per_second", ("helpers.measure.StepTimer.images_per_second",)),
    "fold_bias": ("check_fold_bias", ("helpers.pretrained.fold_conv_bias",)),
    "freeze_all_but_classifier": ("check_freeze_all_but_classifier", ()),
    "inverted_dropout": ("check_inverted_dropout", ()),
    "batch_norm_forward": ("check_batch_norm_forward", ()),
}

# What the sandbox's helpers.checks keeps: the probes and what they use (no check, no reference).
PROBE_MODULE_KEEPS = ("CheckFailed", "_call", "_plain", "_FAILED", "run_probe", "_returns", "_returns_array",
                      "_block", "_block_model", "_conv_kernels", "_rectified", "_block_facts", "_frozen", "PROBES")

ABSENT = ("{name} is the course's own answer to an exercise and is not available while grading: "
          "write it yourself.")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be made on this machine; the message says why and what to do."""


# --- The redacted copy of the course ----------------------------------------------------------------------------

def _redacted_names() -> dict[str, set[str]]:
    """module -> the names of its top-level objects (or "Class.method") that the sandbox's copy leaves out."""
    names: dict[str, set[str]] = {}
    for _, references in EXERCISES.values():
        for reference in references:
            module, _, name = reference.partition(".")[2].rpartition(".")  # helpers.x.y.name -> x.y, name
            if module.split(".")[-1][0].isupper():  # helpers.measure.StepTimer.images_per_second: a method
                module, _, owner = module.rpartition(".")
                name = f"{owner}.{name}"
            names.setdefault(module, set()).add(name)
    return names


def _raising(name: str, qualified: str) -> ast.stmt:
    return ast.parse(f"def {name}(*args, **kwargs):\n    raise RuntimeError({ABSENT.format(name=qualified)!r})").body[0]


def redact(source: str, module: str, names: set[str]) -> str:
    """``source`` of ``helpers.<module>`` with ``names`` replaced: a function or method by one that raises, a class by
    one whose construction raises (it can still be subclassed), a constant by None."""
    tree = ast.parse(source)
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names:
            tree.body[i] = _raising(node.name, f"helpers.{module}.{node.name}")
        elif isinstance(node, ast.ClassDef):
            if node.name in names:
                init = _raising("__init__", f"helpers.{module}.{node.name}")
                init.args.args.insert(0, ast.arg("self"))
                node.body = [init]
                continue
            for j, item in enumerate(node.body):
                if isinstance(item, ast.FunctionDef) and f"{node.name}.{item.name}" in names:
                    node.body[j] = _raising(item.name, f"helpers.{module}.{node.name}.{item.name}")
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in names for t in targets):
                node.value = ast.Constant(None)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _only(source: str, keep: tuple[str, ...]) -> str:
    """``source`` with only its imports and the top-level definitions named in ``keep``."""
    tree = ast.parse(source)

    def defines(node) -> set[str]:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            return {node.name}
        if isinstance(node, ast.Assign):
            return {t.id for t in node.targets if isinstance(t, ast.Name)}
        return set()

    tree.body = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom) or defines(n) & set(keep)]
    return ast.unparse(tree) + "\n"


def stage_course(dest: Path) -> Path:
    """Write the sandbox's copy of the course's package to ``dest/helpers`` (readable by any user); returns ``dest``."""
    source = Path(checks.__file__).parent
    target = dest / "helpers"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for module, names in _redacted_names().items():
        path = target / (module.replace(".", "/") + ".py")
        path.write_text(redact(path.read_text(), module, names))
    checks_path = target / "checks.py"
    checks_path.write_text(_only(checks_path.read_text(), PROBE_MODULE_KEEPS))
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


# --- The sandbox --------------------------------------------------------------------------------------------------

COURSE_IN_SANDBOX = "/course"  # where the redacted copy appears inside


@functools.cache
def _python_trees() -> tuple[str, ...]:
    """The folders this Python and its packages live in (bound read-only into the sandbox)."""
    import site
    import sysconfig

    trees = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             *site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    trees = sorted(os.path.realpath(t) for t in trees if t and os.path.isdir(t))
    return tuple(t for t in trees if not any(t != o and t.startswith(o + os.sep) for o in trees))  # outermost only


def sandbox_command(stage: Path, argv: list[str]) -> list[str]:
    """``argv`` run inside bubblewrap: system and Python read-only, ``stage`` at /course, nothing else of this
    machine's files, a fresh /tmp as home and working folder, no network, its own process tree; as an
    unprivileged user (uid 65534) with no capabilities."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("grading runs each submission in a bubblewrap sandbox, and `bwrap` is not installed "
                                 "(Debian/Ubuntu: apt-get install bubblewrap).")
    command = [bwrap]
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives", "/etc/ld.so.cache",
                   "/etc/ssl"):
        if os.path.exists(system):
            command += ["--ro-bind", system, system]
    for tree in _python_trees():
        # Folders above a tree (/root, say) are made by bwrap; made traversable, or the unprivileged user inside
        # could not reach the Python they hold.
        for parent in reversed(Path(tree).parents[:-1]):
            command += ["--perms", "0755", "--dir", str(parent)]
        command += ["--ro-bind", tree, tree]
    # The course's own package, where the Python above would import it from, hidden behind the redacted copy; its
    # checkout (notebooks with solutions), should it lie inside one of those trees, behind an empty folder.
    real = str(Path(checks.__file__).resolve().parent)
    inside = lambda path: any(path.startswith(tree + os.sep) for tree in _python_trees())  # noqa: E731
    checkout = settings.repo_root()
    if checkout is not None and inside(str(checkout)):
        command += ["--tmpfs", str(checkout)]
    if inside(real):
        command += ["--ro-bind", str(stage / "helpers"), real]
    command += ["--ro-bind", str(stage), COURSE_IN_SANDBOX,
                "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp", "--perms", "0777", "--dir", "/tmp/home",
                "--perms", "0777", "--dir", "/tmp/work",
                "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--chdir", "/tmp/work", "--clearenv",
                "--setenv", "HOME", "/tmp/home", "--setenv", "PATH", "/usr/bin:/bin",
                "--setenv", "PYTHONPATH", COURSE_IN_SANDBOX, "--setenv", "MPLBACKEND", "Agg",
                "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "TF_CPP_MIN_LOG_LEVEL", "2"]
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS"):
        command += ["--setenv", "TF_ENABLE_ONEDNN_OPTS", os.environ["TF_ENABLE_ONEDNN_OPTS"]]
    if os.geteuid() == 0:
        # As root, bwrap makes the mounts without a user namespace; the answers then run as a real unprivileged
        # user, so the process limit below counts (a user namespace would map them back to root, which it exempts).
        command += ["--", shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                    "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
    else:
        command += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL", "--"]
    return command + argv


LIMITS = {"cpu_seconds": 300, "memory_bytes": 8 << 30, "processes": 512, "file_bytes": 64 << 20}


def _threads_of_this_user() -> int:
    """Processes and threads this user runs now (the process limit counts them all)."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == os.getuid():
            count += int(fields.get("Threads", "1"))
    return count


def _limit(limits: dict, sandbox: bool):
    """The limits, set in the child before it starts the answers' process, and inherited by all it starts."""
    processes = None
    if sandbox:  # as root the answers run as uid 65534, which runs nothing else; otherwise as this user
        processes = limits["processes"] + (0 if os.geteuid() == 0 else _threads_of_this_user())

    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"],) * 2)
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if processes is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    return apply


@functools.cache
def sandbox_works() -> str | None:
    """None when a sandbox can be made here; else why not."""
    with tempfile.TemporaryDirectory() as stage:
        Path(stage).chmod(0o755)
        try:
            command = sandbox_command(Path(stage), [sys.executable, "-c", "import os; print(os.getuid())"])
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except SandboxUnavailable as error:
            return str(error)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap could not start ({error})"
    if done.returncode != 0 or done.stdout.strip() != "65534":
        said = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        return f"bubblewrap could not make the sandbox: {said} (it needs user namespaces, or root)"
    return None


# --- What travels between the grader and the sandbox: plain data only ----------------------------------------------

def to_wire(value):
    """``value`` (numbers, strings, None, lists, tuples, dicts, NumPy arrays) as JSON-ready data."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [to_wire(v) for v in value]}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    return value


def from_wire(value):
    import numpy as np

    if isinstance(value, dict):
        if "__array__" in value:
            return np.asarray(value["__array__"], dtype=np.dtype(str(value.get("dtype", "float64"))))
        if "__tuple__" in value:
            return tuple(from_wire(v) for v in value["__tuple__"])
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


MAX_LINE = 64 << 20  # the longest reply read from the sandbox (the largest probe answer is a few MB)


def serve() -> None:
    """Inside the sandbox: run the answer cells, then the probes the grader asks for, one JSON line each way.

    The first line names the imports and the answer cells; the reply lists the cells that raised. Then each line
    is a probe ({"function", "probe", "args"}) and each reply its plain result. The student's own output goes to
    stderr, which the grader keeps apart."""
    replies = os.fdopen(os.dup(1), "w")
    requests = os.fdopen(os.dup(0), "r")
    os.dup2(2, 1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)

    def send(value) -> None:
        replies.write(json.dumps(to_wire(value)) + "\n")
        replies.flush()

    setup = from_wire(json.loads(requests.readline()))
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    for statement in setup["imports"]:
        try:
            exec(statement, namespace)
        except Exception:  # the answer that needs it will say so
            pass
    errors = {}
    for grade_id, source in setup["cells"]:
        try:
            exec(compile(_python_of(source), f"<answer cell {grade_id}>", "exec"), namespace)
        except BaseException as error:  # noqa: B036 - exit() and KeyboardInterrupt in an answer cell too
            errors[grade_id] = f"{type(error).__name__}: {error}"[:500]
    send({"errors": errors})
    for line in requests:
        ask = json.loads(line)
        fn = namespace.get(ask["function"])
        if not callable(fn):
            send({checks._FAILED: f"{ask['function']} is not defined by the answer cells."})
            continue
        send(checks.run_probe(fn, ask["probe"], from_wire(ask["args"])))


def _python_of(source: str) -> str:
    """A cell's source as Python (IPython's magics become calls that fail here, as they would without IPython)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    return TransformerManager().transform_cell(source)


class Sandbox:
    """One submission's answers, running in a sandbox (or, with ``sandbox=False``, in a plain limited process)."""

    def __init__(self, stage: Path, imports: list[str], cells: list[tuple[str, str]], *, deadline: float,
                 sandbox: bool = True, limits: dict | None = None):
        argv = [sys.executable, "-c", "from helpers.grading import serve; serve()"]
        self.log = tempfile.TemporaryFile()
        if sandbox:
            command, env, cwd = sandbox_command(stage, argv), None, None
        else:
            cwd = tempfile.mkdtemp(prefix="grading-")
            command, env = argv, {"PATH": os.environ.get("PATH", ""), "HOME": cwd, "PYTHONPATH": str(stage),
                                  "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.deadline = deadline
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        env=env, cwd=cwd, start_new_session=True,
                                        preexec_fn=_limit({**LIMITS, **(limits or {})}, sandbox))
        self.timed_out = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._time_up)
        self._timer.daemon = True
        self._timer.start()
        self._buffer = b""
        try:
            self.errors = self._exchange({"imports": imports, "cells": cells})["errors"]
        except BaseException:
            self.close()
            raise

    def _exchange(self, request):
        try:
            self.process.stdin.write((json.dumps(to_wire(request)) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the process has ended: reading says how
        return from_wire(json.loads(self._read_line()))

    def _read_line(self) -> bytes:
        out = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise TimeoutError("stopped at the time limit")
            ready, _, _ = select.select([out], [], [], left)
            if not ready:
                continue
            chunk = os.read(out, 1 << 20)
            if not chunk:
                self.process.wait()
                if self.timed_out:
                    raise TimeoutError("stopped at the time limit")
                said = self.stderr_tail(400).strip().splitlines()[-1:]
                raise RuntimeError(f"the answers' process ended (exit code {self.process.returncode}"
                                   f"{self._signal()}) before it replied" + (f"; it said: {said[0]}" if said else ""))
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                self.close()
                raise RuntimeError(f"the answers' process sent more than {MAX_LINE >> 20} MB in one reply")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _signal(self) -> str:
        code = self.process.returncode
        return {-9: ": killed, at a limit", -24: ": over its CPU time", -25: ": over its file size limit"}.get(code, "")

    def ask(self, function: str):
        """A probe function for :class:`helpers.checks.Remote` on the student's ``function``."""
        return lambda probe, args: self._exchange({"function": function, "probe": probe, "args": list(args)})

    def _time_up(self) -> None:
        self.timed_out = True
        self.close()

    def close(self) -> None:
        self._timer.cancel()
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.process.wait()

    def stderr_tail(self, limit: int = 2000) -> str:
        self.log.seek(0, os.SEEK_END)
        size = self.log.tell()
        self.log.seek(max(0, size - limit))
        return self.log.read().decode(errors="replace")


# --- One submission -----------------------------------------------------------------------------------------------

def answer_cells(nb, exercises: list[str]) -> list[tuple[str, str]]:
    """(grade id, source) of the cells of ``nb`` that hold the answers to ``exercises``: nbgrader solution cells with
    that grade id, or else code cells that define the exercise's function."""
    found = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and grade_id in exercises:
            found.setdefault(grade_id, []).append(cell.source)
    for exercise in exercises:
        if exercise in found:
            continue
        for cell in nb.cells:
            if cell.cell_type == "code" and re.search(rf"^def {re.escape(exercise)}\(", cell.source, re.M):
                found.setdefault(exercise, []).append(cell.source)
    order = {exercise: i for i, exercise in enumerate(exercises)}
    return [(gid, source) for gid in sorted(found, key=order.get) for source in found[gid]]


def course_imports(nb) -> list[str]:
    """The import statements of the course notebook's own code cells (the instructor's), as source lines."""
    statements = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            continue
        try:
            tree = ast.parse(_python_of(cell.source))
        except SyntaxError:
            continue
        statements += [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return list(dict.fromkeys(statements))


def _names_used(sources: list[str]) -> set[str]:
    names = set()
    for source in sources:
        try:
            codes = [compile(_python_of(source), "<answer>", "exec")]
        except SyntaxError:
            continue
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes += [c for c in code.co_consts if hasattr(c, "co_names")]
    return names


def _binds(statement: str) -> set[str]:
    node = ast.parse(statement).body[0]
    return {(alias.asname or alias.name).split(".")[0] for alias in node.names}


def grade_answers(submission, reference, stage: Path, *, limit: float, sandbox: bool = True,
                  limits: dict | None = None, judging: threading.Lock | None = None) -> dict[str, str]:
    """What each graded exercise of ``reference`` (a course notebook) says of ``submission``'s answers: "passed" or
    the reason it did not. The answers run in a sandbox for at most ``limit`` seconds in all."""
    graded = [c.metadata["nbgrader"]["grade_id"].removeprefix("check_") for c in reference.cells
              if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    exercises = [e for e in graded if e in EXERCISES]
    lock = judging or threading.Lock()
    with lock:  # Python 3.11's ast is not safe in several threads at once
        cells = answer_cells(submission, exercises)
        used = _names_used([source for _, source in cells])
        imports = [s for s in course_imports(reference) if _binds(s) & used]  # TensorFlow only when answers use it
    said: dict[str, str] = {}
    process = None
    try:
        process = Sandbox(stage, imports, cells, deadline=time.monotonic() + limit, sandbox=sandbox, limits=limits)
        for exercise in exercises:
            check = getattr(checks, EXERCISES[exercise][0])
            if exercise in process.errors:
                said[exercise] = f"its answer cell raised {process.errors[exercise]}"
                continue
            try:
                with lock:
                    _quietly(check, checks.Remote(exercise, _unlocked(lock, process.ask(exercise))))
                said[exercise] = "passed"
            except CheckFailed as failure:
                said[exercise] = f"CheckFailed: {str(failure)[:500]}"
    except (TimeoutError, RuntimeError, OSError, ValueError) as error:  # the sandbox stopped; the rest score 0
        for exercise in exercises:
            said.setdefault(exercise, f"could not be run: {error}")
    finally:
        if process is not None:
            process.close()
    return said


def _quietly(check, fn) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the grader reports the verdict, not the ✓ line
        check(fn)


def _unlocked(lock: threading.Lock, ask):
    """``ask`` with ``lock`` released while it waits for the sandbox: the checks run one at a time in this process,
    but a submission that sleeps holds up no other."""
    def asked(probe, args):
        lock.release()
        try:
            return ask(probe, args)
        finally:
            lock.acquire()
    return asked


# --- Under nbgrader (or any grader that runs the notebook in its own kernel) ------------------------------------

def _course_objects(fn) -> list[str]:
    """Qualified names of the course's functions and classes ``fn`` refers to: directly, through modules
    (``resnet.basic_block``, ``helpers.layers.c3_connections``), closures, or other functions of the notebook."""
    import builtins
    import inspect
    import types

    found, seen, todo = set(), set(), [fn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            todo.append(obj.func)
            continue
        if isinstance(obj, types.MethodType):
            todo.append(obj.__func__)
            continue
        module = getattr(obj, "__module__", None) or ""
        if module.split(".")[0] == "helpers" and hasattr(obj, "__qualname__"):
            found.add(f"{module}.{obj.__qualname__}")
            continue
        if getattr(obj, "__wrapped__", None) is not None:
            todo.append(obj.__wrapped__)
        if isinstance(obj, type) and module == "__main__":  # a class of the notebook: its methods
            todo.extend(vars(obj).values())
            continue
        if not isinstance(obj, types.FunctionType):
            continue
        names, codes = set(), [obj.__code__]
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes.extend(c for c in code.co_consts if inspect.iscode(c))
        scope = {**vars(builtins), **obj.__globals__}
        values = [scope[name] for name in names if name in scope]
        for cell in obj.__closure__ or ():
            try:
                values.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        modules = [v for v in values if isinstance(v, types.ModuleType)]
        for _ in range(4):  # helpers.models.resnet.basic_block: attributes of attributes
            attributes = [getattr(m, name) for m in modules for name in names if name in vars(m)]
            values += attributes
            modules = [a for a in attributes if isinstance(a, types.ModuleType)]
        todo.extend(v for v in values if callable(v) and (getattr(v, "__module__", "") or "").split(".")[0]
                    in ("helpers", "__main__"))
    return sorted(found)




def check_own_work(exercise: str, fn) -> None:
    """The hidden test of a graded cell, for graders that run the whole notebook in their own kernel (nbgrader):
    fails when ``fn`` names the course's own implementation of ``exercise``. A best effort (it reads names, so an
    answer can hide what it calls); ``python -m helpers.assignments grade`` does not rely on it, since there the
    implementation is absent where the answers run."""
    delegated = sorted(set(_course_objects(fn)) & set(EXERCISES[exercise][1]))
    if delegated:
        raise CheckFailed(f"{exercise} delegates to {delegated[0]}, the course's own implementation of this "
                          "exercise: write it yourself.")


if __name__ == "__main__":
    serve()
