"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) as in the paper, and a modern rewrite of the same shape.

``variant="paper"``: scaled-tanh units, trainable subsampling, the sparse C3 of Table I and a Euclidean RBF
output with fixed digit prototypes; exactly 60,000 trainable parameters. It expects 32×32×1 inputs with
background −0.1 and ink 1.175 (``load_mnist(normalization="paper", pad_to_32=True)``) and outputs 10
*distances*: the smallest wins. Train it with ``compile_lenet5`` (the RBF loss and arg-min accuracy).

``variant="modern"``: the same layer sizes with what came later: ReLU, max-pooling, a dense C3 and softmax.
"""

import keras
from keras import layers

from helpers.layers import EuclideanRBF, PaperUniform, RBFAccuracy, RBFLoss, SparseConv2D, Subsampling, \
    c3_connections, scaled_tanh
from helpers.models._parts import check_top_options, classify, features
from helpers.models._registry import build, check_input_size, register

VARIANTS = ("paper", "modern")
OUTPUTS = ("rbf", "softmax")
# C1 5×5 → S2 /2 → C3 5×5 → S4 /2 → C5 5×5 must leave at least 1×1: (((n − 4) / 2 − 4) / 2 − 4) ≥ 1.
MIN_INPUT = 32


@register("lenet5")
def build_lenet5(*, input_shape, num_classes, variant="paper", output=None, include_top=True, pooling=None,
                 classifier_activation="softmax"):
    """LeNet-5 with layers named as in the paper (C1, S2, C3, S4, C5, F6, output).

    output: ``"rbf"`` (the paper's distances; the default for ``variant="paper"``, 10 digit classes only) or
    ``"softmax"`` (a modern head: the Dense layer ``output``, then ``classifier_activation`` as the float32 layer
    ``predictions``; the default for ``variant="modern"``). ``include_top=False`` ends at C5's maps (``pooling``
    as in keras.applications); 32×32 is LeNet-5's own input size, so CIFAR-10 needs no adaptation.
    """
    if variant not in VARIANTS:
        raise ValueError(f"lenet5 variant must be one of {VARIANTS}, not {variant!r}.")
    output = output or ("rbf" if variant == "paper" else "softmax")
    if output not in OUTPUTS:
        raise ValueError(f"lenet5 output must be one of {OUTPUTS}, not {output!r}.")
    if output == "rbf" and num_classes != 10 and include_top:
        raise ValueError(f"the RBF output has one fixed prototype per digit, so num_classes must be 10, not "
                         f"{num_classes}; use output='softmax' for other class counts.")
    check_input_size("lenet5", input_shape, min_size=MIN_INPUT)
    check_top_options(include_top, pooling, classifier_activation)

    inputs = keras.Input(input_shape, name="image")
    if variant == "paper":
        init = PaperUniform()
        x = layers.Conv2D(6, 5, activation=scaled_tanh, kernel_initializer=init, name="C1")(inputs)
        x = Subsampling(2, activation=scaled_tanh, name="S2")(x)
        x = SparseConv2D(c3_connections(), 5, activation=scaled_tanh, name="C3")(x)
        x = Subsampling(2, activation=scaled_tanh, name="S4")(x)
        x = layers.Conv2D(120, 5, activation=scaled_tanh, kernel_initializer=init, name="C5")(x)
        if not include_top:
            return keras.Model(inputs, features(x, pooling), name=f"lenet5_{variant}")
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(84, activation=scaled_tanh, kernel_initializer=init, name="F6")(x)
    else:
        x = layers.Conv2D(6, 5, activation="relu", name="C1")(inputs)
        x = layers.MaxPooling2D(2, name="S2")(x)
        x = layers.Conv2D(16, 5, activation="relu", name="C3")(x)  # every C3 map reads all six S2 maps
        x = layers.MaxPooling2D(2, name="S4")(x)
        x = layers.Conv2D(120, 5, activation="relu", name="C5")(x)
        if not include_top:
            return keras.Model(inputs, features(x, pooling), name=f"lenet5_{variant}")
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(84, activation="relu", name="F6")(x)
    if output == "rbf":
        outputs = EuclideanRBF(name="output", dtype="float32")(x)  # float32 even under mixed precision
    else:
        outputs = classify(x, num_classes, classifier_activation, logits="output")  # the paper's layer name
    return keras.Model(inputs, outputs, name=f"lenet5_{variant}")


def has_rbf_output(model) -> bool:
    return isinstance(model.layers[-1], EuclideanRBF)


# AdamW's decay for both variants: not the paper's; chosen among 0.1, 0.2 and 0.4 on the 5,000 validation images
# (benchmarks/lenet5_full.py --validation-only; the README's LeNet-5 row).
WEIGHT_DECAY = 0.1


def compile_lenet5(model, learning_rate=1e-3, decay_steps=None, j=None, weight_decay=WEIGHT_DECAY,
                   steps_per_execution=16):
    """AdamW with the loss and accuracy that fit the model's head: for RBF distances the paper's MAP criterion
    (:class:`RBFLoss`, rubbish-class constant ``j``; None = its default) and arg-min accuracy, for softmax
    sparse cross-entropy and arg-max accuracy.

    ``decay_steps`` (the number of training steps) lowers the rate along a cosine to 0 by the end, which buys
    the last few tenths of a percent in a short run. ``weight_decay`` shrinks every trainable weight (biases and
    the subsampling coefficients included) by ``weight_decay × rate`` of itself each step, decoupled from the
    gradient (AdamW, Loshchilov & Hutter 2017): 0.2 at a rate of 1e-3 is 2e-4 a step, fading with the cosine. In
    20 epochs of minibatches of 64 it lifted the paper variant by 0.13–0.26 points of MNIST test accuracy on
    each seed tried (``benchmarks/lenet5_full.py``; the figures are in the README). The paper used stochastic
    diagonal Levenberg-Marquardt with a stepwise falling rate and describes no weight decay; Adam came 16 years
    later.
    ``steps_per_execution`` runs that many minibatches per call into the graph: LeNet-5's steps are so small
    that Keras's per-step overhead would otherwise be a large part of them.
    """
    if decay_steps:
        from helpers.recipes import cosine_schedule

        learning_rate = cosine_schedule(learning_rate, steps=decay_steps)
    if has_rbf_output(model):
        loss, metrics = (RBFLoss() if j is None else RBFLoss(j=j)), [RBFAccuracy()]
    else:
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay), loss=loss,
                  metrics=metrics, steps_per_execution=steps_per_execution)
    return model


def paper_table() -> list[tuple[str, tuple, int]]:
    """The paper's layer table: (layer, output shape without the batch axis, trainable parameters)."""
    return [
        ("C1", (28, 28, 6), 156),
        ("S2", (14, 14, 6), 12),
        ("C3", (10, 10, 16), 1516),
        ("S4", (5, 5, 16), 32),
        ("C5", (1, 1, 120), 48120),
        ("F6", (84,), 10164),
        ("output", (10,), 0),
    ]


VALIDATION_SIZE = 5_000


def mnist_splits(train_samples=None, val_samples=None):
    """MNIST as the paper fed it (32×32, background −0.1, ink 1.175) in three splits:
    ``(x_train, y_train), (x_val, y_val), (x_test, y_test)``.

    The first 5,000 images of the training file are held out for validation (``val_samples`` of them are
    kept), the next ``train_samples`` (None: all 55,000) train. Only what is needed is converted.
    """
    from helpers.data import load_mnist

    limit = None if train_samples is None else VALIDATION_SIZE + train_samples
    x, y = load_mnist("train", normalization="paper", pad_to_32=True, limit=limit)
    validation = (x[:VALIDATION_SIZE][:val_samples], y[:VALIDATION_SIZE][:val_samples])
    test = load_mnist("test", normalization="paper", pad_to_32=True)
    return (x[VALIDATION_SIZE:], y[VALIDATION_SIZE:]), validation, test


def train_lenet5(variant, train, validation, *, epochs, batch_size, seed=42, run=None, weight_decay=WEIGHT_DECAY,
                 **options):
    """Build, compile (``compile_lenet5``: AdamW, cosine decay over the run) and fit one variant.

    ``train`` and ``validation`` are (images, labels) pairs; ``run`` names the run folder of
    ``helpers.training.fit`` (default ``lenet5_<variant>``). Returns ``(model, history)``; the history has
    ``wall_seconds`` and per-epoch ``epoch_seconds``. ``weight_decay`` goes to ``compile_lenet5``; other
    options to the builder.
    """
    import tensorflow as tf

    from helpers import settings, training

    settings.seed_everything(seed)
    (x, y), (x_val, y_val) = train, validation
    with training.strategy().scope():
        model = build("lenet5", input_shape=x.shape[1:], num_classes=10, variant=variant, **options)
        compile_lenet5(model, decay_steps=epochs * training.steps_per_epoch(len(x), batch_size),
                       weight_decay=weight_decay)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed)
    train_ds = train_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(1000)
    history = training.fit(model, train_ds, validation=val_ds, epochs=epochs, batch_size=batch_size,
                           run=run or f"lenet5_{variant}")
    return model, history
