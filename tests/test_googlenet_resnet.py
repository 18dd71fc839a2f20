"""GoogLeNet and ResNet builders: exact parameter counts from the papers / torchvision, and their options.

Big networks are slow to build, so each is built once per module (fixtures) and only counted.
"""

import keras
import numpy as np
import pytest

import helpers.models
from helpers.layers import ZeroPadShortcut
from helpers.models import googlenet

IMAGENET = dict(input_shape=(224, 224, 3), num_classes=1000)
CIFAR = dict(input_shape=(32, 32, 3), num_classes=10)


def trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def layer_types(model, cls) -> list:
    return [layer for layer in model.layers if isinstance(layer, cls)]


_BUILT: dict = {}


def built(name, **kwargs):
    """Each (name, options) is built once per test run: the big nets take seconds to construct."""
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _BUILT:
        _BUILT[key] = helpers.models.build(name, **kwargs)
    return _BUILT[key]


# ---------------------------------------------------------------- GoogLeNet


@pytest.fixture(scope="module")
def googlenet_plain():
    return helpers.models.build("googlenet", **IMAGENET)


@pytest.fixture(scope="module")
def googlenet_aux():
    return helpers.models.build("googlenet", aux_heads=True, **IMAGENET)


def test_googlenet_faithful_count(googlenet_plain):
    assert googlenet_plain.count_params() == 6_998_552
    assert trainable(googlenet_plain) == 6_998_552  # no BN: every parameter is trainable
    assert googlenet_plain.output_shape == (None, 1000)
    assert not layer_types(googlenet_plain, keras.layers.BatchNormalization)


def test_googlenet_with_aux_heads_count(googlenet_aux):
    assert googlenet_aux.count_params() == 13_378_280
    assert sorted(googlenet_aux.output) == ["aux1", "aux2", "main"]


def test_googlenet_true_5x5_branch_and_lrn(googlenet_plain):
    assert googlenet_plain.get_layer("inception_4e_5x5").kernel.shape == (5, 5, 32, 128)
    assert googlenet_plain.get_layer("inception_5b_output").output.shape[1:] == (7, 7, 1024)
    assert len(layer_types(googlenet_plain, helpers.layers.LocalResponseNormalization)) == 2


def test_inference_model_drops_aux_and_shares_weights(googlenet_aux):
    inference = googlenet.inference_model(googlenet_aux)
    assert len(inference.outputs) == 1
    assert inference.count_params() == 6_998_552
    assert not [layer.name for layer in inference.layers if layer.name.startswith("aux")]
    training_vars = {id(v) for v in googlenet_aux.weights}
    assert all(id(v) in training_vars for v in inference.weights)  # the same variables, not copies
    images = np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(inference(images, training=False)),
                                  np.asarray(googlenet_aux(images, training=False)["main"]))


def test_aux_losses_are_weighted_0_3():
    import tensorflow as tf

    model = helpers.models.build("googlenet", input_shape=(65, 65, 3), num_classes=2, aux_heads=True, width=0.125)
    googlenet.compile_with_aux(model, keras.optimizers.SGD(0.01))
    images = np.random.default_rng(1).random((4, 65, 65, 3), dtype=np.float32)
    labels = np.array([0, 1, 0, 1])
    x, targets = next(iter(googlenet.with_aux_targets(tf.data.Dataset.from_tensor_slices((images, labels)).batch(4))))
    assert sorted(targets) == ["aux1", "aux2", "main"]
    predictions = model(x, training=False)
    total = float(model.compute_loss(x=x, y=targets, y_pred=predictions, training=False))
    each = {k: float(keras.losses.sparse_categorical_crossentropy(labels, predictions[k]).numpy().mean())
            for k in targets}
    assert total == pytest.approx(each["main"] + 0.3 * (each["aux1"] + each["aux2"]), rel=1e-5)


def test_compile_with_aux_refuses_single_output_model():
    model = helpers.models.build("googlenet", input_shape=(32, 32, 3), num_classes=2, width=0.125)
    with pytest.raises(ValueError, match="aux_heads=True"):
        googlenet.compile_with_aux(model, "sgd")


def test_inception_module_naive_and_reduced_counts():
    c_in = 192  # module 3a's input: 28×28×192
    inputs = keras.Input((28, 28, c_in))
    naive = keras.Model(inputs, googlenet.inception_module(inputs, 64, 128, 32, name="naive"))
    reduced = keras.Model(inputs, googlenet.inception_module(inputs, 64, 128, 32, n3x3_reduce=96, n5x5_reduce=16,
                                                               pool_proj=32, name="reduced"))
    conv = lambda k, c, f: (k * k * c + 1) * f  # noqa: E731
    assert naive.count_params() == conv(1, c_in, 64) + conv(3, c_in, 128) + conv(5, c_in, 32)
    assert naive.output_shape == (None, 28, 28, 64 + 128 + 32 + c_in)  # the pool branch keeps all 192 channels
    assert reduced.count_params() == (conv(1, c_in, 64) + conv(1, c_in, 96) + conv(3, 96, 128)
                                      + conv(1, c_in, 16) + conv(5, 16, 32) + conv(1, c_in, 32))
    assert reduced.output_shape == (None, 28, 28, 256)


def test_inception_module_rejects_half_reduced_spec():
    inputs = keras.Input((8, 8, 16))
    with pytest.raises(ValueError, match="naive module"):
        googlenet.inception_module(inputs, 8, 8, 8, n3x3_reduce=4)


def test_googlenet_too_small_input():
    with pytest.raises(ValueError, match="at least 32×32"):
        helpers.models.build("googlenet", input_shape=(31, 64, 3), num_classes=2)
    with pytest.raises(ValueError, match="at least 65×65"):
        helpers.models.build("googlenet", input_shape=(64, 64, 3), num_classes=2, aux_heads=True)


def test_googlenet_small_forward_pass():
    model = helpers.models.build("googlenet", input_shape=(65, 65, 3), num_classes=2, aux_heads=True, width=0.25)
    out = model(np.zeros((3, 65, 65, 3), np.float32), training=False)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"main": (3, 2), "aux1": (3, 2), "aux2": (3, 2)}
    np.testing.assert_allclose(np.asarray(out["main"]).sum(axis=1), 1.0, rtol=1e-5)


def test_googlenet_batch_norm_variant():
    model = helpers.models.build("googlenet", input_shape=(32, 32, 3), num_classes=2, width=0.125, batch_norm=True)
    convs = layer_types(model, keras.layers.Conv2D)
    assert len(layer_types(model, keras.layers.BatchNormalization)) == len(convs) == 57  # 3 stem + 9 × 6
    assert not any(conv.use_bias for conv in convs)
    assert not layer_types(model, helpers.layers.LocalResponseNormalization)
    assert model(np.zeros((1, 32, 32, 3), np.float32), training=False).shape == (1, 2)


# ---------------------------------------------------------------- ResNet, ImageNet configurations

IMAGENET_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.mark.parametrize("name", IMAGENET_COUNTS)
def test_resnet_imagenet_trainable_counts(name):
    # Only ResNet-50 is kept (the stride test reuses it); the others are large and used once.
    model = built(name, **IMAGENET) if name == "resnet50" else helpers.models.build(name, **IMAGENET)
    assert trainable(model) == IMAGENET_COUNTS[name]
    assert not any(getattr(layer, "use_bias", False) for layer in layer_types(model, keras.layers.Conv2D))


def test_bottleneck_stride_placement_keeps_count():
    model = helpers.models.build("resnet50", stride_on="3x3", **IMAGENET)
    assert trainable(model) == IMAGENET_COUNTS["resnet50"]
    assert model.get_layer("stage2_block1_1_conv").strides == (1, 1)
    assert model.get_layer("stage2_block1_2_conv").strides == (2, 2)
    paper = built("resnet50", **IMAGENET)  # the default: the paper's (and Keras's) placement
    assert paper.get_layer("stage2_block1_1_conv").strides == (2, 2)
    assert paper.get_layer("stage2_block1_2_conv").strides == (1, 1)
    with pytest.raises(ValueError, match="bottleneck"):
        helpers.models.build("resnet18", input_shape=(64, 64, 3), num_classes=10, stride_on="3x3")


# ---------------------------------------------------------------- ResNet, CIFAR configurations

CIFAR_COUNTS = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
                "resnet110": 1_727_962}


@pytest.mark.parametrize("name", CIFAR_COUNTS)
def test_resnet_cifar_counts(name):
    model = built(name, **CIFAR)
    assert trainable(model) == CIFAR_COUNTS[name]
    assert len(layer_types(model, ZeroPadShortcut)) == 2  # option A: two parameter-free stage transitions


def test_shortcut_options_parameter_differences():
    counts = {o: trainable(helpers.models.build("resnet20", shortcut=o, **CIFAR)) for o in "BC"}
    counts["A"] = trainable(built("resnet20", **CIFAR))  # the CIFAR default
    projection = lambda c_in, c_out: c_in * c_out + 2 * c_out  # noqa: E731  1×1 conv without bias + BN γ, β
    at_transitions = projection(16, 32) + projection(32, 64)
    assert counts["B"] - counts["A"] == at_transitions == 2_752
    identity_blocks = 3 * projection(16, 16) + 2 * projection(32, 32) + 2 * projection(64, 64)
    assert counts["C"] - counts["A"] == at_transitions + identity_blocks == 14_240


def test_plain_twins_have_no_shortcuts():
    for depth, blocks in ((20, 9), (56, 27)):
        plain = helpers.models.build(f"plain{depth}", **CIFAR)
        residual = built(f"resnet{depth}", **CIFAR)
        assert not layer_types(plain, keras.layers.Add)
        assert len(layer_types(residual, keras.layers.Add)) == blocks
        assert trainable(plain) == trainable(residual)  # option A shortcuts add no parameters
    plain18 = helpers.models.build("plain18", input_shape=(64, 64, 3), num_classes=10)
    assert not layer_types(plain18, keras.layers.Add) and plain18.name == "plain18"
    with pytest.raises(ValueError, match="plain net"):
        helpers.models.build("plain20", shortcut="B", **CIFAR)
    with pytest.raises(TypeError, match="fixes"):
        helpers.models.build("resnet20", plain=True, **CIFAR)


def test_zero_init_last_bn_and_bad_options():
    model = helpers.models.build("resnet20", zero_init_last_bn=True, **CIFAR)
    np.testing.assert_array_equal(model.get_layer("stage1_block1_2_bn").gamma.numpy(), 0.0)
    np.testing.assert_array_equal(model.get_layer("stage1_block1_1_bn").gamma.numpy(), 1.0)
    with pytest.raises(ValueError, match="shortcut"):
        helpers.models.build("resnet20", shortcut="D", **CIFAR)


def test_resnet_too_small_input():
    with pytest.raises(ValueError, match="at least 32×32"):
        helpers.models.build("resnet18", input_shape=(16, 16, 3), num_classes=2)
    with pytest.raises(ValueError, match="at least 4×4"):
        helpers.models.build("resnet20", input_shape=(3, 32, 3), num_classes=2)


def test_resnet_forward_pass_and_reload(tmp_path):
    model = helpers.models.build("resnet20", input_shape=(24, 24, 1), num_classes=3, width=0.5)
    images = np.random.default_rng(2).random((2, 24, 24, 1), dtype=np.float32)
    out = np.asarray(model(images, training=False))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "r20.keras")
    again = keras.models.load_model(tmp_path / "r20.keras")  # option-A layer round-trips through get_config
    np.testing.assert_allclose(np.asarray(again(images, training=False)), out, rtol=1e-5, atol=1e-6)
