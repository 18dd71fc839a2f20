"""LeNet-5: the paper's counts, shapes, C3 wiring, squashing function, RBF head, input checks, real training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers.models
from helpers import layers
from helpers.models.lenet import mnist_splits, paper_table, train_lenet5

# Paper Table I, written out independently of helpers.layers: C3 map -> the S2 maps it reads.
PAPER_C3_INPUTS = {
    0: {0, 1, 2}, 1: {1, 2, 3}, 2: {2, 3, 4}, 3: {3, 4, 5}, 4: {0, 4, 5}, 5: {0, 1, 5},
    6: {0, 1, 2, 3}, 7: {1, 2, 3, 4}, 8: {2, 3, 4, 5}, 9: {0, 3, 4, 5}, 10: {0, 1, 4, 5}, 11: {0, 1, 2, 5},
    12: {0, 1, 3, 4}, 13: {1, 2, 4, 5}, 14: {0, 2, 3, 5}, 15: {0, 1, 2, 3, 4, 5},
}


def lenet(variant="paper", **options):
    return helpers.models.build("lenet5", input_shape=(32, 32, 1), num_classes=10, variant=variant, **options)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_paper_variant_has_exactly_60000_trainable_parameters():
    model = lenet("paper")
    assert trainable_count(model) == 60_000
    assert model.count_params() == 60_000 + 840  # + the fixed ±1 prototypes of the RBF output
    assert len(model.non_trainable_weights) == 1


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_per_layer_output_shapes_match_the_paper(variant):
    model = lenet(variant)
    for name, shape, params in paper_table():
        layer = model.get_layer(name)
        assert tuple(layer.output.shape[1:]) == shape, name
        if variant == "paper":
            assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == params, name


def test_c3_parameters_are_only_the_connected_weights():
    c3 = lenet("paper").get_layer("C3")
    assert c3.count_params() == 1_516 == 60 * 25 + 16
    assert [tuple(w.shape) for w in c3.trainable_weights] == [(5, 5, 60), (16,)]


def _c3_dependence(c3):
    """dependence[i, o]: does C3 output map o change when S2 map i changes? (gradient probe, per pair)"""
    s2 = tf.Variable(tf.random.normal((1, 14, 14, 6), seed=1))
    dependence = np.zeros((6, 16), dtype=bool)
    for o in range(16):
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(c3(s2)[..., o])
        grad = tape.gradient(out, s2).numpy()[0]  # (14, 14, 6)
        dependence[:, o] = np.abs(grad).sum(axis=(0, 1)) > 0
    return dependence


def test_c3_connectivity_probed_equals_the_paper_table():
    dependence = _c3_dependence(lenet("paper").get_layer("C3"))
    probed = {o: set(np.flatnonzero(dependence[:, o]).tolist()) for o in range(16)}
    assert probed == PAPER_C3_INPUTS


def test_c3_connectivity_by_perturbing_one_s2_map():
    c3 = layers.SparseConv2D(layers.c3_connections(), 5)
    s2 = np.random.default_rng(0).normal(size=(1, 14, 14, 6)).astype("float32")
    base = np.asarray(c3(s2))
    for i in range(6):
        bumped = s2.copy()
        bumped[..., i] += 1.0
        changed = np.abs(np.asarray(c3(bumped)) - base).max(axis=(0, 1, 2)) > 1e-6
        assert set(np.flatnonzero(changed).tolist()) == {o for o, ins in PAPER_C3_INPUTS.items() if i in ins}


def test_modern_c3_is_dense():
    assert _c3_dependence(lenet("modern").get_layer("C3")).all()


def test_scaled_tanh_values():
    f = lambda a: float(layers.scaled_tanh(tf.constant(a, tf.float32)))  # noqa: E731
    assert f(0.0) == 0.0
    assert f(1.0) == pytest.approx(1.7159 * np.tanh(2 / 3), rel=1e-6)
    assert f(1.0) == pytest.approx(1.0, abs=1e-5)  # the paper's reason for A = 1.7159: f(±1) = ±1
    assert f(1.5) == pytest.approx(1.3068, abs=1e-4)
    assert f(-1.0) == pytest.approx(-f(1.0))
    assert f(50.0) == pytest.approx(1.7159, rel=1e-6)
    assert f(-50.0) == pytest.approx(-1.7159, rel=1e-6)


def test_subsampling_is_sum_times_coefficient_plus_bias():
    layer = layers.Subsampling(2)
    x = np.arange(32, dtype="float32").reshape(1, 4, 4, 2)
    layer.build(x.shape)
    layer.coefficient.assign([2.0, -1.0])
    layer.bias.assign([0.5, 3.0])
    out = np.asarray(layer(x))
    window_sums = x.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4))
    assert np.allclose(out, window_sums * [2.0, -1.0] + [0.5, 3.0])
    assert layer.count_params() == 4


def test_rbf_picks_the_class_of_its_own_bitmap():
    rbf = layers.EuclideanRBF()
    bitmaps = layers.digit_bitmaps()
    assert bitmaps.shape == (10, 12, 7) and set(np.unique(bitmaps)) == {-1.0, 1.0}
    distances = np.asarray(rbf(bitmaps.reshape(10, 84)))
    assert (distances.argmin(axis=1) == np.arange(10)).all()
    assert np.allclose(np.diag(distances), 0.0)
    assert (distances + np.eye(10) * 1e9).min() >= 4 * 9  # every two bitmaps differ in 9+ pixels
    assert rbf.trainable_weights == []


def test_rbf_loss_is_the_paper_map_criterion():
    distances = np.array([[3.0, 1.0, 7.0, 2.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]], "float32")
    j = 2.0
    expected = distances[0, 3] + np.log(np.exp(-j) + np.exp(-distances[0]).sum())
    assert float(layers.RBFLoss(j=j)(np.array([3]), distances)) == pytest.approx(expected, rel=1e-5)
    accuracy = layers.RBFAccuracy()
    accuracy.update_state(np.array([1, 3]), np.repeat(distances, 2, axis=0))
    assert float(accuracy.result()) == 0.5  # arg-min is class 1


@pytest.mark.parametrize("size", [28, 31])
def test_too_small_input_is_refused_clearly(size):
    with pytest.raises(ValueError, match="at least 32×32"):
        helpers.models.build("lenet5", input_shape=(size, size, 1), num_classes=10)


def test_bad_options_are_refused_clearly():
    with pytest.raises(ValueError, match="variant"):
        lenet("lenet4")
    with pytest.raises(ValueError, match="num_classes must be 10"):
        helpers.models.build("lenet5", input_shape=(32, 32, 1), num_classes=5)
    assert lenet("paper", output="softmax").output.shape[-1] == 10


@pytest.mark.slow
def test_paper_variant_learns_real_mnist(tmp_path):
    train, validation, (x_test, y_test) = mnist_splits(train_samples=8_000, val_samples=1_000)
    model, history = train_lenet5("paper", train, validation, epochs=4, batch_size=64, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.90

    # Save and reload as .keras: custom layers, loss and metric come back and predict the same.
    path = tmp_path / "lenet5_paper.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert trainable_count(reloaded) == 60_000
    assert np.allclose(reloaded.predict(x_test[:256], verbose=0), model.predict(x_test[:256], verbose=0), atol=1e-4)
    assert reloaded.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)["accuracy"] == accuracy


def test_compile_lenet5_decays_every_weight_decoupled_from_the_gradient():
    from helpers.models.lenet import compile_lenet5

    model = compile_lenet5(lenet("paper"), learning_rate=0.1, weight_decay=0.5)
    before = [w.numpy() for w in model.trainable_weights]
    model.optimizer.apply_gradients([(tf.zeros_like(w), w) for w in model.trainable_weights])
    for old, new in zip(before, model.trainable_weights):  # a zero gradient moves nothing but the decay: × (1 − 0.05)
        np.testing.assert_allclose(new.numpy(), old * (1 - 0.1 * 0.5), rtol=1e-6, atol=1e-7)

    # With the cosine schedule the decay follows the scheduled rate, step by step.
    scheduled = compile_lenet5(lenet("paper"), learning_rate=0.1, decay_steps=4, weight_decay=0.5)
    kernel = scheduled.get_layer("C5").kernel
    for step in range(2):
        before = kernel.numpy()
        scheduled.optimizer.apply_gradients([(tf.zeros_like(w), w) for w in scheduled.trainable_weights])
        rate = 0.1 * 0.5 * (1 + np.cos(np.pi * step / 4))
        np.testing.assert_allclose(kernel.numpy(), before * (1 - 0.5 * rate), rtol=1e-5, atol=1e-7)


def test_multiply_adds_count_only_the_connected_c3_kernels():
    import helpers.analysis

    model = helpers.models.build("lenet5", input_shape=(32, 32, 1), num_classes=10)
    rows = {row.name: row for row in helpers.analysis.layer_table(model).rows}
    # The paper's connection counts minus one bias per output value: C1 122,304 − 4,704; C3 151,600 − 1,600.
    assert rows["C1"].macs == 117_600
    assert rows["C3"].macs == 150_000
