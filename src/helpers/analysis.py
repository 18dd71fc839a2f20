"""Where a network's parameters, multiply-adds and activation memory live, layer by layer.

``layer_table(model)`` runs one image through the model and records, for every leaf layer call (layers inside
nested models and composite layers included, in execution order): its output shape, its parameters, its
multiply-adds and the bytes of its output. Multiply-adds are counted the way the papers count them: only
convolutions and fully connected layers do multiply-adds, a convolution
kh·kw·(C_in/groups)·C_out·H_out·W_out of them (depthwise: kh·kw·C_in·multiplier·H_out·W_out), a dense layer
in·out per position. Biases, activations, pooling, normalisation and element-wise additions are counted as 0:
they are a small fraction and the papers' figures leave them out too.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

BYTES_PER_VALUE = 4  # float32


@dataclasses.dataclass
class LayerRow:
    name: str            # "outer/inner" for layers inside nested models or composite layers
    kind: str            # the layer's class name
    output_shape: tuple  # without the batch axis
    params: int          # counted once, at a layer's first call
    macs: int            # multiply-adds for one image
    activation_bytes: int  # float32 output of one image


@dataclasses.dataclass
class LayerTable:
    rows: list[LayerRow]
    unassigned_params: int  # weights of composite layers that belong to none of their sub-layers

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows) + self.unassigned_params

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows)

    def by_kind(self) -> dict[str, dict[str, int]]:
        """Parameters, multiply-adds and activation bytes summed per layer class."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            entry = out.setdefault(r.kind, {"params": 0, "macs": 0, "activation_bytes": 0})
            entry["params"] += r.params
            entry["macs"] += r.macs
            entry["activation_bytes"] += r.activation_bytes
        return out

    def __str__(self) -> str:
        return format_table(self)


def _sublayers(layer) -> list:
    return [sub for sub in layer._flatten_layers(include_self=False, recursive=False)]


def _leaves(layer, prefix=""):
    """(path, layer) for every layer without sub-layers, depth first; composite layers are walked into."""
    for sub in _sublayers(layer):
        path = f"{prefix}{sub.name}"
        if _sublayers(sub):
            yield from _leaves(sub, prefix=f"{path}/")
        else:
            yield path, sub


def multiply_adds(layer, input_shape: tuple, output_shape: tuple) -> int:
    """Multiply-adds of one call of ``layer`` for one image (shapes without the batch axis)."""
    import keras

    spatial_out = math.prod(output_shape[:-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D | keras.layers.DepthwiseConv1D):
        return math.prod(layer.kernel.shape) * spatial_out  # (kh, kw, C_in, multiplier)
    if isinstance(layer, keras.layers.SeparableConv2D | keras.layers.SeparableConv1D):
        return (math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)) * spatial_out
    if isinstance(layer, keras.layers.Conv2DTranspose | keras.layers.Conv1DTranspose | keras.layers.Conv3DTranspose):
        # Every input position is multiplied by the whole kernel (kh, kw, C_out, C_in).
        return math.prod(layer.kernel.shape) * math.prod(input_shape[:-1])
    from helpers.layers import SparseConv2D

    if isinstance(layer, SparseConv2D):
        return math.prod(layer.kernel.shape) * spatial_out  # kernel (kh, kw, connected map pairs)
    if isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D):
        # kernel (kh, kw, C_in/groups, C_out): exactly the multiply-adds of one output position
        return math.prod(layer.kernel.shape) * spatial_out
    if isinstance(layer, keras.layers.Dense):
        return math.prod(layer.kernel.shape) * spatial_out  # kernel (in, out), applied at every leading position
    return 0


def layer_table(model, input_shape: tuple | None = None) -> LayerTable:
    """The per-layer table of ``model`` for one image of ``input_shape`` (default: the model's own input)."""
    if input_shape is None:
        input_shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in input_shape):
        raise ValueError(f"give a concrete input_shape; the model's input is {tuple(model.inputs[0].shape)}.")

    leaves = list(_leaves(model))
    rows: list[LayerRow] = []
    counted: set[int] = set()

    def recording(path, layer, call):
        def wrapped(*args, **kwargs):
            outputs = call(*args, **kwargs)
            first = args[0] if args else next(iter(kwargs.values()))
            in_shape = tuple(np.shape(first[0] if isinstance(first, (list, tuple)) else first)[1:])
            out_shape = tuple(np.shape(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)[1:])
            params = 0 if id(layer) in counted else layer.count_params()
            counted.add(id(layer))
            rows.append(LayerRow(path, type(layer).__name__, out_shape, params,
                                 multiply_adds(layer, in_shape, out_shape),
                                 math.prod(out_shape) * BYTES_PER_VALUE))
            return outputs
        return wrapped

    # Keras calls ``layer.call`` through the instance, so an instance attribute records every call.
    for path, layer in leaves:
        layer.call = recording(path, layer, layer.call)
    try:
        model(np.zeros((1, *input_shape), np.float32), training=False)
    finally:
        for _, layer in leaves:
            del layer.call
    unassigned = model.count_params() - sum(r.params for r in rows)
    return LayerTable(rows, unassigned)


def _shape(shape: tuple) -> str:
    return "×".join(str(d) for d in shape)


def format_table(table: LayerTable, skip_empty: bool = False) -> str:
    """A fixed-width text table with totals; ``skip_empty`` hides rows without parameters or multiply-adds."""
    header = f"{'layer':28s} {'type':22s} {'output':>14s} {'params':>13s} {'mult-adds':>16s} {'activations':>12s}"
    lines = [header, "-" * len(header)]
    for r in table.rows:
        if skip_empty and not (r.params or r.macs):
            continue
        lines.append(f"{r.name[:28]:28s} {r.kind[:22]:22s} {_shape(r.output_shape):>14s} {r.params:>13,} "
                     f"{r.macs:>16,} {human_bytes(r.activation_bytes):>12s}")
    lines.append("-" * len(header))
    if table.unassigned_params:
        lines.append(f"{'(weights of composite layers)':28s} {'':22s} {'':>14s} {table.unassigned_params:>13,}")
    lines.append(f"{'total':28s} {'':22s} {'':>14s} {table.params:>13,} {table.macs:>16,} "
                 f"{human_bytes(table.activation_bytes):>12s}")
    lines.append(f"= {table.params / 1e6:.2f} M parameters, {table.macs / 1e9:.3f} G multiply-adds, "
                 f"{human_bytes(table.activation_bytes)} of activations per image (float32, forward pass)")
    return "\n".join(lines)


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
