"""Published weights in the course's networks: keras.applications' VGG16/ResNet50 weights give the same outputs in
the course's VGG-16 and ResNet-50 (tested offline with ``weights=None``: random but fixed weights), and a missing
weight file offline is one clear error."""

import urllib.error

import keras
import numpy as np
import pytest

import helpers.models
import helpers.pretrained as pretrained


def _randomise_statistics(model, seed=0):
    """Non-trivial BN statistics and conv biases, so that a wrong fold cannot pass by accident."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 2.0, n)])
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])


def _pair(name, include_top):
    shape = pretrained.IMAGENET_SIZE if include_top else (64, 64, 3)
    pooling = None if include_top else "avg"
    keras.utils.set_random_seed(1)
    source = pretrained.reference(name, weights=None, include_top=include_top, input_shape=shape, pooling=pooling,
                                  classifier_activation=None)
    _randomise_statistics(source)
    target = helpers.models.build(name, input_shape=shape, num_classes=1000, include_top=include_top,
                                  pooling=pooling, classifier_activation=None)
    images = np.random.default_rng(2).uniform(0, 255, (2, *shape)).astype("float32")
    return source, target, pretrained.preprocess_input(name)(images)


@pytest.mark.parametrize("include_top", [True, False], ids=["top", "no_top"])
@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_same_outputs_as_keras_applications(name, include_top):
    source, target, images = _pair(name, include_top)
    assert pretrained.transfer_weights(source, target, name) == len([l for l in target.layers if l.weights])
    expected = source(images, training=False).numpy()
    got = target(images, training=False).numpy()
    assert got.shape == expected.shape == (2, 1000 if include_top else {"vgg16": 512, "resnet50": 2048}[name])
    # float32 through 16 or 50 layers in a different order of operations: 1e-5 of the output's scale
    scale = np.abs(expected).max()
    assert scale > 0 and np.abs(got - expected).max() <= 1e-5 * scale


def test_the_bias_fold_is_needed():
    """Without folding the conv biases into the BN means, the outputs differ: the test above can fail."""
    source, target, images = _pair("resnet50", include_top=False)
    pretrained.transfer_weights(source, target, "resnet50")
    bn = target.get_layer("stem_bn")
    gamma, beta, mean, variance = bn.get_weights()
    bias = source.get_layer("conv1_conv").bias.numpy()
    np.testing.assert_allclose(mean, source.get_layer("conv1_bn").moving_mean.numpy() - bias, rtol=1e-6)
    bn.set_weights([gamma, beta, mean + bias, variance])  # the copy without the fold
    expected = source(images, training=False).numpy()
    assert np.abs(target(images, training=False).numpy() - expected).max() > 1e-3 * np.abs(expected).max()


def test_fold_conv_bias():
    np.testing.assert_array_equal(pretrained.fold_conv_bias([1.0, -2.0], [0.5, 0.5]), [-0.5, 2.5])


def test_resnet50_stem_pads_like_the_reference():
    """Symmetric padding 3 (conv) and 1 (pool), as keras.applications and torchvision: 224 → 112 → 56."""
    model = helpers.models.build("resnet50", input_shape=(224, 224, 3), num_classes=1000)
    assert model.get_layer("stem_pad").padding == ((3, 3), (3, 3))
    assert model.get_layer("stem_conv").output.shape[1:3] == (112, 112)
    assert model.get_layer("stem_pool").output.shape[1:3] == (56, 56)


def test_errors_in_words():
    with pytest.raises(ValueError, match="mapped for.*alexnet"):
        pretrained.build("alexnet", weights=None)
    with pytest.raises(ValueError, match="224×224×3"):
        pretrained.build("vgg16", weights=None, input_shape=(64, 64, 3))
    source = pretrained.reference("vgg16", weights=None, include_top=False, input_shape=(32, 32, 3))
    target = helpers.models.build("vgg16", input_shape=(32, 32, 3), num_classes=1000)
    with pytest.raises(ValueError, match="no layer 'block1_conv1'|No weights for"):
        pretrained.transfer_weights(source, target, "vgg16")


def test_offline_missing_weights_name_file_folder_and_url(monkeypatch, tmp_path):
    """No internet and an empty cache: one error naming the file, the cache folder and the URL."""
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no internet (test)")

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    with pytest.raises(pretrained.WeightsUnavailableError) as caught:
        pretrained.build("vgg16", include_top=False, input_shape=(32, 32, 3))
    message = str(caught.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message
    assert pretrained.weights_url("vgg16", include_top=False) in message
