"""The speed records' tricks (helpers.tricks), the net they train (models "speedrun") and the recipe's settings."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import models, speedrun, tricks


def correlated_images(n=400, size=8, channels=3, seed=0):
    """Images whose neighbouring pixels and channels are strongly correlated, like photographs."""
    rng = np.random.default_rng(seed)
    smooth = rng.normal(size=(n, size + 1, size + 1, 1))
    smooth = (smooth[:, 1:, 1:] + smooth[:, :-1, 1:] + smooth[:, 1:, :-1] + smooth[:, :-1, :-1]) / 4
    return (smooth * [1.0, 0.8, 0.6] + 0.3 * rng.normal(size=(n, size, size, channels))).astype("float32")


def test_whitening_makes_the_patch_covariance_the_identity():
    images = correlated_images()
    before = tricks.patches(images, 2)
    assert np.abs(np.corrcoef(before.T) - np.eye(12)).max() > 0.5  # strongly correlated to begin with
    kernel = tricks.whitening_kernel(images, size=2, eps=0.0)
    assert kernel.shape == (2, 2, 3, 24)
    outputs = tf.nn.conv2d(images, kernel, 1, "VALID").numpy().reshape(-1, 24)
    covariance = outputs[:, :12].T @ outputs[:, :12] / len(outputs)
    assert np.abs(covariance - np.eye(12)).max() < 1e-3
    assert np.allclose(outputs[:, 12:], -outputs[:, :12], atol=1e-5)  # the second half: the same, negated
    # eps damps each direction to variance λ / (λ + eps): the small-variance ones (noise) most
    damped = tf.nn.conv2d(images, tricks.whitening_kernel(images, eps=0.1), 1, "VALID").numpy().reshape(-1, 24)
    eigenvalues = np.linalg.eigvalsh(before.T.astype("float64") @ before / len(before))[::-1]
    assert np.allclose((damped[:, :12] ** 2).mean(axis=0), eigenvalues / (eigenvalues + 0.1), atol=1e-3)


def test_patches_follow_the_conv_kernel_order():
    images = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype("float32")
    kernel = np.random.default_rng(2).normal(size=(2, 2, 3, 4)).astype("float32")
    by_conv = tf.nn.conv2d(images, kernel, 1, "VALID").numpy().reshape(-1, 4)
    assert np.allclose(tricks.patches(images, 2) @ kernel.reshape(12, 4), by_conv, atol=1e-5)


def test_dirac_makes_a_convolution_the_identity_on_its_first_channels():
    conv = keras.layers.Conv2D(10, 3, padding="same", use_bias=False, kernel_initializer=tricks.Dirac(seed=0))
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype("float32")
    y = conv(x).numpy()
    assert np.array_equal(y[..., :4], x)  # exactly: one weight of 1, the rest 0
    assert np.abs(y[..., 4:]).mean() > 0.05  # the other six channels are ordinary random filters
    limit = 1 / np.sqrt(3 * 3 * 4)  # PyTorch's default ±1/√fan_in
    assert np.abs(conv.kernel.numpy()[..., 4:]).max() <= limit + 1e-7
    narrowing = keras.layers.Conv2D(2, 3, padding="same", use_bias=False, kernel_initializer=tricks.Dirac())
    assert np.array_equal(narrowing(x).numpy(), x[..., :2])


def test_triangle_schedule_values_at_its_knots():
    total = 528  # 11 epochs of 48 steps
    schedule = tricks.Triangle(1.5, total, start=0.2, peak=0.23, end=0.07)
    values = np.array([float(schedule(step)) for step in range(total + 1)])
    top = int(0.23 * total)
    assert values[0] == pytest.approx(0.3) and values[top] == pytest.approx(1.5) and values[-1] == pytest.approx(0.105)
    assert values.argmax() == top
    # piecewise linear between the knots, as numpy.interp (the reference's formula)
    assert np.allclose(values, 1.5 * np.interp(np.arange(total + 1), [0, top, total], [0.2, 1, 0.07]), atol=1e-6)
    with pytest.raises(ValueError, match="total_steps"):
        tricks.Triangle(1.0, 0)


def one_step(optimizer, variables, gradients):
    optimizer.apply(gradients, variables)
    return [v.numpy() for v in variables]


def test_scaled_sgd_scales_the_rate_not_the_decay_and_gates_stop_training():
    plain, bias, frozen = (keras.Variable(np.ones(3, "float32"), name=n) for n in ("kernel", "beta", "frozen"))
    gate = keras.Variable(0.0, trainable=False)
    optimizer = tricks.ScaledSGD(0.1, momentum=0.0, weight_decay_per_step=0.01, lr_scales=[(bias, 64.0)],
                                 gates=[(frozen, gate)])
    gradient = np.full(3, 0.5, "float32")
    after = one_step(optimizer, [plain, bias, frozen], [gradient] * 3)
    assert np.allclose(after[0], 1 - 0.1 * 0.5 - 0.01)  # lr · g + the step's decay
    assert np.allclose(after[1], 1 - 64 * 0.1 * 0.5 - 0.01)  # ×64 on the gradient, the same decay
    assert np.array_equal(after[2], np.ones(3))  # gate closed: untouched
    gate.assign(1.0)
    after = one_step(optimizer, [plain, bias, frozen], [gradient] * 3)
    assert not np.array_equal(after[2], np.ones(3))


def test_scaled_sgd_with_momentum_matches_pytorch_nesterov():
    # PyTorch: b ← μ·b + g;  w ← w − lr·(g + μ·b), with g including the decay term (wd/lr)·w.
    lr, mu, wd, grads = 0.05, 0.85, 0.002, [0.3, -0.1, 0.2]
    w_ref, b = 1.0, 0.0
    variable = keras.Variable(np.ones(1, "float32"))
    optimizer = tricks.ScaledSGD(lr, momentum=mu, weight_decay_per_step=wd)
    for g in grads:
        full = g + wd / lr * w_ref
        b = mu * b + full
        w_ref -= lr * (full + mu * b)
        optimizer.apply([np.array([g], "float32")], [variable])
    assert variable.numpy()[0] == pytest.approx(w_ref, rel=1e-5)


def test_lookahead_pulls_the_weights_to_their_running_average():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    lookahead = tricks.Lookahead(total_steps=10, every=2, start_epoch=1, base=0.5)
    lookahead.set_model(model)
    kernel = model.layers[0].kernel
    lookahead.on_epoch_begin(0)
    for value in (5.0, 6.0):  # epoch 0: before start_epoch, nothing happens
        kernel.assign([[value]])
        lookahead.on_train_batch_end(0)
    assert lookahead.average is None and kernel.numpy()[0, 0] == 6.0
    lookahead.on_epoch_begin(1)
    kernel.assign([[1.0]]); lookahead.on_train_batch_end(0)  # step 3: not a multiple of 2
    kernel.assign([[2.0]]); lookahead.on_train_batch_end(0)  # step 4: the average starts here, at 2
    kernel.assign([[4.0]]); lookahead.on_train_batch_end(0)
    kernel.assign([[10.0]]); lookahead.on_train_batch_end(0)  # step 6: ρ = 0.5·(6/10)³ = 0.108
    rho = 0.5 * 0.6**3
    expected = rho * 2.0 + (1 - rho) * 10.0
    assert kernel.numpy()[0, 0] == pytest.approx(expected) and float(lookahead.average[0][0, 0]) == pytest.approx(expected)
    kernel.assign([[3.0]]); lookahead.on_epoch_end(1)  # the epoch ends on the average
    assert kernel.numpy()[0, 0] == pytest.approx(expected)


def asymmetric_images(n=8, size=6):
    """Images that tell every flip and shift apart: pixel values encode (image, row, column)."""
    rows, columns = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    images = np.stack([1000 * i + 10 * rows + columns for i in range(n)])[..., None]
    return np.repeat(images, 3, axis=-1).astype("uint8" if images.max() < 256 else "float32")


def collect(batches):
    return [(x.numpy(), y.numpy()) for x, y in batches]


def test_alternating_flips_show_every_image_both_ways_in_two_epochs():
    images = asymmetric_images()
    batches = collect(tricks.flip_translate_batches(images, np.arange(8), batch_size=4, epochs=4, translate=0,
                                                    flip="alternating", num_classes=8, seed=3))
    assert len(batches) == 8  # 2 batches per epoch
    flipped_per_epoch = []
    for epoch in range(4):
        flipped = {}
        for x, y in batches[2 * epoch: 2 * epoch + 2]:
            for image, label in zip(x, y.argmax(1)):
                original = images[label].astype("float32")
                assert np.array_equal(image, original) or np.array_equal(image, original[:, ::-1])
                flipped[label] = not np.array_equal(image, original)
        assert sorted(flipped) == list(range(8))  # every image once per epoch
        flipped_per_epoch.append(flipped)
    for image in range(8):
        assert flipped_per_epoch[0][image] != flipped_per_epoch[1][image]  # the other way in the next epoch
        assert flipped_per_epoch[0][image] == flipped_per_epoch[2][image]
    assert 0 < sum(flipped_per_epoch[0].values()) < 8


def test_translation_is_per_image_and_within_range():
    images = np.repeat(asymmetric_images(1, size=8), 64, axis=0)  # 64 copies of one image in one batch
    (x, _), = collect(tricks.flip_translate_batches(images, np.zeros(64, int), batch_size=64, epochs=1,
                                                    translate=2, flip="none", seed=0))
    padded = np.pad(images[0], ((2, 2), (2, 2), (0, 0)), mode="reflect").astype("float32")
    offsets = set()
    for image in x:
        found = [(r, c) for r in range(5) for c in range(5) if np.array_equal(image, padded[r:r + 8, c:c + 8])]
        assert found, "every output is an 8×8 window of the reflection-padded image"
        offsets.add(found[0])
    assert len(offsets) > 10  # identical images in one batch get different shifts
    with pytest.raises(ValueError, match="flip must be"):
        tricks.flip_translate_batches(images, np.zeros(64, int), batch_size=8, epochs=1, flip="sometimes")


def test_tta_averages_the_mirror_and_translated_views():
    images = np.random.default_rng(0).normal(size=(3, 6, 6, 3)).astype("float32")
    views = tricks.tta_views(images, 2)
    assert sum(weight for weight, _ in views) == pytest.approx(1.0)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    expected = [images, images[:, :, ::-1], padded[:, :6, :6], padded[:, :6, :6][:, :, ::-1],
                padded[:, 2:, 2:], padded[:, 2:, 2:][:, :, ::-1]]
    for (weight, view), want in zip(views, expected):
        assert np.allclose(view.numpy(), want)
    # A "model" that outputs its input pixels: TTA's output is the weighted average of the views
    flatten = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Flatten()])
    average = sum(w * v.reshape(3, -1) for w, v in zip([0.25, 0.25, 0.125, 0.125, 0.125, 0.125], expected))
    assert np.allclose(tricks.tta_logits(flatten, images, level=2), average, atol=1e-6)
    assert np.allclose(tricks.tta_logits(flatten, images, level=1), (images + images[:, :, ::-1]).reshape(3, -1) / 2)
    with pytest.raises(ValueError, match="level"):
        tricks.tta_views(images, 3)


def test_speedrun_net_counts_by_hand():
    model = models.build("speedrun", input_shape=(32, 32, 3), num_classes=10)
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 128 + 128 * 128)
    betas = 2 * (64 + 128 + 128)  # BatchNorm without γ: one β per channel
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 24 + convs + betas + 128 * 10 == 568_728  # whitening bias, convs, β, classifier
    assert model.get_layer("whiten").trainable is False and model.get_layer("whiten").kernel.shape == (2, 2, 3, 24)
    assert [model.get_layer(f"group{i}_norm2").output.shape[1] for i in (1, 2, 3)] == [15, 7, 3]
    # Dirac: at initialisation the first conv of group 1 copies its 24 input channels
    conv = model.get_layer("group1_conv1")
    x = np.random.default_rng(0).normal(size=(1, 31, 31, 24)).astype("float32")
    assert np.array_equal(conv(x).numpy()[..., :24], x)
    with pytest.raises(ValueError, match="at least 9×9"):
        models.build("speedrun", input_shape=(8, 8, 3), num_classes=10)
    with pytest.raises(ValueError, match="widths"):
        models.build("speedrun", input_shape=(32, 32, 3), num_classes=10, widths=(64, 128))


def test_speedrun_net_options_for_the_step_benchmark_change_only_what_they_say():
    """Keras's own batch norm gives the same network and outputs; GELU's tanh approximation differs only a little."""
    def build(**options):
        keras.utils.set_random_seed(0)
        return models.build("speedrun", input_shape=(16, 16, 3), num_classes=10, widths=(8, 8, 8),
                            classifier_activation=None, **options)

    images = np.random.default_rng(0).uniform(0, 255, size=(4, 16, 16, 3)).astype("float32")
    course, keras_bn = build(), build(fused_batch_norm=False)
    tanh = build(activation=lambda x: keras.activations.gelu(x, approximate=True))
    assert type(keras_bn.get_layer("group1_norm1")) is keras.layers.BatchNormalization
    assert type(course.get_layer("group1_norm1")) is not keras.layers.BatchNormalization
    assert [w.shape for w in keras_bn.weights] == [w.shape for w in course.weights]
    keras_bn.set_weights(course.get_weights())
    tanh.set_weights(course.get_weights())
    reference = course(images, training=True).numpy()
    assert np.allclose(keras_bn(images, training=True).numpy(), reference, rtol=1e-4, atol=1e-4)
    difference = np.abs(tanh(images, training=True).numpy() - reference).max()
    assert 0 < difference < 0.05 * np.abs(reference).max()


def test_average_views_weights_each_view():
    views = [(0.25, np.ones((2, 3))), (0.75, np.full((2, 3), 5.0))]
    assert np.array_equal(tricks.average_views(views), np.full((2, 3), 4.0))


def test_recipe_translates_the_reference_rates():
    recipe = speedrun.Recipe()
    assert recipe.keras_learning_rate == pytest.approx(1.5)  # 11.5 / (1 + 1/0.15) at batch 1024
    assert recipe.weight_decay_per_step == pytest.approx(0.0153 / (1 + 1 / 0.15))
    assert speedrun.Recipe(batch_size=512).keras_learning_rate == pytest.approx(0.75)
    with pytest.raises(ValueError, match="schedule"):
        speedrun.Recipe(schedule=(0.2, 1.5, 0.0))
    with pytest.raises(ValueError, match="larger than the 100 training images"):
        speedrun.build(speedrun.Recipe(), np.zeros((100, 32, 32, 3), "uint8"))
    final = speedrun.Recipe()
    assert speedrun.ABLATION["final recipe"] == {}
    for label, changes in speedrun.ABLATION.items():  # every other row is a valid recipe differing in one place
        row = speedrun.Recipe(**changes)
        differs = {f.name for f in dataclasses.fields(row) if getattr(row, f.name) != getattr(final, f.name)}
        assert differs == set(changes) and len(differs) == (0 if label == "final recipe" else 1), label


def test_the_recipe_learns_cifar10_in_two_short_epochs(cifar10_arrays):
    (x, y), (x_test, y_test) = cifar10_arrays
    recipe = speedrun.Recipe(epochs=2, batch_size=256, widths=(32, 64, 64))
    result = speedrun.train(recipe, (x, y), (x_test, y_test), seed=0, verbose=0)
    assert result.model.get_layer("whiten_bias").bias.numpy().any()  # trained (its gate opens for 3 epochs)
    assert result.test_accuracy > 0.3 and result.tta_accuracy > 0.3  # chance: 0.1
    assert len(result.history["loss"]) == 2


@pytest.fixture(scope="module")
def cifar10_arrays():
    """A class-balanced sample of the real CIFAR-10: 4,096 training and 1,000 test images."""
    from helpers.data import load_cifar10
    from helpers.data.cifar import balanced_indices

    x, y = load_cifar10("train")
    x_test, y_test = load_cifar10("test")
    train, _ = balanced_indices(y, 4096, seed=0)
    test, _ = balanced_indices(y_test, 1000, seed=0)
    return (x[train], y[train]), (x_test[test], y_test[test])
