"""One fair race on CIFAR-10 (notebook 06): the five families at 32×32, trained alike, measured alike.

Every contender sees the same pipeline (``helpers.data.cifar10``: the same images, the same per-image
pad-crop-flip), trains with the same recipe (``helpers.recipes.SHORT``: SGD with Nesterov momentum, the same
schedule, weight decay and label-smoothed cross-entropy) and the same batch size, either for the same number of
epochs or for the same minutes of training steps (``helpers.recipes.ClockSchedule``), and is scored once, at
the end, on the test images (nothing is selected on them). What differs is the network, and batch
normalisation, which is stated per contender: everything since 2015 has it; LeNet-5 is shown as published.
"""

from __future__ import annotations

import dataclasses
import math

import keras

import helpers.analysis
import helpers.evaluation
import helpers.measure
import helpers.models
import helpers.training
from helpers.models._parts import scaled
from helpers.recipes import ClockSchedule, Recipe


@dataclasses.dataclass(frozen=True)
class Contender:
    label: str
    builder: str
    options: dict
    batch_norm: bool
    adaptation: str  # what differs from the paper's network, and why
    reference: str | None = None  # a published CIFAR-10 test accuracy of the same network, with its source
    scalable: bool = True  # takes ``width`` (LeNet-5 has fixed sizes)
    fc_units: int | None = None  # fully connected layers that ``width`` scales too (AlexNet's fc6/fc7)

    def build(self, *, num_classes: int = 10, width: float = 1.0) -> keras.Model:
        options = dict(self.options)
        if self.scalable and width != 1.0:
            options["width"] = width
            if self.fc_units:
                options["fc_units"] = scaled(self.fc_units, width)
        return helpers.models.build(self.builder, input_shape=(32, 32, 3), num_classes=num_classes, **options)


KUANGLIU = "kuangliu/pytorch-cifar, 350 epochs on a GPU"
CONTENDERS = (
    Contender("LeNet-5 (paper)", "lenet5", dict(variant="paper", output="softmax"), False,
              "none in the layers (32×32 is its own input size); 3 input channels; a softmax classifier instead of "
              "the RBF output, so that every network has the same loss", scalable=False),
    Contender("LeNet-5 (modern)", "lenet5", dict(variant="modern"), False,
              "ReLU, max-pooling, dense C3, softmax (notebook 01's modern variant); 3 input channels", scalable=False),
    Contender("AlexNet", "alexnet", dict(cifar=True, batch_norm=True), True,
              "conv1 3×3 stride 1 instead of 11×11 stride 4; BN after every conv instead of LRN; "
              "fc6/fc7 kept (4096)", fc_units=4096),
    Contender("VGG-16", "vgg16", dict(cifar=True, batch_norm=True), True,
              "BN after every conv (no conv biases); one fc layer (512 → 10) instead of fc6–fc8",
              reference=f"92.64 % ({KUANGLIU})"),
    Contender("GoogLeNet", "googlenet", dict(cifar=True, batch_norm=True), True,
              "the stem (7×7/2, pool, 1×1, 3×3, pool) becomes one 3×3 conv to 192 channels; BN after every conv "
              "instead of LRN; no auxiliary heads (the same loss for all)"),
    Contender("ResNet-18", "resnet18", dict(cifar=True), True,
              "the stem (7×7/2 conv + 3×3/2 max-pool) becomes one 3×3 stride-1 conv",
              reference=f"93.02 % ({KUANGLIU})"),
    Contender("ResNet-20", "resnet20", {}, True, "none: the paper's own CIFAR-10 network (§4.2)",
              reference="91.25 % (He et al. 2015, Table 6; 64k iterations)"),
    Contender("ResNet-56", "resnet56", {}, True, "none: the paper's own CIFAR-10 network (§4.2)",
              reference="93.03 % (He et al. 2015, Table 6; 64k iterations)"),
)


def train(contender: Contender, data, recipe: Recipe, *, batch_size: int, epochs: int | None = None,
          minutes: float | None = None, width: float = 1.0, run: str | None = None) -> dict:
    """Train ``contender`` on ``data`` (``helpers.data.cifar10``) and return its row of the race's table.

    Give either ``epochs`` (the same number for everyone) or ``minutes`` (the same time for everyone, counted
    over training steps; the learning rate follows ``recipe`` over those minutes). The row holds the trained
    model, its sizes, its training speed and time, and its accuracy on all of ``data.test``.
    """
    if (epochs is None) == (minutes is None):
        raise ValueError("give either epochs (equal epochs) or minutes (equal time), not both or neither.")
    model = contender.build(num_classes=len(data.class_names), width=width)
    steps_per_pass = helpers.training.steps_per_epoch(data.train_count, batch_size)
    if minutes is None:
        timer = helpers.measure.StepTimer()
        recipe.compile(model, epochs=epochs, train_count=data.train_count, batch_size=batch_size)
        # No resuming here either: the step timer, and so the row's minutes and epochs, covers one call.
        history = helpers.training.fit(model, data.train, validation=data.val, epochs=epochs,
                                       batch_size=batch_size, run=run, resume=False, callbacks=[timer])
    else:
        clock = timer = ClockSchedule(recipe, 60 * minutes)  # a step timer that also stops the run
        recipe.compile(model, on_the_clock=True)
        # Quarter-passes over the training images as "epochs", so the curves have points even in a short
        # run; the clock, not the epoch count, ends it. A resumed clock would not be a fair one: no resuming.
        chunk = max(1, steps_per_pass // 4)
        history = helpers.training.fit(model, data.train.repeat(), validation=data.val, epochs=10_000, verbose=0,
                                       steps_per_epoch=chunk, batch_size=batch_size, run=run, resume=False,
                                       callbacks=[clock])
    test = helpers.evaluation.predict(model, data.test)
    table = helpers.analysis.layer_table(model)
    train_seconds = sum(timer.seconds[1:])  # training steps only; the first one also traced the graph
    images = batch_size * len(timer.seconds)  # every step trained; a last partial batch counts as full
    return dict(
        label=contender.label, model=model, history=history, test=test, batch_norm=contender.batch_norm,
        params=int(sum(math.prod(w.shape) for w in model.trainable_weights)), macs=table.macs,
        activation_bytes=table.activation_bytes, images_per_second=timer.images_per_second(batch_size),
        train_minutes=train_seconds / 60, epochs_seen=images / data.train_count, test_accuracy=test.accuracy,
        memory_estimate=helpers.measure.training_memory_estimate(model.count_params(), table.activation_bytes,
                                                                 batch_size, optimizer_slots=1),
    )
