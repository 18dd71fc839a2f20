"""The model-builder contract that the notebooks and the comparison rely on."""

import pytest

from helpers import models


def test_every_name_builds_through_one_function():
    assert "small_cnn" in models.names()
    model = models.build("small_cnn", input_shape=(28, 28, 1), num_classes=10)
    assert model.output_shape == (None, 10)
    assert model.count_params() == (9 + 1) * 32 + (9 * 32 + 1) * 64 + (5 * 5 * 64 + 1) * 128 + 129 * 10


def test_bad_requests_fail_early_with_clear_messages():
    with pytest.raises(KeyError, match="Unknown model 'lenet4'"):
        models.build("lenet4", input_shape=(32, 32, 1), num_classes=10)
    with pytest.raises(TypeError, match="has no option"):
        models.build("small_cnn", input_shape=(28, 28, 1), num_classes=10, depth=3)
    with pytest.raises(ValueError, match="input_shape"):
        models.build("small_cnn", input_shape=(28, 28), num_classes=10)
    with pytest.raises(ValueError, match="num_classes"):
        models.build("small_cnn", input_shape=(28, 28, 1), num_classes=1)
    with pytest.raises(ValueError, match="at least 10×10"):
        models.build("small_cnn", input_shape=(8, 8, 1), num_classes=10)


@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_small_cnn_minimum_size_is_exact(stages):
    filters = (4,) * stages
    smallest = models.small_cnn.min_input_size(stages)
    model = models.build("small_cnn", input_shape=(smallest, smallest, 1), num_classes=3, filters=filters)
    assert model.get_layer(f"pool{stages}").output.shape[1] == 1  # builds, down to a 1×1 map
    with pytest.raises(ValueError, match=f"at least {smallest}×{smallest}"):  # one pixel less fails in words
        models.build("small_cnn", input_shape=(smallest - 1, smallest - 1, 1), num_classes=3, filters=filters)


# ---------------------------------------------------------------------------------------------------------
# keras.applications' top options, for every builder


import keras  # noqa: E402
import numpy as np  # noqa: E402

from helpers.models import googlenet  # noqa: E402

TOP_CASES = {  # name: (input shape, options) small enough to build in a moment
    "small_cnn": ((28, 28, 1), {}),
    "lenet5": ((32, 32, 1), {"variant": "modern"}),
    "alexnet": ((32, 32, 3), {"cifar": True, "width": 0.125, "fc_units": 16}),
    "vgg11": ((32, 32, 3), {"width": 0.125, "fc_units": 16}),
    "googlenet": ((32, 32, 3), {"cifar": True, "width": 0.125}),
    "resnet18": ((32, 32, 3), {"cifar": True, "width": 0.125}),
    "resnet20": ((32, 32, 3), {}),
    "speedrun": ((32, 32, 3), {"widths": (8, 16, 16)}),
}


@pytest.mark.parametrize("name", list(TOP_CASES))
def test_top_options_as_keras_applications(name):
    shape, options = TOP_CASES[name]
    images = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    model = models.build(name, input_shape=shape, num_classes=7, **options)
    head = model.get_layer("predictions")
    assert isinstance(head, keras.layers.Activation) and head.dtype_policy.compute_dtype == "float32"
    assert np.allclose(model.predict_on_batch(images).sum(axis=1), 1, atol=1e-5)  # softmax by default
    # the scores before the softmax are the input of "predictions", with no private attribute needed
    scores = keras.Model(model.inputs, head.input).predict_on_batch(images)
    assert np.allclose(keras.ops.convert_to_numpy(keras.ops.softmax(scores)), model.predict_on_batch(images), atol=1e-5)

    logits = models.build(name, input_shape=shape, num_classes=7, classifier_activation=None, **options)
    logits.set_weights(model.get_weights())
    assert np.allclose(logits.predict_on_batch(images), scores, atol=1e-5)

    maps = models.build(name, input_shape=shape, num_classes=7, include_top=False, **options)
    assert len(maps.output_shape) == 4 and "predictions" not in [layer.name for layer in maps.layers]
    for pooling in ("avg", "max"):
        pooled = models.build(name, input_shape=shape, num_classes=7, include_top=False, pooling=pooling, **options)
        assert pooled.output_shape == (None, maps.output_shape[-1])


def test_top_options_are_checked():
    with pytest.raises(ValueError, match="pooling must be one of"):
        models.build("resnet20", input_shape=(32, 32, 3), num_classes=10, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="include_top must be True or False"):
        models.build("vgg11", input_shape=(32, 32, 3), num_classes=10, include_top="no")
    with pytest.raises(ValueError, match="Could not interpret activation"):
        models.build("small_cnn", input_shape=(28, 28, 1), num_classes=10, classifier_activation="softmaxx")
    with pytest.raises(ValueError, match="aux_heads=True needs include_top=True"):
        models.build("googlenet", input_shape=(96, 96, 3), num_classes=10, aux_heads=True, include_top=False)
    with pytest.raises(ValueError, match="already a CIFAR net"):
        models.build("resnet20", input_shape=(32, 32, 3), num_classes=10, cifar=True)


# ---------------------------------------------------------------------------------------------------------
# The 32×32 (CIFAR) variants: exact trainable counts, from the reference port or by hand


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def conv_bn(k, cin, cout, groups=1):
    """A bias-free k×k convolution and its batch norm (γ, β)."""
    return k * k * (cin // groups) * cout + 2 * cout


def test_cifar_vgg16_and_resnet18_equal_the_reference_port():
    # kuangliu/pytorch-cifar's VGG('VGG16') has 14,728,266 trainable parameters, its ResNet18() 11,173,962.
    # Its VGG's convolutions keep their biases before BN; ours drop them (BN's β is the same shift): 4,224.
    vgg = models.build("vgg16", input_shape=(32, 32, 3), num_classes=10, cifar=True, batch_norm=True)
    biases = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512
    assert trainable(vgg) == 14_728_266 - biases == 14_724_042
    assert vgg.get_layer("logits").kernel.shape == (512, 10)  # one fc layer after the fifth pooling
    resnet = models.build("resnet18", input_shape=(32, 32, 3), num_classes=10, cifar=True)
    assert trainable(resnet) == 11_173_962
    assert resnet.get_layer("stem_conv").kernel.shape == (3, 3, 3, 64)


def test_cifar_googlenet_counts_by_hand():
    model = models.build("googlenet", input_shape=(32, 32, 3), num_classes=10, cifar=True, batch_norm=True)
    total, channels = conv_bn(3, 3, 192), 192  # the stem: one 3×3 conv to 192 channels
    for row in googlenet.TABLE_1:
        if row == "pool":
            continue
        total += (conv_bn(1, channels, row.n1x1) + conv_bn(1, channels, row.n3x3_reduce)
                  + conv_bn(3, row.n3x3_reduce, row.n3x3) + conv_bn(1, channels, row.n5x5_reduce)
                  + conv_bn(5, row.n5x5_reduce, row.n5x5) + conv_bn(1, channels, row.pool_proj))
        channels = row.n1x1 + row.n3x3 + row.n5x5 + row.pool_proj
    total += channels * 10 + 10
    assert channels == 1024 and trainable(model) == total == 5_871_914


def test_cifar_alexnet_counts_by_hand():
    model = models.build("alexnet", input_shape=(32, 32, 3), num_classes=10, cifar=True, batch_norm=True)
    convs = (conv_bn(3, 3, 96) + conv_bn(5, 96, 256, groups=2) + conv_bn(3, 256, 384)
             + conv_bn(3, 384, 384, groups=2) + conv_bn(3, 384, 256, groups=2))
    # pools 32 → 15 → 7 → 3, so fc6 reads 3 × 3 × 256 values
    fcs = (3 * 3 * 256 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 10
    assert model.get_layer("pool5").output.shape[1:] == (3, 3, 256)
    assert trainable(model) == convs + fcs == 28_566_762
    plain = models.build("alexnet", input_shape=(32, 32, 3), num_classes=10, cifar=True)
    assert "norm1" in [layer.name for layer in plain.layers]  # without BN, the paper's LRN stays


def test_lenet5_on_colour_images_counts_by_hand():
    # Table I's 60,000 with C1 reading 3 channels (5·5·3·6 + 6 = 456 instead of 156) and an 84 → 10 softmax
    # layer (850) in place of the RBF output's fixed prototypes (0 trainable).
    paper = models.build("lenet5", input_shape=(32, 32, 3), num_classes=10, variant="paper", output="softmax")
    assert trainable(paper) == 60_000 - 156 + 456 + 850 == 61_150
    modern = models.build("lenet5", input_shape=(32, 32, 3), num_classes=10, variant="modern")
    assert trainable(modern) == 456 + (5 * 5 * 6 + 1) * 16 + (5 * 5 * 16 + 1) * 120 + 121 * 84 + 85 * 10 == 62_006
