"""Transfer learning (notebook 07): the four ways are set up as they say, weights move by name, pretraining is
reused only by a run with the same settings, and the held-out split never touches the validation images."""

import dataclasses

import keras
import numpy as np
import pytest

import helpers.models
import helpers.recipes
import helpers.transfer as transfer
from helpers.data import cats_and_dogs


def _base(size=32):
    return helpers.models.build("resnet20", input_shape=(size, size, 3), num_classes=2, include_top=False,
                                pooling="avg")


@pytest.fixture(scope="module")
def source():
    keras.utils.set_random_seed(3)
    model = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # statistics unlike a fresh network's, so that inference mode is visible
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.5, n),
                               rng.uniform(0.5, 2.0, n)])
    return model


def test_copy_weights_moves_every_shared_layer_to_another_input_size(source):
    base = _base(64)
    copied = transfer.copy_weights(source, base)
    assert "logits" not in copied and len(copied) == len([l for l in base.layers if l.weights])
    for name in ("stem_conv", "stage3_block3_2_bn"):
        for ours, theirs in zip(base.get_layer(name).weights, source.get_layer(name).weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_copy_weights_refuses_a_different_network(source):
    wider = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=2, include_top=False,
                                 pooling="avg", width=2.0)
    with pytest.raises(ValueError, match="stem_conv.*not the same network"):
        transfer.copy_weights(source, wider)
    with pytest.raises(ValueError, match="nothing to copy"):
        transfer.copy_weights(source, helpers.models.build("lenet5", input_shape=(32, 32, 1), num_classes=10))


BN_PARAMETERS = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)  # γ and β of ResNet-20's 19 batch norms


@pytest.mark.parametrize("way, trainable", [("scratch", 269_202), ("frozen", 64 * 2 + 2),
                                            ("finetune", 269_202 - BN_PARAMETERS), ("finetune_bn_train", 269_202)])
def test_each_way_learns_what_it_says(source, way, trainable):
    model = transfer.with_new_classifier(_base(), way, 2, pretrained=source)
    assert transfer.trainable_count(model) == trainable
    assert model.output_shape == (None, 2) and model.get_layer("predictions").dtype_policy.name == "float32"
    stem = model.layers[1].get_layer("stem_conv").kernel.numpy()
    assert np.array_equal(stem, source.get_layer("stem_conv").kernel.numpy()) == (way != "scratch")


@pytest.mark.parametrize("way, inference", [("frozen", True), ("finetune", True), ("finetune_bn_train", False),
                                            ("scratch", False)])
def test_batch_norms_in_inference_mode_only_where_said(source, way, inference):
    """In training mode a BN normalises with the batch's statistics; in inference mode with its moving ones, so a
    model call with training=True gives the inference-mode output exactly when the BNs stay in inference mode."""
    model = transfer.with_new_classifier(_base(), way, 2, pretrained=source)
    images = np.random.default_rng(1).normal(0, 1, (8, 32, 32, 3)).astype("float32")
    same = np.allclose(model(images, training=True).numpy(), model(images, training=False).numpy(), atol=1e-6)
    assert same == inference


def test_training_false_at_build_time_does_not_survive_fit():
    """Why the fine-tuning way freezes its batch norms instead of building with ``base(x, training=False)``: in
    Keras 3 the outer call's training=True (what fit passes) overrides it (keras-team/keras#20285)."""
    base = _base()
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, base(inputs, training=False))
    images = np.random.default_rng(1).normal(0, 1, (8, 32, 32, 3)).astype("float32")
    assert not np.allclose(model(images, training=True).numpy(), model(images, training=False).numpy(), atol=1e-6)


def test_ways_and_weights_are_checked(source):
    with pytest.raises(ValueError, match="way must be one of"):
        transfer.with_new_classifier(_base(), "partly", 2, pretrained=source)
    with pytest.raises(ValueError, match="pass pretrained="):
        transfer.with_new_classifier(_base(), "finetune", 2)
    maps = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=2, include_top=False)
    with pytest.raises(ValueError, match="pooling='avg'"):
        transfer.with_new_classifier(maps, "scratch", 2)


def test_pretraining_is_reused_only_with_the_same_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (64, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 64)
    recipe = helpers.recipes.SHORT
    common = dict(epochs=1, train_count=64, batch_size=32, run="pretrain")

    def model():
        keras.utils.set_random_seed(0)
        return helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)

    first, history = transfer.pretrain(model(), (x, y), recipe=recipe, config={"seed": 1}, **common)
    assert history is not None
    again, history = transfer.pretrain(model(), (x, y), recipe=recipe, config={"seed": 1}, **common)
    assert history is None and "Reusing" in capsys.readouterr().out
    for a, b in zip(first.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    other = dataclasses.replace(recipe, learning_rate=0.05)
    assert transfer.pretrain(model(), (x, y), recipe=other, config={"seed": 1}, **common)[1] is not None
    assert transfer.pretrain(model(), (x, y), recipe=other, config={"seed": 2}, **common)[1] is not None


def test_holdout_comes_from_the_training_folder():
    data = cats_and_dogs(image_size=16, batch_size=50, holdout=0.2, seed=0, cache=False)
    usable = sum(data.train_report.counts.values())  # whatever this copy of the dataset holds
    assert data.holdout_count == round(usable * 0.2) and data.train_count + data.holdout_count == usable
    assert data.val_count == sum(data.val_report.counts.values())
    labels = np.concatenate([y.numpy() for _, y in data.holdout])
    assert len(labels) == data.holdout_count and abs(labels.mean() - 0.5) < 0.01  # stratified: half of each
    assert data.holdout_split == data.holdout_count and "split off" not in str(data)
    # QUICK's val_samples cuts the held-out images too, and the description says so.
    cut = cats_and_dogs(image_size=16, batch_size=50, holdout=0.2, val_samples=64, seed=0, cache=False)
    assert cut.holdout_count == 64 and cut.holdout_split == data.holdout_split
    assert f"of {data.holdout_split} split off; val_samples keeps 64" in str(cut)
    with pytest.raises(ValueError, match="holdout must be a fraction"):
        cats_and_dogs(image_size=16, batch_size=50, holdout=1.5)
