"""How large the gradient reaching each layer is: per-kernel gradient norms on a batch, and a log of them in training.

He et al. 2015 (§4.1) argue that their deep plain nets are hard to optimise *not* because gradients vanish: the
nets have batch normalisation, and "the backward propagated gradients exhibit healthy norms". ``gradient_norms``
is the measurement behind such a sentence: the L2 norm of ∂loss/∂W for every convolution and dense kernel W, in
the order the layers run, on one batch of real images. ``GradientNormLog`` takes it at chosen training steps.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def kernels(model) -> list:
    """The trainable convolution and dense kernels of ``model`` (nested models included), in layer order."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and layer.trainable and not layer._flatten_layers(include_self=False, recursive=False):
            found.append(kernel)
    return found


def gradient_norms(model, images, labels, loss=None) -> dict[str, float]:
    """The L2 norm of the loss's gradient with respect to each trainable kernel, on one batch.

    The forward pass runs in training mode (batch norm uses the batch's statistics, as in a training step), but
    leaves the model as it was: the moving statistics it updates are put back. ``loss`` defaults to the model's
    compiled loss, else sparse categorical cross-entropy on its (softmax) outputs; weight decay is not included,
    so the norms are those of the data's gradient. Returns ``{kernel path: norm}`` from the first layer to the last.
    """
    loss = loss or getattr(model, "loss", None) or keras.losses.SparseCategoricalCrossentropy()
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    watched = kernels(model)
    if not watched:
        raise ValueError(f"{model.name} has no trainable convolution or dense kernels to measure.")
    saved = [v.numpy() for v in model.non_trainable_variables]
    try:
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(labels, model(images, training=True)))  # a loss function gives one a sample
        grads = tape.gradient(value, watched)
    finally:
        for variable, old in zip(model.non_trainable_variables, saved):
            variable.assign(old)
    return {kernel.path: float(np.sqrt(np.sum(np.square(g.numpy())))) for kernel, g in zip(watched, grads)}


class GradientNormLog(keras.callbacks.Callback):
    """Keras callback: ``gradient_norms`` on one fixed batch before the first step and after the steps in ``at``.

    ``records`` maps a step count (0 = at initialisation) to that step's ``{kernel path: norm}``. Measuring costs
    one eager forward and backward pass on the batch, and changes nothing in the training run.
    """

    def __init__(self, images, labels, at=(1, 10, 100)):
        super().__init__()
        self.images, self.labels, self.at = images, labels, set(at)
        self.records: dict[int, dict[str, float]] = {}
        self._step = 0

    def _record(self):
        self.records[self._step] = gradient_norms(self.model, self.images, self.labels)

    def on_train_begin(self, logs=None):
        self._step = 0
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step in self.at:
            self._record()

    def on_train_end(self, logs=None):
        if self._step not in self.records:
            self._record()  # the last step, whatever ``at`` holds


def summary(logs: dict) -> str:
    """A text table: for each network's ``GradientNormLog`` and each recorded step, the gradient norm at the
    first kernel (the stem), the median over all kernels and at the last (the classifier), and first ÷ last."""
    header = f"{'net':10s} {'step':>5s} {'first layer':>12s} {'median':>10s} {'last layer':>11s} {'first/last':>11s}"
    lines = [header, "-" * len(header)]
    for name, log in logs.items():
        for step, norms in sorted(log.records.items()):
            values = list(norms.values())
            lines.append(f"{name:10s} {step:>5d} {values[0]:>12.3g} {np.median(values):>10.3g} {values[-1]:>11.3g} "
                         f"{values[0] / values[-1]:>11.3g}")
    return "\n".join(lines)


def plot(logs: dict, title: str = "gradient norm per layer"):
    """One panel per network: ‖∂loss/∂W‖ for every kernel from the first layer to the last, one line per step."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(logs), figsize=(5.5 * len(logs), 3.8), sharey=True, squeeze=False)
    for ax, (name, log) in zip(axes[0], logs.items()):
        for step, norms in sorted(log.records.items()):
            ax.semilogy(np.arange(1, len(norms) + 1), list(norms.values()), "o-", ms=2.5, lw=1,
                        label="at initialisation" if step == 0 else f"after {step} step{'s' if step > 1 else ''}")
        ax.set(xlabel="layer with weights (1 = first convolution)", title=name)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("‖∂loss/∂W‖ (L2)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
