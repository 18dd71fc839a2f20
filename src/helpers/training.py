"""One ``fit``-level entry used by every notebook, built on Keras's own compile/fit and callbacks.

A notebook trains in three steps::

    helpers.training.set_precision(MIXED_PRECISION)  # optional, before building: False, True or a policy name
    with helpers.training.strategy().scope():        # TPU on Colab, MirroredStrategy on several GPUs, else default
        model = helpers.models.build("lenet5", input_shape=..., num_classes=10)
        model.compile(optimizer=..., loss=..., metrics=["accuracy"])
    history = helpers.training.fit(model, train_ds, validation=val_ds, epochs=cfg.epochs,
                                   batch_size=cfg.batch_size, run="lenet5")
    best = helpers.training.load_best(history)       # the best epoch's model, reloaded from its .keras file

- ``strategy(kind="auto")`` picks the distribution strategy once per process; ``kind`` may force "tpu",
  "mirrored" or "default". Variables must be created inside ``strategy().scope()``, which is why building
  and compiling sit in the ``with`` block; ``model.fit`` then uses that strategy by itself.
- ``set_precision(True)`` switches Keras to mixed precision: ``mixed_float16`` on a GPU, ``mixed_bfloat16``
  on a TPU or on a CPU with bfloat16 instructions (AVX512_BF16/AMX), float32 elsewhere. Layers then compute
  in 16 bits but keep float32 weights. The output layer must still compute in float32 (a 16-bit softmax
  loses small probabilities and the loss with them), so builders give it ``dtype="float32"``, e.g.
  ``Dense(num_classes, activation="softmax", dtype="float32")``: it changes nothing in a float32 run and
  adds no parameters. ``fit`` refuses a model whose outputs are not float32, with that fix in the message.
  The policy is global: ``set_precision(False)`` returns to float32 for models built afterwards.
- ``fit`` keeps everything about a run in ``<runs dir>/<run>/`` (``settings.runs_dir()``: ``build/runs``
  or ``CNN_RUNS_DIR``; ``run`` defaults to the model's name): ``backup/`` (BackupAndRestore: a run that was
  interrupted resumes at the epoch it stopped at when the same cells run again; on Colab, point
  ``CNN_RUNS_DIR`` at Google Drive so the backup outlives a lost session),
  ``best.keras`` (ModelCheckpoint of the best epoch by ``monitor``), ``log.csv`` (CSVLogger, one row an
  epoch), and ``tensorboard/`` when asked. Wall seconds and images/second are recorded by ``Timing``.
- A person watching gets Keras's progress bar; the runner, tests and CI (``settings.interactive()`` False)
  get one line an epoch (``verbose=2``).
- Before Keras's ``fit``, ``fit`` creates the optimizer's and metrics' variables (``build_training_state``),
  so the training step is traced once instead of twice: a new model's first short epoch ends ~1.4–1.5× sooner.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import importlib.util
import json
import shutil
import time
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from helpers import settings
from helpers.cpu import cpu_flags  # noqa: F401  (set_precision reads it; tests and benchmarks reach it here)
from helpers.devices import accelerator  # set_precision reads it; tests and benchmarks reach it here
from helpers.devices import tpu_address as _tpu_address

# ---------------------------------------------------------------------------------------------------------
# Distribution strategy


STRATEGY_KINDS = ("auto", "tpu", "mirrored", "default")
_strategies: dict[str, tf.distribute.Strategy] = {}


def _connect_tpu() -> tf.distribute.Strategy:
    address = _tpu_address()
    if address is None:
        raise RuntimeError("No TPU found: no COLAB_TPU_ADDR or TPU_NAME variable and no /dev/accel0. "
                           "On Colab choose Runtime > Change runtime type > TPU.")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver.connect(tpu=address)
    return tf.distribute.TPUStrategy(resolver)


def _mirrored() -> tf.distribute.Strategy:
    # Mirror over the GPUs, or over the CPU's logical devices when there are none (how the tests run it).
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """The distribution strategy to build, compile and train under; the same object on every call.

    ``"auto"``: a TPU when one is attached (Colab), MirroredStrategy when there are several GPUs, otherwise
    TensorFlow's default strategy (one device). ``"tpu"``, ``"mirrored"`` and ``"default"`` force a choice.
    """
    if kind not in STRATEGY_KINDS:
        raise ValueError(f"Unknown strategy {kind!r}; choose one of {', '.join(STRATEGY_KINDS)}.")
    if kind in _strategies:
        return _strategies[kind]
    if kind == "auto":
        chosen = None
        if _tpu_address() is not None:
            try:
                chosen = strategy("tpu")
            except Exception as error:  # a TPU that cannot be reached must not stop a CPU/GPU run
                print(f"A TPU seemed present but could not be initialised ({error}); not using it.")
        if chosen is None:
            chosen = strategy("mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default")
    elif kind == "tpu":
        chosen = _connect_tpu()
    elif kind == "mirrored":
        chosen = _mirrored()
    else:
        chosen = tf.distribute.get_strategy()
    _strategies[kind] = chosen
    if kind != "auto":
        print(f"Distribution: {type(chosen).__name__}, {chosen.num_replicas_in_sync} replica(s) in sync")
    return chosen


# ---------------------------------------------------------------------------------------------------------
# Mixed precision

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
# CPU feature flags (Linux /proc/cpuinfo) with which bfloat16 pays: x86 AMX tiles (oneDNN runs convolutions and
# matmuls on them). Not AVX512_BF16 alone: benchmarks/mixed_precision.py measured it 0.97× (slower) on such a CPU.
# Arm's BF16 is unmeasured here, so it keeps float32 too.
BF16_CPU_FLAGS = frozenset({"amx_bf16"})


def choose_policy(device: str, flags: frozenset[str] = frozenset()) -> str:
    """The mixed-precision policy worth using on ``device`` ("tpu", "gpu" or "cpu" with ``flags``).

    GPUs have fast float16 (with loss scaling, which Keras adds); TPUs and CPUs with AMX have fast bfloat16;
    any other CPU is fastest in plain float32, AVX512-BF16 ones included (measured: 0.97×, see BF16_CPU_FLAGS).
    """
    if device == "gpu":
        return "mixed_float16"
    if device == "tpu" or (device == "cpu" and flags & BF16_CPU_FLAGS):
        return "mixed_bfloat16"
    if device == "cpu":
        return "float32"
    raise ValueError(f"Unknown device {device!r}; expected 'tpu', 'gpu' or 'cpu'.")


def set_precision(mixed: bool | str = False) -> str:
    """Set Keras's global dtype policy for models built from now on; returns the policy's name.

    ``False`` or ``"float32"``: full precision. ``True`` or ``"auto"``: the mixed policy this machine is fast
    with (``choose_policy``). ``"mixed_float16"`` / ``"mixed_bfloat16"``: that policy. Call it before
    building the model: layers take the policy when they are created.
    """
    if mixed is False or mixed == "float32":
        policy = "float32"
    elif mixed is True or mixed == "auto":
        device = accelerator()
        policy = choose_policy(device, cpu_flags() if device == "cpu" else frozenset())
    elif mixed in MIXED_POLICIES:
        policy = mixed
    else:
        raise ValueError(f"Unknown precision {mixed!r}; use False, True, 'auto', 'float32', "
                         f"'mixed_float16' or 'mixed_bfloat16'.")
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def check_float32_outputs(model) -> None:
    """Raise a clear error when a mixed-precision model's outputs (its softmax) are not computed in float32."""
    for output in getattr(model, "outputs", None) or []:
        dtype = keras.backend.standardize_dtype(output.dtype)
        if dtype != "float32":
            raise ValueError(
                f"Model {model.name!r} outputs {dtype} under the {keras.mixed_precision.dtype_policy().name} "
                "policy; its output layer must compute in float32 for a stable softmax and loss. Build that "
                "layer with dtype='float32', e.g. Dense(num_classes, activation='softmax', dtype='float32').")


# ---------------------------------------------------------------------------------------------------------
# Callbacks and runs


class Timing(keras.callbacks.Callback):
    """Times each epoch: ``epoch_seconds`` (all of it) and training ``images_per_second``, per epoch in ``rows``.

    Images per second count the training steps only, from the end of the epoch's first call into the graph
    (which, in the first epoch, also traces it) to the end of its last but one (the last may be a short batch,
    or with ``steps_per_execution`` a short run of batches, which Keras reports as full): validation and
    checkpointing are left out. An epoch with only two calls is timed to its end; one with a single call gets
    no figure. Keras calls back with the index of each call's last step, so steps are counted from that index,
    not from the calls.
    The figures stay out of Keras's progress line (where they would wrap it); ``fit`` adds them to the history
    and the CSV log afterwards and prints them once.
    """

    clock = staticmethod(time.perf_counter)

    def __init__(self, batch_size: int | None = None):
        super().__init__()
        self.batch_size = batch_size
        self.rows: dict[int, dict[str, float]] = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._ends = self.clock(), []

    def on_train_batch_end(self, batch, logs=None):
        self._ends.append((batch + 1, self.clock()))  # (steps done in this epoch, when)

    def on_epoch_end(self, epoch, logs=None):
        row = self.rows[epoch] = {"epoch_seconds": self.clock() - self._start}
        if self.batch_size and len(self._ends) > 1:
            last = self._ends[-2] if len(self._ends) > 2 else self._ends[-1]
            (first_steps, first_end), (last_steps, last_end) = self._ends[0], last
            row["images_per_second"] = (last_steps - first_steps) * self.batch_size / (last_end - first_end)

    def add_to(self, history, log_path: Path, verbose) -> None:
        """Put the timings into ``history.history`` and the CSV log's rows of these epochs; say them once."""
        for key in ("epoch_seconds", "images_per_second"):
            if any(key in row for row in self.rows.values()):
                history.history[key] = [self.rows.get(e, {}).get(key, float("nan")) for e in history.epoch]
        rows = _read_log(log_path)
        for row in rows:
            row.update({key: f"{value:.4f}" for key, value in self.rows.get(int(row["epoch"]), {}).items()})
        _write_log(log_path, rows)
        speeds = sorted(row["images_per_second"] for row in self.rows.values() if "images_per_second" in row)
        if verbose and self.rows:
            speed = f"; training {speeds[len(speeds) // 2]:,.0f} images/s (median epoch)" if speeds else ""
            print(f"{len(self.rows)} epoch(s) in {sum(r['epoch_seconds'] for r in self.rows.values()):.1f} s{speed}")


def steps_per_epoch(train_count: int, batch_size: int) -> int:
    """Training steps in one pass over ``train_count`` images: a last, smaller batch is a step too."""
    return -(-train_count // batch_size)


def default_verbose() -> int:
    """Keras's progress bar (1) when a person watches, one line an epoch (2) under the runner, tests and CI."""
    return 1 if settings.interactive() else 2


def run_dir(run: str) -> Path:
    """The folder a run named ``run`` keeps its backup, best model and logs in."""
    if not run or Path(run).name != run or run in (".", ".."):
        raise ValueError(f"A run name must be a plain folder name such as 'lenet5', not {run!r}.")
    return settings.runs_dir() / run


def _fingerprint(model, batch_size=None, config=None) -> dict:
    """What a backup must match to be resumed: the network (layer types and weight shapes; names vary between
    sessions), its input size, the optimizer with its learning-rate schedule, the loss, the batch size and the
    run's configuration (e.g. the notebook's ``RunConfig``). Each part is kept readable, to say what differs."""
    layout = [[type(layer).__name__, [[list(w.shape), str(w.dtype)] for w in layer.weights]]
              for layer in model.layers]
    def without_names(config):  # Keras numbers optimizers per session (sgd, sgd_1, …), even nested ones
        if isinstance(config, dict):
            return {k: without_names(v) for k, v in config.items() if k != "name"}
        return [without_names(v) for v in config] if isinstance(config, (list, tuple)) else config

    optimizer = None
    if model.optimizer is not None:  # its config holds the schedule (and so the epochs and steps it spans)
        optimizer = {"class": type(model.optimizer).__name__, **without_names(model.optimizer.get_config())}
    loss = getattr(model, "loss", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    parts = {"network": hashlib.sha256(json.dumps(layout).encode()).hexdigest(),
             "input size": model.input_shape, "optimizer and schedule": optimizer,
             "loss": loss if isinstance(loss, (str, type(None))) else
             [type(loss).__name__, loss.get_config() if hasattr(loss, "get_config") else None],
             "batch size": batch_size, "run configuration": config}
    return json.loads(json.dumps(parts, sort_keys=True, default=str))  # the form it has once read back


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _write_log(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.unlink(missing_ok=True)
        return
    fields = list(dict.fromkeys(key for row in rows for key in row))  # every column, in order of appearance
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _differences(stamp: Path, fingerprint: dict) -> list[str]:
    """The parts of ``fingerprint`` that the backup's stamp does not match (all of them if it cannot be read)."""
    try:
        saved = json.loads(stamp.read_text())
    except (OSError, ValueError):
        saved = {}
    if not isinstance(saved, dict):
        saved = {}
    return [part for part, value in fingerprint.items() if saved.get(part, object()) != value]


def _prepare_run(folder: Path, model, resume: bool, epochs: int, batch_size=None, config=None) -> int:
    """Keep a matching backup and the log rows before it, or clear the folder; returns the epoch to start at."""
    backup, log = folder / "backup", folder / "log.csv"
    fingerprint = _fingerprint(model, batch_size, config)
    start = 0
    if backup.is_dir():
        stamp, meta = backup / "model.fingerprint", backup / "training_metadata.json"
        differences = _differences(stamp, fingerprint)
        matches = not differences
        saved = int(json.loads(meta.read_text())["epoch"]) if meta.is_file() else 0
        if resume and matches and 0 < saved < epochs:
            start = saved
        else:
            if resume and matches and saved >= epochs:
                print(f"The backup in {backup} is already at epoch {saved}, past this run's {epochs}; starting afresh.")
            if resume and not matches:
                print(f"The backup in {backup} belongs to a different run (it differs in: "
                      f"{', '.join(differences)}); starting afresh.")
            shutil.rmtree(backup)
    if start == 0:  # a fresh run: last run's best model and log would be mistaken for this one's
        (folder / "best.keras").unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        shutil.rmtree(folder / "tensorboard", ignore_errors=True)
    else:  # drop rows of the epoch that was cut short, so each epoch is logged once
        _write_log(log, [row for row in _read_log(log) if int(row["epoch"]) < start])
    backup.mkdir(parents=True, exist_ok=True)
    (backup / "model.fingerprint").write_text(json.dumps(fingerprint, sort_keys=True))
    return start


def monitor_mode(monitor: str) -> str:
    """"max" for scores (accuracy, AUC, precision, recall), "min" for losses and errors."""
    return "max" if any(word in monitor for word in ("acc", "auc", "precision", "recall")) else "min"


def _best_so_far(rows: list[dict], monitor: str) -> float | None:
    values = [float(row[monitor]) for row in rows if row.get(monitor) not in (None, "", "nan")]
    if not values:
        return None
    return max(values) if monitor_mode(monitor) == "max" else min(values)


@contextlib.contextmanager
def without_false_end_of_data_warning():
    """Keras 3.15 warns "Your input ran out of data" at the end of the first epoch of every dataset of unknown
    length (ours, after ignore_errors) although no steps_per_epoch was set: nothing ran out. Fixed upstream
    (keras-team/keras#23360). With steps_per_epoch the dataset repeats, so nothing can."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        yield


def without_autotune_thread(dataset):
    """``dataset`` with tf.data's autotuning thread turned off, so that ending an epoch never waits for it.

    Keras makes a new iterator of the training (and validation) dataset every epoch and drops the last one. An
    autotuned pipeline has a background thread that re-optimises it at growing intervals, up to a minute, and
    dropping the iterator waits for that thread: measured here, the process sat idle 10–50 s at the start of
    some epochs (benchmarks/iterator_teardown.py). Without it, ``AUTOTUNE`` parallelism and prefetching take
    tf.data's static defaults, which keep the course's pipelines ahead of the CPU training step.
    Anything that is not a ``tf.data.Dataset`` is returned as it is.
    """
    if not isinstance(dataset, tf.data.Dataset):
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def build_training_state(model, train) -> None:
    """Create the optimizer's slots and the metrics' totals before Keras traces the first training step.

    Without a distribution strategy, Keras 3 (TensorFlow backend) creates them while tracing the first
    step, and a ``tf.function`` that creates variables on its first call is traced a second time
    (tensorflow/tensorflow#48851): the start-up of the first epoch, most of a short run, doubles
    (``benchmarks/first_epoch.py``). Under a strategy Keras builds them up front itself, with the
    trainer's ``_symbolic_build`` from shapes alone; this calls it for the default strategy too.
    ``train`` is what ``fit`` gets: a ``tf.data.Dataset`` (its ``element_spec`` is used, nothing is read)
    or an ``(x, y)`` pair of arrays; anything else is left to Keras.
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None:  # another Keras: it builds the state while tracing, as before
        return
    if isinstance(train, tuple):
        batch = keras.tree.map_structure(lambda a: a[:1], train)
    else:
        batch = getattr(train, "element_spec", None)
        if batch is None:  # not a tf.data.Dataset: leave it to Keras, which builds while tracing
            return
    with model.distribute_strategy.scope():  # mirrored variables for a model built under a strategy
        symbolic_build(data_batch=batch)


def fit(model, train, *, validation=None, epochs: int, batch_size: int | None = None, callbacks=(),
        verbose=None, run: str | None = None, monitor: str | None = None, resume: bool = True,
        tensorboard: bool = False, steps_per_epoch: int | None = None, config=None):
    """``model.fit`` with resumable backups, a best-model checkpoint, a CSV log and timing.

    ``train`` is a batched ``tf.data.Dataset`` or an ``(x, y)`` pair of arrays, ``validation`` likewise;
    ``batch_size`` is the (global) batch size, used for images/second and to batch arrays.

    ``run`` names the run's folder (default: the model's name). ``monitor`` picks the best epoch
    (default ``val_loss`` with validation data, else ``loss``; see ``monitor_mode`` for its direction).
    ``resume=False`` discards a backup left by an interrupted run instead of continuing it.
    ``steps_per_epoch``: for a repeating dataset (``train.repeat()``), how many batches make an epoch.
    ``config``: the run's configuration (the notebook's ``RunConfig``, or a dict): a backup is resumed only by
    a run with the same configuration, network, input size, optimizer and schedule, loss and batch size.
    Returns Keras's History covering the whole run (epochs from before an interruption are read back from
    the CSV log), with ``wall_seconds`` (this call), ``initial_epoch`` (0, or where it resumed), ``run_dir``,
    ``best_model_path`` and ``log_path`` added.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}.")
    if steps_per_epoch is not None and (isinstance(train, tuple) or steps_per_epoch < 1):
        raise ValueError(f"steps_per_epoch={steps_per_epoch!r}: give a positive number, with a tf.data.Dataset.")
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"Model {model.name!r} is not compiled: call model.compile(...) before fit.")
    check_float32_outputs(model)
    if monitor is None:
        monitor = "val_loss" if validation is not None else "loss"
    elif monitor.startswith("val_") and validation is None:
        raise ValueError(f"monitor={monitor!r} needs validation data; pass validation= or monitor a "
                         "training metric.")
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ModuleNotFoundError("tensorboard=True needs the tensorboard package: pip install tensorboard")
    if verbose is None:
        verbose = default_verbose()

    folder = run_dir(run or model.name)
    initial_epoch = _prepare_run(folder, model, resume, epochs, batch_size, config)
    log_path, best_path = folder / "log.csv", folder / "best.keras"
    earlier = _read_log(log_path)
    if initial_epoch:
        print(f"Resuming run {folder.name!r} at epoch {initial_epoch + 1} of {epochs} "
              f"(backup in {folder / 'backup'}).")
    run_callbacks = [
        keras.callbacks.BackupAndRestore(str(folder / "backup")),  # deletes its folder once fit completes
        Timing(batch_size),  # its figures join the history and the CSV log after fit
        keras.callbacks.ModelCheckpoint(str(best_path), monitor=monitor, mode=monitor_mode(monitor),
                                        save_best_only=True,  # carrying the best value over a resumption:
                                        initial_value_threshold=_best_so_far(earlier, monitor)),
        keras.callbacks.CSVLogger(str(log_path), append=bool(initial_epoch)),
    ]
    if tensorboard:
        run_callbacks.append(keras.callbacks.TensorBoard(str(folder / "tensorboard")))

    start = time.perf_counter()
    train, validation = without_autotune_thread(train), without_autotune_thread(validation)
    build_training_state(model, train)  # part of this call's wall time: Keras would do it inside fit
    try:
        with without_false_end_of_data_warning():
            if isinstance(train, tuple):  # NumPy arrays (x, y): Keras batches them itself
                history = model.fit(*train, batch_size=batch_size, validation_data=validation, epochs=epochs,
                                    verbose=verbose, callbacks=[*run_callbacks, *callbacks])
            else:  # a batched tf.data.Dataset shuffles itself (shuffle=False only silences Keras's warning)
                history = model.fit(train, validation_data=validation, epochs=epochs, verbose=verbose,
                                    shuffle=False, steps_per_epoch=steps_per_epoch,
                                    callbacks=[*run_callbacks, *callbacks])
    finally:
        model._initial_epoch = None  # Keras leaves BackupAndRestore's start epoch set for the next fit call
    history.wall_seconds = time.perf_counter() - start
    run_callbacks[1].add_to(history, log_path, verbose)
    if earlier:  # put the epochs trained before the interruption back in front of this call's
        for key, values in history.history.items():
            before = [float(row[key]) if row.get(key) else float("nan") for row in earlier]
            history.history[key] = before + values
        history.epoch = [int(row["epoch"]) for row in earlier] + history.epoch
    history.initial_epoch = initial_epoch
    history.run_dir, history.best_model_path, history.log_path = folder, best_path, log_path
    return history


def load_best(history_or_path) -> keras.Model:
    """The best epoch's model, reloaded from its ``.keras`` file with ``safe_mode=True`` (no arbitrary code)."""
    import helpers.data.augment  # noqa: F401  register the course's custom layers so their models reload
    import helpers.layers  # noqa: F401

    path = Path(getattr(history_or_path, "best_model_path", history_or_path))
    if not path.is_file():
        raise FileNotFoundError(f"No saved best model at {path}: did the run finish at least one epoch?")
    return keras.saving.load_model(path, safe_mode=True)
