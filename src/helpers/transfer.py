"""Transfer learning, measured: a network pretrained on one dataset learns another in one of four ways.

- ``scratch``: the same network with random weights (the baseline);
- ``frozen``: the pretrained layers fixed, their batch norms in inference mode; only a new classifier learns;
- ``finetune``: every layer learns from the pretrained weights except the batch norms, which stay frozen in
  inference mode (they normalise with the pretraining data's moving statistics, and keep their γ and β), as
  Keras's transfer-learning guide advises;
- ``finetune_bn_train``: every layer learns, and the batch norms normalise with each new batch's statistics and
  update their moving ones, as in ordinary training.

In Keras 3 a frozen BatchNormalization (``trainable = False``) is what runs in inference mode during ``fit``.
Building the model with ``base(inputs, training=False)``, as the guide shows, does not survive unfreezing the
base: ``fit`` calls the model with ``training=True`` and a functional model passes that to every layer, over
the ``training=False`` it was built with (keras-team/keras#20285; ``tests/test_transfer.py`` checks both).

Every way gets a new classifier (``logits`` + ``predictions``, as the course's builders end) on the pretrained
network's pooled features, and is trained alike by its caller (same data, schedule, loss and epochs).
"""

from __future__ import annotations

import dataclasses
import json

import keras

import helpers.evaluation
import helpers.training
from helpers.models._parts import classify

WAYS = {  # way -> (pretrained weights, the base learns, batch norms frozen in inference mode)
    "scratch": (False, True, False),
    "frozen": (True, False, True),
    "finetune": (True, True, True),
    "finetune_bn_train": (True, True, False),
}
LABELS = {"scratch": "from scratch", "frozen": "frozen features + new classifier",
          "finetune": "fine-tuned, BN frozen", "finetune_bn_train": "fine-tuned, BN updating"}


def copy_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the weights of every layer of ``target`` that ``source`` has by name (e.g. into the same network built
    for another input size or without its classifier); returns the names copied."""
    copied = []
    for layer in target.layers:
        if not layer.weights:
            continue
        try:
            values = source.get_layer(layer.name).get_weights()
        except ValueError:
            continue  # a layer the source does not have (a new classifier) keeps its initial weights
        shapes = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != shapes:
            raise ValueError(f"Layer {layer.name!r} has weights of shapes {shapes} in {target.name} but "
                             f"{[v.shape for v in values]} in {source.name}: not the same network.")
        layer.set_weights(values)
        copied.append(layer.name)
    if not copied:
        raise ValueError(f"{source.name} and {target.name} have no layer in common: nothing to copy.")
    return copied


def with_new_classifier(base: keras.Model, way: str, num_classes: int, *, pretrained: keras.Model | None = None,
                        name: str | None = None) -> keras.Model:
    """``base`` (a network built with ``include_top=False, pooling="avg"``) set up for ``way``, plus a new classifier.

    ``pretrained`` is the source of the weights for every way but ``scratch`` (copied by layer name).
    """
    if way not in WAYS:
        raise ValueError(f"way must be one of {list(WAYS)}, not {way!r}.")
    uses_weights, base_learns, bn_inference = WAYS[way]
    if len(base.output_shape) != 2:
        raise ValueError(f"{base.name} ends in maps of shape {base.output_shape}: build it with include_top=False "
                         "and pooling='avg' (one feature vector per image).")
    if uses_weights:
        if pretrained is None:
            raise ValueError(f"way={way!r} starts from pretrained weights: pass pretrained=<the pretrained model>.")
        copy_weights(pretrained, base)
    # A frozen layer takes no gradient step; a frozen BatchNormalization also normalises with its moving statistics.
    base.trainable = base_learns
    if base_learns and bn_inference:
        for layer in _layers_within(base):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    inputs = keras.Input(base.input_shape[1:], name="image")
    return keras.Model(inputs, classify(base(inputs), num_classes), name=name or f"{base.name}_{way}")


def _layers_within(model):
    for layer in model.layers:
        yield from _layers_within(layer) if hasattr(layer, "layers") else (layer,)


def trainable_count(model: keras.Model) -> int:
    """How many parameters a gradient step changes."""
    return sum(int(w.numpy().size) for w in model.trainable_weights)


def pretrain(model, train, *, recipe, epochs: int, train_count: int, batch_size: int, run: str, config=None,
             validation=None):
    """Train ``model`` with ``recipe`` once and keep it: a later call with the same network, recipe and
    configuration loads the finished weights instead of training again. Returns (model, history or None)."""
    folder = helpers.training.run_dir(run)
    weights, stamp = folder / "pretrained.weights.h5", folder / "pretrained.json"
    recipe.compile(model, epochs=epochs, train_count=train_count, batch_size=batch_size)
    # fit's resume fingerprint (network, input size, optimizer and schedule, loss, batch, run configuration)
    fingerprint = {**helpers.training._fingerprint(model, batch_size, config), "epochs": epochs}
    if weights.is_file() and stamp.is_file():
        try:
            saved = json.loads(stamp.read_text())
        except ValueError:
            saved = None
        if saved == fingerprint:
            model.load_weights(weights)
            print(f"Reusing the pretrained weights in {weights} (same network, recipe and configuration).")
            return model, None
    stamp.unlink(missing_ok=True)  # until the new weights are saved, none are reusable
    history = helpers.training.fit(model, train, validation=validation, epochs=epochs, batch_size=batch_size,
                                   run=run, config=config)
    model.save_weights(weights)
    stamp.write_text(json.dumps(fingerprint, sort_keys=True))
    return model, history


def compare(make_base, pretrained, *, ways, recipe, learning_rates: dict, train, holdout, val, epochs: int,
            train_count: int, batch_size: int, num_classes: int, run_prefix: str, config=None) -> list[dict]:
    """Train one model per way in ``ways`` alike and score each once, at its final epoch.

    ``make_base()`` builds a fresh base (``include_top=False, pooling="avg"``); ``pretrained`` holds the weights
    the pretrained ways start from. All ways share the data, the recipe (schedule, weight decay, loss), the
    batch size and the epochs; only the peak learning rate can differ (``learning_rates[way]``). The held-out
    images (split from the training ones) are watched during training; ``val`` is scored only at the end.
    Returns one row per way: its settings, accuracies, training seconds and history.
    """
    rows = []
    for way in ways:
        model = with_new_classifier(make_base(), way, num_classes, pretrained=pretrained)
        dataclasses.replace(recipe, learning_rate=learning_rates[way]).compile(
            model, epochs=epochs, train_count=train_count, batch_size=batch_size)
        history = helpers.training.fit(model, train, validation=holdout, epochs=epochs, batch_size=batch_size,
                                       run=f"{run_prefix}_{way}", config=config)
        rows.append(dict(way=way, label=LABELS[way], learning_rate=learning_rates[way],
                         trainable=trainable_count(model), seconds=history.wall_seconds,
                         holdout_accuracy=float(history.history["val_accuracy"][-1]),
                         val_accuracy=helpers.evaluation.predict(model, val).accuracy, history=history))
    return rows
