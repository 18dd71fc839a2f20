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
