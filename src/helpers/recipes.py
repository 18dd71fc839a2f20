"""How the course trains: its learning-rate schedules and the papers' weight decay, and on CIFAR-10 He et al.'s
recipe (§4.2) and a short one that fits a laptop CPU.

Both use the paper's SGD with momentum 0.9, batch 128, weight decay on the kernels and the 4-pixel
pad-crop-flip augmentation (``helpers.data.cifar10``); they differ only in the learning-rate schedule (and, in
the short recipe, Nesterov momentum, a larger decay and label smoothing), so that a short run still ends on a
settled model.
"""

from __future__ import annotations

import dataclasses
import math

import keras

from helpers import training
from helpers.measure import StepTimer


def cosine_schedule(peak: float, *, steps: int, warmup_steps: int = 0):
    """The course's one cosine: a linear warm-up from 0 over ``warmup_steps`` (none by default), then a cosine from
    ``peak`` to zero at step ``steps`` (Keras's ``CosineDecay``)."""
    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=steps - warmup_steps, warmup_target=peak,
                                                      warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(peak, decay_steps=steps)


def cosine_decay(learning_rate: float, *, epochs: int, train_count: int, batch_size: int):
    """A learning rate that falls along a cosine to zero over the whole run.

    It is the smooth version of the papers' "divide by 10 when progress stalls": the last epochs settle
    instead of bouncing by several points, so the final model, the one a notebook reports, is a settled one.
    """
    if min(epochs, train_count, batch_size) < 1:
        raise ValueError(f"epochs, train_count and batch_size must be at least 1, not {epochs}, {train_count}, "
                         f"{batch_size}.")
    return cosine_schedule(learning_rate, steps=epochs * training.steps_per_epoch(train_count, batch_size))


def l2_weight_decay(model, rate: float) -> int:
    """The papers' weight decay: add ``rate`` · w to the gradient of every convolution and dense kernel.

    It is the L2 penalty rate/2 · Σ w² in the loss, as Caffe and Torch apply ``weightDecay`` (He et al. 2015:
    1e-4; Krizhevsky et al. 2012: 5e-4). Keras optimizers' own ``weight_decay`` is the decoupled kind (AdamW),
    which shrinks the weights outside the momentum and so is not the same number. Biases and batch-norm
    parameters are not decayed. Returns how many kernels were decayed.
    """
    if rate < 0:
        raise ValueError(f"the weight decay rate must be at least 0, not {rate}.")
    def kernels_of(layer):
        if hasattr(layer, "layers"):  # a nested model
            return [k for inner in layer.layers for k in kernels_of(inner)]
        kernel = getattr(layer, "kernel", None)
        return [kernel] if kernel is not None and layer.trainable else []

    kernels = kernels_of(model)
    for kernel in kernels:
        kernel.regularizer = keras.regularizers.L2(rate / 2) if rate else None
    return len(kernels)


@keras.saving.register_keras_serializable(package="helpers")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Szegedy et al. 2016, Inception-v3).

    The target is 1 − ε on the true class and ε / K spread over all K classes. Keras's sparse cross-entropy
    has no ``label_smoothing``; this keeps integer labels everywhere (metrics, evaluation) instead of one-hot.
    """

    def __init__(self, label_smoothing=0.1, name="sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        labels = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), classes)
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One CIFAR-10 training recipe: SGD with momentum and one of two learning-rate schedules."""

    name: str
    schedule: str  # "steps": ÷10 at 50 % and 75 % of the run (the paper's 32k and 48k of 64k iterations);
    #                "warmup_cosine": linear warm-up, then a cosine to zero
    learning_rate: float
    weight_decay: float
    momentum: float = 0.9
    nesterov: bool = False
    label_smoothing: float = 0.0
    warmup_epochs: float = 0.0
    warmup_fraction: float = 0.05  # the warm-up's share of a run on the clock (``ClockSchedule``), which has no epochs

    def learning_rate_schedule(self, *, epochs: int, steps_per_epoch: int):
        steps = epochs * steps_per_epoch
        if self.schedule == "steps":
            return keras.optimizers.schedules.PiecewiseConstantDecay(
                [steps // 2, 3 * steps // 4], [self.learning_rate, self.learning_rate / 10, self.learning_rate / 100])
        warmup = min(int(self.warmup_epochs * steps_per_epoch), steps - 1)
        return cosine_schedule(self.learning_rate, steps=steps, warmup_steps=warmup)

    def rate_at(self, fraction: float) -> float:
        """The learning rate after ``fraction`` (0 to 1) of a run: the same shapes as the step schedules."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.schedule == "steps":
            return self.learning_rate * (1 if fraction < 0.5 else 0.1 if fraction < 0.75 else 0.01)
        if fraction < self.warmup_fraction:
            return self.learning_rate * fraction / self.warmup_fraction
        progress = (fraction - self.warmup_fraction) / (1 - self.warmup_fraction)
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))

    def compile(self, model, *, epochs: int | None = None, train_count: int | None = None,
                batch_size: int | None = None, on_the_clock: bool = False):
        """Weight decay on ``model``'s kernels, then ``model.compile`` with this recipe's optimizer and loss.

        The learning rate follows the schedule over ``epochs`` epochs of ``train_count`` images; with
        ``on_the_clock=True`` it is left to a ``ClockSchedule`` callback instead (a run with a time budget).
        """
        if on_the_clock:
            schedule = 0.0  # a variable the callback sets before every step
        elif None in (epochs, train_count, batch_size) or min(epochs, train_count, batch_size) < 1:
            raise ValueError(f"epochs, train_count and batch_size must be at least 1, not {epochs}, "
                             f"{train_count}, {batch_size} (or pass on_the_clock=True).")
        else:
            schedule = self.learning_rate_schedule(epochs=epochs, steps_per_epoch=training.steps_per_epoch(train_count, batch_size))
        l2_weight_decay(model, self.weight_decay)
        loss = (SparseSmoothedCrossentropy(self.label_smoothing) if self.label_smoothing
                else keras.losses.SparseCategoricalCrossentropy())
        model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=self.momentum, nesterov=self.nesterov),
                      loss=loss, metrics=["accuracy"])
        return model


class ClockSchedule(StepTimer):
    """Train for ``seconds`` of training steps, the learning rate following ``recipe``'s shape over that time.

    For comparing networks at equal cost: each gets the same minutes, and its schedule (warm-up, cosine, …)
    is stretched over them as it would be over epochs. The clock is the step timer's (``seconds`` holds every
    step's): it counts the time inside training steps only, from the end of the first step (which also traces
    the graph), so validation, checkpoints and tracing are left out. The run stops after the step that uses up
    the time; ``fit``'s ``epochs`` is only an upper bound. The model must be compiled with
    ``recipe.compile(model, on_the_clock=True)``.
    """

    def __init__(self, recipe: Recipe, seconds: float):
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, not {seconds!r}.")
        self.recipe, self.budget = recipe, float(seconds)
        self.used = 0.0  # seconds of training steps so far, the first (tracing) step left out

    @property
    def steps(self) -> int:
        return len(self.seconds)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.recipe.rate_at(self.used / self.budget)
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if len(self.seconds) > 1:  # a running total: summing the list every step would grow with the run
            self.used += self.seconds[-1]
        if self.used >= self.budget:
            self.model.stop_training = True


# He et al. 2015, §4.2: lr 0.1, ÷10 at 32k and 48k iterations, stop at 64k; weight decay 1e-4; momentum 0.9.
PAPER = Recipe("paper", schedule="steps", learning_rate=0.1, weight_decay=1e-4)
# A short schedule: the whole run at a high rate falling smoothly to zero (the idea of "super-convergence",
# Smith & Topin 2018), Nesterov momentum, 5e-4 decay and label smoothing 0.1, as in the fast CIFAR-10 schedules.
SHORT = Recipe("short", schedule="warmup_cosine", learning_rate=0.2, weight_decay=5e-4, nesterov=True,
               label_smoothing=0.1, warmup_epochs=1.0)
