"""What this process computes on: a TPU, a GPU or the CPU, from TensorFlow's devices and the local signs of a TPU."""

from __future__ import annotations

import os
from pathlib import Path


def tpu_address() -> str | None:
    """Where a TPU is by Colab's and Cloud's conventions, or None; looks only at local signs, never the network."""
    if os.environ.get("COLAB_TPU_ADDR"):  # Colab's older TPU-node runtime
        return "grpc://" + os.environ["COLAB_TPU_ADDR"]
    if os.environ.get("TPU_NAME"):
        return os.environ["TPU_NAME"]
    if Path("/dev/accel0").exists() or Path("/dev/vfio/0").exists():  # a TPU VM (Colab's TPU runtime)
        return "local"  # the chips are attached to this machine
    return None


def accelerator() -> str:
    """"tpu", "gpu" or "cpu": what this process will compute on."""
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "tpu"
    if tf.config.list_physical_devices("GPU"):
        return "gpu"
    return "tpu" if tpu_address() is not None else "cpu"
