"""This CPU: its model and feature flags, the oneDNN choice made before TensorFlow loads, and the line that every
benchmark prints about it.

TensorFlow's x86 builds carry two sets of CPU kernels: Eigen's and oneDNN's. TensorFlow turns oneDNN on by default
only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; on the many laptop and cloud CPUs with AVX2 alone it
stays off, and the course's networks train about half as fast there (``benchmarks/onednn.py``, batch 128: on a
2-core AVX2-only AMD EPYC, ResNet-20 162 img/s off, 322 on; ResNet-56 59 vs 102. On a 2-core AVX-512 AMD EPYC with
oneDNN forced off, 230 vs 539 and 81 vs 188; one inter-op thread instead of two changed nothing there). So on x86-64, where the learner has not set ``TF_ENABLE_ONEDNN_OPTS``, the course sets it
to 1 before TensorFlow is imported, and says so in one line where that changes TensorFlow's own default. An
explicit ``TF_ENABLE_ONEDNN_OPTS`` (0 or 1) always wins.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
# With any of these TensorFlow turns oneDNN on by itself (Linux /proc/cpuinfo names).
ONEDNN_DEFAULT_FLAGS = frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"})
# What the header reports: the vector and matrix extensions that decide which kernels run.
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16",
                  "asimd", "sve", "bf16")

_notice_shown = False


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux reports them; empty where /proc/cpuinfo does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / Arm
            return frozenset(value.split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's name as the operating system gives it (``platform.processor()`` where Linux does not)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def choose_onednn(flags: frozenset[str] | None = None, *, x86: bool | None = None) -> str | None:
    """Turn oneDNN on for this process where TensorFlow would leave it off; the notice to show, or None.

    Does nothing once TensorFlow is loaded (the setting is read at import), where the learner set
    ``TF_ENABLE_ONEDNN_OPTS``, or off x86-64 (Arm builds make their own choice, unmeasured here).
    """
    if "tensorflow" in sys.modules or os.environ.get(ONEDNN_ENV, "").strip():
        return None
    if not (_is_x86() if x86 is None else x86):
        return None
    os.environ[ONEDNN_ENV] = "1"
    flags = cpu_flags() if flags is None else flags
    if flags & ONEDNN_DEFAULT_FLAGS:
        return None  # TensorFlow's own default on this CPU: nothing changed, nothing to say
    return (f"oneDNN turned on (TensorFlow leaves it off on CPUs without AVX512_VNNI or AMX; the course's ResNets "
            f"trained 1.7-2.0x faster with it on such a CPU): set {ONEDNN_ENV}=0 before starting Jupyter to turn it off.")


def announce_onednn_choice() -> None:
    """``choose_onednn`` and, once per process, its notice."""
    global _notice_shown
    notice = choose_onednn()
    if notice and not _notice_shown:
        _notice_shown = True
        print(notice)


def onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs oneDNN's kernels; None if TensorFlow cannot say."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def header() -> str:
    """One line for a benchmark's output: CPU model, its flags that matter, oneDNN's state, thread counts."""
    import tensorflow as tf

    flags = cpu_flags()
    shown = [f for f in REPORTED_FLAGS if f in flags] or ["(no flags read)"]
    state = {True: "on", False: "off", None: "unknown"}[onednn_enabled()]
    setting = os.environ.get(ONEDNN_ENV)
    intra = tf.config.threading.get_intra_op_parallelism_threads() or os.environ.get("TF_NUM_INTRAOP_THREADS")
    inter = tf.config.threading.get_inter_op_parallelism_threads() or os.environ.get("TF_NUM_INTEROP_THREADS")
    return (f"CPU: {cpu_model()} ({platform.machine()}), {os.cpu_count()} logical cores; flags: {' '.join(shown)}; "
            f"oneDNN {state} ({ONEDNN_ENV}={setting if setting is not None else 'unset'}); "
            f"TensorFlow {tf.__version__} threads: intra-op {intra or 'default'}, inter-op {inter or 'default'} "
            f"(default = one per core)")
