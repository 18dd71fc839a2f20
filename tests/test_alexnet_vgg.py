"""AlexNet and VGG: exact parameter counts, the paper's LRN and grouping, multiply-add totals, input checks.

Each full-size network (60–144 M parameters) is built once, by a module-scoped parametrised fixture, and
released before the next one is built.
"""

import gc

import keras
import numpy as np
import pytest

import helpers.analysis
import helpers.gradcam
import helpers.models
from helpers.data.augment import PCAColorJitter
from helpers.layers import LocalResponseNormalization
from helpers.data import augment
from helpers.models import alexnet

# (model name, build options, exact parameters, paper multiply-adds in G or None)
PAPER_NETWORKS = {
    "alexnet": ("alexnet", {}, 60_965_224, None),
    "alexnet_one_tower": ("alexnet", {"groups": 1}, 62_378_344, None),
    "A": ("vgg11", {}, 132_863_336, 7.61),
    "A-LRN": ("vgg11_lrn", {}, 132_863_336, None),
    "B": ("vgg13", {}, 133_047_848, None),
    "C": ("vgg16_c", {}, 133_638_952, None),
    "D": ("vgg16", {}, 138_357_544, 15.47),
    "E": ("vgg19", {}, 143_667_240, 19.63),
}
KERAS_APPLICATIONS = {"D": keras.applications.VGG16, "E": keras.applications.VGG19}


@pytest.fixture(scope="module", params=list(PAPER_NETWORKS))
def paper_network(request):
    name, options, params, gmacs = PAPER_NETWORKS[request.param]
    size = 227 if name == "alexnet" else 224
    model = helpers.models.build(name, input_shape=(size, size, 3), num_classes=1000, **options)
    yield request.param, model, params, gmacs
    del model
    keras.backend.clear_session()
    gc.collect()


def test_paper_parameter_count_is_exact(paper_network):
    key, model, params, _ = paper_network
    assert model.count_params() == params
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == params


def test_multiply_adds_match_the_paper(paper_network):
    key, model, params, gmacs = paper_network
    table = helpers.analysis.layer_table(model)
    assert table.params == params
    if gmacs is not None:
        assert table.macs / 1e9 == pytest.approx(gmacs, rel=0.01)
    # Only convolutions and dense layers do multiply-adds; their sum is the whole total.
    assert sum(r.macs for r in table.rows if r.kind in ("Conv2D", "Dense")) == table.macs > 0


@pytest.mark.parametrize("paper_network", list(KERAS_APPLICATIONS), indirect=True)
def test_vgg_d_and_e_equal_keras_applications(paper_network):
    key, model, _, _ = paper_network
    reference = KERAS_APPLICATIONS[key](weights=None)
    assert reference.count_params() == model.count_params()
    ours = [(w.path.split("/")[0], tuple(w.shape)) for w in model.weights]
    theirs = [(w.path.split("/")[0], tuple(w.shape)) for w in reference.weights]
    # Same conv layers with the same names and shapes; only the fc layers are named after the paper here.
    assert [s for _, s in ours] == [s for _, s in theirs]
    assert [n for n, _ in ours if "conv" in n] == [n for n, _ in theirs if "conv" in n]
    del reference


@pytest.mark.parametrize("paper_network", ["alexnet"], indirect=True)
def test_alexnet_grouped_convolutions_see_half_the_channels(paper_network):
    key, model, _, _ = paper_network
    # Kernel shape (kh, kw, C_in / groups, C_out): conv2/4/5 take half of their input channels.
    assert model.get_layer("conv2").kernel.shape == (5, 5, 48, 256)
    assert model.get_layer("conv3").kernel.shape == (3, 3, 256, 384)
    assert model.get_layer("conv4").kernel.shape == (3, 3, 192, 384)
    assert model.get_layer("conv5").kernel.shape == (3, 3, 192, 256)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)


def test_grouped_conv_output_half_depends_only_on_input_half():
    conv = keras.layers.Conv2D(8, 3, padding="same", groups=2)
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 6)).astype(np.float32)
    changed = x.copy()
    changed[..., 3:] += 1.0  # perturb the second half of the input channels only
    y, y_changed = conv(x).numpy(), conv(changed).numpy()
    np.testing.assert_array_equal(y[..., :4], y_changed[..., :4])
    assert np.abs(y[..., 4:] - y_changed[..., 4:]).max() > 1e-3


def test_lrn_equals_the_paper_formula():
    a = np.random.default_rng(1).normal(scale=30.0, size=(2, 3, 4, 11)).astype(np.float32)
    k, n, alpha, beta = 2.0, 5, 1e-4, 0.75
    channels = a.shape[-1]
    expected = np.empty_like(a, dtype=np.float64)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        expected[..., i] = a[..., i] / (k + alpha * (a[..., lo:hi + 1].astype(np.float64) ** 2).sum(-1)) ** beta
    got = LocalResponseNormalization()(a).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert np.abs(got - a).max() > 1e-2  # the scale makes the normalisation matter


@pytest.mark.parametrize("name, size", [("alexnet", 32), ("alexnet", 66), ("vgg16", 31), ("vgg11_lrn", 16)])
def test_too_small_input_fails_early_and_clearly(name, size):
    with pytest.raises(ValueError, match=r"at least \d+×\d+ pixels"):
        helpers.models.build(name, input_shape=(size, size, 3), num_classes=2)


def test_smallest_allowed_inputs_build():
    assert helpers.models.build("alexnet", input_shape=(67, 67, 3), num_classes=2, width=0.25,
                                fc_units=16).get_layer("pool5").output.shape[1:3] == (1, 1)
    assert helpers.models.build("vgg11", input_shape=(32, 32, 3), num_classes=2, width=0.125,
                                fc_units=16).get_layer("block5_pool").output.shape[1:3] == (1, 1)


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="groups"):
        helpers.models.build("alexnet", input_shape=(227, 227, 3), num_classes=2, groups=4)
    with pytest.raises(TypeError, match="fixes"):
        helpers.models.build("vgg16", input_shape=(64, 64, 3), num_classes=2, config="E")
    with pytest.raises(ValueError, match="width"):
        helpers.models.build("vgg13", input_shape=(64, 64, 3), num_classes=2, width=0)


@pytest.mark.parametrize("name, options", [
    ("alexnet", dict(width=0.25, fc_units=64)),
    ("vgg16", dict(width=0.125, fc_units=64, batch_norm=True)),
    ("vgg16_c", dict(width=0.125, fc_units=32)),
])
def test_small_cpu_variants_forward_and_train_one_step(name, options):
    size = 96 if name == "alexnet" else 64
    model = helpers.models.build(name, input_shape=(size, size, 3), num_classes=2, **options)
    x = np.random.default_rng(2).uniform(size=(4, size, size, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1])
    probs = model(x, training=False).numpy()
    assert probs.shape == (4, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.train_on_batch(x, y)
    assert all(np.isfinite(w.numpy()).all() for w in model.trainable_weights)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_width_keeps_grouped_channels_even():
    model = helpers.models.build("alexnet", input_shape=(96, 96, 3), num_classes=2, width=0.3, fc_units=8)
    for name in ("conv2", "conv4", "conv5"):
        assert model.get_layer(name).filters % 2 == 0


def test_analysis_counts_conv_by_hand():
    inputs = keras.Input((10, 12, 4))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", groups=2, name="c")(inputs)   # -> 5×6×6
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)                    # -> 3×4×12
    inner = keras.Sequential([keras.Input((3, 4, 12)), keras.layers.Dense(5, name="d")], name="inner")
    outputs = inner(x)                                                                        # -> 3×4×5
    table = helpers.analysis.layer_table(keras.Model(inputs, outputs))
    rows = {r.name: r for r in table.rows}
    assert rows["c"].macs == 3 * 3 * (4 // 2) * 6 * 5 * 6
    assert rows["dw"].macs == 3 * 3 * 6 * 2 * 3 * 4
    assert rows["inner/d"].macs == 12 * 5 * 3 * 4 and rows["inner/d"].output_shape == (3, 4, 5)
    assert rows["c"].activation_bytes == 5 * 6 * 6 * 4
    assert table.params == keras.Model(inputs, outputs).count_params()


def test_pca_color_jitter_follows_the_training_set_statistics():
    rng = np.random.default_rng(3)
    # Pixels varying along one colour direction only: the jitter must shift along that direction.
    direction = np.array([0.6, 0.7, 0.3])
    images = 0.5 + rng.normal(scale=0.1, size=(64, 8, 8, 1)) * direction
    jitter = PCAColorJitter()
    jitter.adapt(images.astype(np.float32))
    assert abs(abs(jitter.eigenvectors[:, -1] @ direction) - np.linalg.norm(direction)) < 1e-3
    x = np.full((16, 4, 4, 3), 0.5, np.float32)
    np.testing.assert_array_equal(jitter(x, training=False), x)
    shift = jitter(x, training=True).numpy() - x
    assert np.abs(shift).max() > 0
    assert np.allclose(shift[:, :1, :1], shift)  # one colour shift per image, the same at every pixel
    unit = direction / np.linalg.norm(direction)
    residual = shift[:, 0, 0] - np.outer(shift[:, 0, 0] @ unit, unit)
    assert np.abs(residual).max() < 1e-3 * max(np.abs(shift).max(), 1e-9) + 1e-6
    np.testing.assert_allclose(jitter.mean, images.reshape(-1, 3).mean(axis=0), rtol=1e-5)
    clone = PCAColorJitter.from_config(jitter.get_config())
    np.testing.assert_allclose(clone.eigenvalues, jitter.eigenvalues)


def test_alexnet_augmentation_crops_and_evaluation_centre_crops():
    crop = 96
    assert augment.load_size(224) == 256 and augment.load_size(crop) == 110
    batch = np.random.default_rng(4).uniform(size=(2, 110, 110, 3)).astype(np.float32)
    assert augment.alexnet_augmentation(crop)(batch, training=True).shape == (2, crop, crop, 3)
    assert augment.center_crop(crop)(batch).shape == (2, crop, crop, 3)


def test_alexnet_crops_and_flips_are_drawn_per_image():
    # 32 copies of one image in one batch: Keras's RandomCrop would cut all of them at one offset.
    image = np.random.default_rng(5).uniform(size=(1, 40, 40, 3)).astype(np.float32)
    out = augment.alexnet_augmentation(32)(np.repeat(image, 32, axis=0), training=True).numpy()
    distinct = {out[i].tobytes() for i in range(32)}
    assert len(distinct) > 16  # 9 × 9 offsets × 2 flips: nearly every copy differs
    windows = {image[0, t:t + 32, l:l + 32].tobytes() for t in range(9) for l in range(9)}
    windows |= {image[0, t:t + 32, l:l + 32][:, ::-1].tobytes() for t in range(9) for l in range(9)}
    assert distinct <= windows  # each one a true crop (or its mirror) of the image


def test_gradcam_highlights_where_each_class_evidence_is():
    # Hand-set network: channel 0 holds a left-half pattern, channel 1 a right-half one; class 1's score sums
    # channel 0, class 0's sums channel 1. Grad-CAM must point left for class 1 and right for class 0.
    inputs = keras.Input((8, 8, 2))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="conv")
    maps = conv(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(keras.layers.Flatten()(maps))
    model = keras.Model(inputs, outputs)
    weights = np.zeros((8, 8, 2, 2), np.float32)
    weights[:, :, 0, 1] = weights[:, :, 1, 0] = 1.0
    model.get_layer("predictions").set_weights([weights.reshape(128, 2), np.zeros(2, np.float32)])
    conv.set_weights([np.eye(2, dtype=np.float32)[None, None]])
    image = np.zeros((1, 8, 8, 2), np.float32)
    image[0, :, :4, 0] = image[0, :, 4:, 1] = 1.0
    cam1, classes = helpers.gradcam.heatmaps(model, image, "conv", class_index=1)
    cam0, _ = helpers.gradcam.heatmaps(model, image, "conv", class_index=0)
    assert classes.tolist() == [1]
    assert cam1[0][:, :3].min() > 0.9 and cam1[0][:, 5:].max() < 0.1
    assert cam0[0][:, 5:].min() > 0.9 and cam0[0][:, :3].max() < 0.1
    with pytest.raises(ValueError, match="no layer"):
        helpers.gradcam.heatmaps(model, image, "conv9")


@pytest.mark.parametrize("name", ["alexnet", "vgg11"])
def test_mean_subtraction_adds_no_parameters_and_centres_the_input(name):
    mean = [0.5, 0.4, 0.3]
    plain = helpers.models.build(name, input_shape=(96, 96, 3), num_classes=2, width=0.125, fc_units=8)
    centred = helpers.models.build(name, input_shape=(96, 96, 3), num_classes=2, width=0.125, fc_units=8, mean=mean)
    assert centred.count_params() == plain.count_params()
    image = np.full((1, 96, 96, 3), 0.7, np.float32)
    np.testing.assert_allclose(centred.get_layer("subtract_mean")(image)[0, 0, 0], [0.2, 0.3, 0.4], atol=1e-6)
    with pytest.raises(ValueError, match="one value per input channel"):
        helpers.models.build(name, input_shape=(96, 96, 3), num_classes=2, mean=[0.5])


def test_gradcam_uses_pre_softmax_scores_whatever_the_softmax_layer():
    rng = np.random.default_rng(5)
    inputs = keras.Input((6, 6, 3))
    maps = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    flat = keras.layers.Flatten()(maps)
    fused = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(flat))
    logits = keras.layers.Dense(3, name="logits")(flat)
    separate = keras.Model(inputs, keras.layers.Activation("softmax")(logits))
    separate.get_layer("conv").set_weights(fused.get_layer("conv").get_weights())
    separate.get_layer("logits").set_weights(fused.get_layer("head").get_weights())
    images = rng.uniform(size=(2, 6, 6, 3)).astype(np.float32)
    a, classes_a = helpers.gradcam.heatmaps(fused, images, "conv")
    b, classes_b = helpers.gradcam.heatmaps(separate, images, "conv")
    np.testing.assert_array_equal(classes_a, classes_b)
    np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="spatial maps"):
        helpers.gradcam.heatmaps(fused, images, "head")
