"""TensorFlow's start-up log, kept out of the notebooks.

Importing TensorFlow writes a wall of C++ log lines to standard error (absl's "All log messages before
absl::InitializeLog() …", oneDNN's notice, "Could not find cuda drivers …", the CPU-feature banner) and, on a
machine without a GPU, an alarming "failed call to cuInit" error when the devices are first listed. None of
them concerns a learner, and TF_CPP_MIN_LOG_LEVEL does not stop all of them, because C++ writes them straight to
the process's standard error. ``import_quietly`` imports TensorFlow and lists its devices with that file
descriptor pointed at /dev/null for that moment only, and sets TF_CPP_MIN_LOG_LEVEL=2 (unless set), so later C++
INFO and WARNING lines are dropped too; C++ errors and all of Python's warnings and errors (written to
``sys.stderr``, which a notebook kernel redirects) are shown as usual. ``CNN_TF_LOGS=1`` keeps the whole log.

One Python warning is dropped too: "5 out of the last 13 calls to <function TensorFlowTrainer.…>
triggered tf.function retracing". Keras makes a new training, test and predict function for every model, and
TensorFlow counts the traces of all of them together, so a notebook that trains several networks one after the
other (06's race, 07's four ways) is told it retraces, in a paragraph of advice that does not apply. The same
warning about a learner's own ``tf.function`` still shows.
"""

from __future__ import annotations

import logging
import os
import sys

SHOW_ENV = "CNN_TF_LOGS"


class _KerasPerModelFunctions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "<function TensorFlowTrainer." in message)


def import_quietly() -> None:
    """Import TensorFlow (and let it find its devices) without its C++ start-up log; a no-op once it is loaded."""
    if "tensorflow" in sys.modules or os.environ.get(SHOW_ENV, "").strip().lower() in ("1", "true", "yes"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING lines after start-up, too
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()  # where "failed call to cuInit" is printed on a machine without a GPU
        tf.get_logger().addFilter(_KerasPerModelFunctions())
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
