"""MNIST from the original IDX files: shapes, values, the paper's normalisation and padding."""

import gzip

import numpy as np
import pytest

from helpers.data import load_mnist, mnist_dataset
from helpers.data.mnist import read_idx


def test_test_split_has_the_published_shape_and_labels():
    x, y = load_mnist("test")
    assert x.shape == (10_000, 28, 28, 1) and x.dtype == np.float32
    assert y.shape == (10_000,) and y.dtype == np.int32
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert 0.0 == x.min() and x.max() == 1.0


def test_train_split_and_limit():
    x, y = load_mnist("train", limit=100)
    assert x.shape == (100, 28, 28, 1)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first training labels


def test_paper_normalisation_and_padding():
    x, _ = load_mnist("test", normalization="paper", pad_to_32=True, limit=50)
    assert x.shape == (50, 32, 32, 1)
    assert np.isclose(x.min(), -0.1) and np.isclose(x.max(), 1.175)
    border = np.concatenate([x[:, :2].ravel(), x[:, -2:].ravel(), x[:, :, :2].ravel(), x[:, :, -2:].ravel()])
    assert np.allclose(border, -0.1)  # the padding is background, not zero


def test_bad_arguments_are_rejected_before_any_work():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="normalization"):
        load_mnist("test", normalization="zscore")


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)


def test_dataset_batches_and_shuffles_the_training_split():
    ds = mnist_dataset("train", batch_size=32, limit=256, seed=1)
    first = [y.numpy().tolist() for _, y in ds.take(2)]
    again = [y.numpy().tolist() for _, y in ds.take(2)]
    x, _ = next(iter(ds))
    assert x.shape == (32, 28, 28, 1)
    assert first != again  # reshuffled each pass
