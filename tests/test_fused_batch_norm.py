"""helpers.layers.BatchNormalization: Keras's layer computed by TensorFlow's fused kernel, with Keras's results.

Each test runs Keras's own BatchNormalization beside ours from the same weights on the same data. In float32 the
two agree to rtol 1e-4 / atol 1e-5 (the fused kernel sums in a different order, nothing more); the moving
statistics too, which needs the kernel's unbiased batch variance turned back into Keras's biased one.
"""

import inspect
import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers.layers
import helpers.models
import helpers.training
from helpers.layers import BatchNormalization

TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # float32, same weights, same data
SHAPE = (8, 8, 3)
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # the nets end in a plain Dense


def images(n=16, shape=SHAPE, seed=0):
    """Fixed random images, not centred at 0 nor of unit variance, so the batch statistics matter."""
    return np.random.default_rng(seed).normal(0.5, 2.0, (n, *shape)).astype("float32")


def labels(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 3, n)


def small_net(bn, **bn_options):
    """conv → BN → ReLU → strided conv → BN → ReLU → pool → dense, with ``bn`` as the batch-norm class."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = bn(momentum=0.9, epsilon=1e-5, name="bn1", **bn_options)(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", use_bias=False, name="conv2")(x)
    x = bn(momentum=0.9, name="bn2", **bn_options)(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def twins(**bn_options):
    """The same net with Keras's BN and with ours, ours given the Keras net's initial weights."""
    keras.utils.set_random_seed(0)
    reference, fused = small_net(keras.layers.BatchNormalization, **bn_options), small_net(BatchNormalization,
                                                                                             **bn_options)
    assert [w.path for w in reference.weights] == [w.path for w in fused.weights]  # same names, same order
    fused.set_weights(reference.get_weights())
    return reference, fused


def bn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def op_types(function, *specs) -> set:
    return {op.type for op in tf.function(function).get_concrete_function(*specs).graph.get_operations()}


@pytest.mark.parametrize("bn_options", [{}, {"center": False, "scale": False}], ids=["gamma-beta", "no-gamma-beta"])
def test_training_matches_keras(bn_options):
    """A few SGD steps (Keras's compiled train step): the same losses, weights and moving statistics."""
    reference, fused = twins(**bn_options)
    losses = {}
    for name, model in (("keras", reference), ("fused", fused)):
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=LOSS)
        losses[name] = [float(model.train_on_batch(images(seed=step), labels(seed=step))) for step in range(5)]
    np.testing.assert_allclose(losses["fused"], losses["keras"], **TOLERANCE)
    assert losses["keras"][0] != losses["keras"][-1]  # it did train
    for ours, theirs in zip(bn_layers(fused), bn_layers(reference)):
        assert not np.allclose(theirs.moving_variance.numpy(), 1.0)  # the statistics did move
        np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), **TOLERANCE)
        np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), **TOLERANCE)
    for ours, theirs in zip(fused.weights, reference.weights):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **TOLERANCE, err_msg=ours.path)


def test_moving_variance_is_the_biased_batch_variance():
    """The kernel hands back Σ(x-μ)²/(n-1); Keras's moving variance averages Σ(x-μ)²/n. Momentum 0 shows it."""
    x = images(n=2, shape=(3, 2, 4))  # n = 2·3·2 = 12 values per channel: Bessel's factor would be 12/11
    layer = BatchNormalization(momentum=0.0)
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), **TOLERANCE)
    np.testing.assert_allclose(layer.moving_variance.numpy(), x.var(axis=(0, 1, 2)), **TOLERANCE)


@pytest.mark.parametrize("bn_options", [{}, {"center": False, "scale": False}], ids=["gamma-beta", "no-gamma-beta"])
def test_inference_matches_keras(bn_options):
    """training=False normalises with the moving statistics (set to something other than 0 and 1 here)."""
    reference, fused = twins(**bn_options)
    rng = np.random.default_rng(1)
    for layer in bn_layers(reference):
        layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
        if layer.scale:
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
            layer.beta.assign(rng.normal(size=layer.beta.shape))
    fused.set_weights(reference.get_weights())
    x = images()
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), **TOLERANCE)
    np.testing.assert_allclose(fused.predict_on_batch(x), reference.predict_on_batch(x), **TOLERANCE)


def test_frozen_layer_runs_in_inference_mode():
    """trainable=False: as in Keras, training=True uses the moving statistics and leaves them as they are."""
    x = images()
    reference, ours = keras.layers.BatchNormalization(), BatchNormalization()
    for layer in (reference, ours):
        layer.build(x.shape)
        layer.moving_mean.assign(np.full(SHAPE[-1], 0.3, "float32"))
        layer.moving_variance.assign(np.full(SHAPE[-1], 2.0, "float32"))
        layer.trainable = False
    before = [w.numpy() for w in ours.weights]
    frozen = ours(x, training=True)
    np.testing.assert_allclose(frozen, ours(x, training=False), **TOLERANCE)
    np.testing.assert_allclose(frozen, reference(x, training=True), **TOLERANCE)
    for weight, value in zip(ours.weights, before):
        np.testing.assert_array_equal(weight.numpy(), value)
    # A gradient still reaches the input (fine-tuning the layers below a frozen BN), through the fused kernel.
    with tf.GradientTape() as tape:
        inputs = tf.constant(x)
        tape.watch(inputs)
        loss = tf.reduce_sum(ours(inputs, training=True) ** 2)
    assert np.isfinite(tape.gradient(loss, inputs).numpy()).all()


def test_save_and_load_keras_file(tmp_path):
    """A model with our layer reloads (safe_mode=True, as load_best does) as our layer, with identical outputs."""
    _, model = twins()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=LOSS)
    model.train_on_batch(images(), labels())  # moving statistics away from 0 and 1
    path = tmp_path / "fused_bn.keras"
    model.save(path)
    loaded = helpers.training.load_best(path)
    assert [type(layer) for layer in bn_layers(loaded)] == [BatchNormalization] * 2
    x = images(seed=3)
    np.testing.assert_array_equal(loaded.predict_on_batch(x), model.predict_on_batch(x))
    # The config is Keras's, key for key, so the layer takes whatever Keras's layer takes.
    assert model.get_layer("bn1").get_config() == keras.layers.BatchNormalization.from_config(
        model.get_layer("bn1").get_config()).get_config()


def test_falls_back_to_keras_where_the_kernel_does_not_apply():
    """2-D inputs (after Dense) and channels-first axis=1 run Keras's code, with Keras's results."""
    vectors = np.random.default_rng(0).normal(1.0, 3.0, (16, 5)).astype("float32")
    channels_first = images(shape=(3, 4, 4))
    for x, options in ((vectors, {}), (channels_first, {"axis": 1})):
        reference, ours = keras.layers.BatchNormalization(**options), BatchNormalization(**options)
        assert not ours.uses_fused_kernel(tf.constant(x))
        for training in (True, False, True):
            np.testing.assert_allclose(ours(x, training=training), reference(x, training=training), **TOLERANCE)
        for mine, theirs in zip(ours.weights, reference.weights):
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), **TOLERANCE)
    # … and a Dense → BN model trains as Keras's does.
    inputs = keras.Input((5,))
    outputs = {}
    for name, bn in (("keras", keras.layers.BatchNormalization), ("fused", BatchNormalization)):
        keras.utils.set_random_seed(0)
        model = keras.Model(inputs, keras.layers.Dense(3)(bn()(keras.layers.Dense(4)(inputs))))
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=LOSS)
        outputs[name] = [float(model.train_on_batch(vectors, labels())) for _ in range(3)]
    np.testing.assert_allclose(outputs["fused"], outputs["keras"], **TOLERANCE)
    if "renorm" in inspect.signature(keras.layers.BatchNormalization).parameters:  # Keras ≥ 3.14
        assert BatchNormalization(renorm=True).uses_fused_kernel(tf.zeros((1, 2, 2, 3))) is False
    assert BatchNormalization().uses_fused_kernel(tf.zeros((1, 2, 2, 3)), mask=tf.ones((1, 2, 2))) is False
    assert BatchNormalization().uses_fused_kernel(tf.zeros((1, 2, 2, 3), "float64")) is False


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_forward_and_backward(policy):
    """16-bit x goes into the kernel, γ, β and the statistics stay float32; close to the float32 layer."""
    x = images()
    reference = BatchNormalization(momentum=0.5)
    expected = reference(x, training=True)
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = BatchNormalization(momentum=0.5)
        layer.build(x.shape)
        assert {w.dtype for w in layer.weights} == {"float32"}
        assert layer.uses_fused_kernel(tf.constant(x, layer.compute_dtype))
        with tf.GradientTape() as tape:
            outputs = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, "float32") ** 2)
        assert outputs.dtype == layer.compute_dtype
        gradients = tape.gradient(loss, layer.trainable_weights)
        assert all(g.dtype == "float32" and np.isfinite(g.numpy()).all() for g in gradients)
        np.testing.assert_allclose(tf.cast(outputs, "float32"), expected, atol=0.05)  # 16 bits: ~3 digits
        np.testing.assert_allclose(layer.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-2, atol=1e-2)
        np.testing.assert_allclose(layer.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-2)
        assert "FusedBatchNormV3" in op_types(lambda t: layer(t, training=True), tf.TensorSpec(x.shape))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_the_fused_kernel_is_what_runs():
    """A training step's graph holds FusedBatchNormV3 and its gradient, and no moments; so does inference."""
    reference, model = twins()
    spec = tf.TensorSpec((None, *SHAPE))

    def training_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x, training=True) ** 2)
        return tape.gradient(loss, model.trainable_weights)

    step = op_types(training_step, spec)
    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= step
    assert "SquaredDifference" not in step  # Keras's ops.moments would be there had the layer fallen back
    assert "FusedBatchNormV3" in op_types(lambda x: model(x, training=False), spec)
    keras_step = op_types(lambda x: reference(x, training=True), spec)
    assert "FusedBatchNormV3" not in keras_step and "SquaredDifference" in keras_step  # the probe tells them apart


def test_builders_use_it_and_keep_their_parameter_counts():
    model = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)
    norms = bn_layers(model)
    assert norms and all(type(layer) is BatchNormalization for layer in norms)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 269_722
    vgg = helpers.models.build("vgg11", input_shape=(32, 32, 3), num_classes=10, width=0.125, fc_units=64,
                               batch_norm=True)
    assert type(bn_layers(vgg)[0]) is BatchNormalization
