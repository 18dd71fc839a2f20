"""CIFAR-10: the official archive becomes the PNG tree pixel for pixel; the tree loads once into a cache that
notices changes; bad files are reported; the pipelines split, normalise and augment as the paper says."""

import io
import os
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import settings
from helpers.data import DatasetUnavailableError, cifar10, load_cifar10
from helpers.data import cifar
from helpers.data.augment import pad_crop_flip

PER_CLASS = {"train": 3, "test": 2}  # images per class taken from the shared tree for the small trees


def _shared_root():
    """The data folder's tree: the shipped copy, or the one the loader converts from a fresh download."""
    return cifar.ensure_cifar10()


def _sample(split, per_class):
    """``per_class`` real file paths of each class of ``split``, in class order."""
    return [sorted((_shared_root() / split / name).glob("*.png"))[:per_class] for name in cifar.CLASS_NAMES]


def _pickle_batch(paths_by_class, label):
    """A batch in the official format: channel-major rows, labels, file names (all as bytes keys)."""
    rows, labels, names = [], [], []
    for k, paths in enumerate(paths_by_class):
        for path in paths:
            pixels = np.asarray(Image.open(path))
            rows.append(pixels.transpose(2, 0, 1).reshape(-1))
            labels.append(k)
            names.append(path.name.encode())
    return pickle.dumps({b"batch_label": label.encode(), b"data": np.stack(rows), b"labels": labels,
                         b"filenames": names})


def _write_archive(path):
    """A tiny cifar-10-python.tar.gz: five training batches and a test batch of real images, and the meta file."""
    train = _sample("train", 5 * PER_CLASS["train"])
    batches = {f"data_batch_{i + 1}": _pickle_batch([paths[i::5] for paths in train], f"training batch {i + 1}")
               for i in range(5)}
    batches["test_batch"] = _pickle_batch(_sample("test", PER_CLASS["test"]), "testing batch 1")
    batches["batches.meta"] = pickle.dumps({b"label_names": [n.encode() for n in cifar.CLASS_NAMES],
                                            b"num_cases_per_batch": 10000, b"num_vis": 3072})
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def small_tree(tmp_path):
    """A complete-looking tree (every class folder) with a few real images per class."""
    root = tmp_path / "cifar10"
    for split, per_class in PER_CLASS.items():
        for name, paths in zip(cifar.CLASS_NAMES, _sample(split, per_class)):
            (root / split / name).mkdir(parents=True)
            for path in paths:
                shutil.copy2(path, root / split / name / path.name)
    return root


def test_class_order_is_the_official_one():
    assert cifar.CLASS_NAMES == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                 "truck")


def test_archive_converts_to_the_same_tree_pixel_for_pixel(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    _write_archive(archive)
    root = cifar.convert_archive(archive, tmp_path / "data" / "cifar10")
    for split, per_class in (("train", 5 * PER_CLASS["train"]), ("test", PER_CLASS["test"])):
        for name, sources in zip(cifar.CLASS_NAMES, _sample(split, per_class)):
            written = sorted((root / split / name).iterdir())
            assert [p.name for p in written] == [p.name for p in sources]  # same names, same classes
            for ours, theirs in zip(written, sources):
                assert np.array_equal(np.asarray(Image.open(ours)), np.asarray(Image.open(theirs)))
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".")]  # no scratch left behind
    with pytest.raises(FileExistsError):
        cifar.convert_archive(archive, root)


def test_offline_download_names_the_folder_the_url_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "URL", (tmp_path / "nowhere" / cifar.ARCHIVE).as_uri())  # fails at once
    with pytest.raises(DatasetUnavailableError) as error:
        cifar.ensure_cifar10(tmp_path)
    text = str(error.value)
    assert str(tmp_path / "cifar10") in text and cifar.URL in text and settings.DATA_DIR_ENV in text


def test_an_incomplete_tree_is_an_error_not_a_download(tmp_path):
    (tmp_path / "cifar10" / "train").mkdir(parents=True)
    with pytest.raises(DatasetUnavailableError, match="incomplete"):
        cifar.ensure_cifar10(tmp_path)


def test_wrong_class_folders_are_named(small_tree):
    (small_tree / "train" / "truck").rename(small_tree / "train" / "lorry")
    with pytest.raises(ValueError, match=r"missing: \['truck'\]; unexpected: \['lorry'\]"):
        cifar.read_split(small_tree / "train")


def test_bad_files_are_skipped_or_converted_and_reported(small_tree):
    folder = small_tree / "train"
    good = next((folder / "cat").iterdir())
    (folder / "cat" / "truncated.png").write_bytes(good.read_bytes()[:60])
    (folder / "cat" / "empty.png").write_bytes(b"")
    (folder / "dog" / "notes.png").write_text("not an image\n")
    Image.open(good).resize((64, 64)).save(folder / "dog" / "big.png")
    Image.open(good).convert("L").save(folder / "bird" / "gray.png")
    images, labels, report = cifar.read_split(folder)
    reasons = dict(report.skipped)
    assert set(reasons) == {"cat/truncated.png", "cat/empty.png", "dog/notes.png", "dog/big.png"}
    assert reasons["cat/empty.png"] == "empty file"
    assert "not 32×32" in reasons["dog/big.png"]
    assert dict(report.converted) == {"bird/gray.png": "L image"}
    assert len(images) == len(labels) == 10 * PER_CLASS["train"] + 1
    assert report.counts["bird"] == PER_CLASS["train"] + 1 and report.counts["cat"] == PER_CLASS["train"]
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)


def test_the_cache_is_used_and_rebuilt_when_the_tree_changes(small_tree, monkeypatch):
    folder = small_tree / "test"
    first, labels, _ = cifar.read_split(folder)
    assert cifar._cache_file(folder).is_file()

    def no_decoding(path):
        raise AssertionError(f"decoded {path} although the cache is current")

    with monkeypatch.context() as patch:
        patch.setattr(cifar, "_decode", no_decoding)
        again, labels_again, _ = cifar.read_split(folder)
    assert np.array_equal(first, again) and np.array_equal(labels, labels_again)

    # A changed file (new pixels, new mtime) and an added file both invalidate the cache.
    target = sorted((folder / "ship").iterdir())[0]
    Image.fromarray(255 - np.asarray(Image.open(target))).save(target)
    os.utime(target, ns=(1, 1))
    shutil.copy(target, folder / "ship" / "extra.png")
    changed, changed_labels, report = cifar.read_split(folder)
    assert len(changed) == len(first) + 1 and report.counts["ship"] == PER_CLASS["test"] + 1
    index = np.flatnonzero(changed_labels == cifar.CLASS_NAMES.index("ship"))
    assert any(np.array_equal(changed[i], np.asarray(Image.open(target))) for i in index)


def test_the_shared_tree_holds_the_whole_dataset():
    x_train, y_train = load_cifar10("train")
    x_test, y_test = load_cifar10("test")
    assert x_train.shape == (50_000, 32, 32, 3) and x_test.shape == (10_000, 32, 32, 3)
    assert np.bincount(y_train).tolist() == [5000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    # The published per-channel statistics of the training pixels.
    mean = x_train.reshape(-1, 3).mean(axis=0) / 255
    assert np.allclose(mean, [0.4914, 0.4822, 0.4465], atol=1e-4)
    # Labels follow the folders: the first test image of class k is the first file of its folder.
    for k, name in enumerate(cifar.CLASS_NAMES[:3]):
        first = sorted((_shared_root() / "test" / name).glob("*.png"))[0]
        assert np.array_equal(x_test[np.flatnonzero(y_test == k)[0]], np.asarray(Image.open(first)))


def test_pipelines_split_normalise_and_batch():
    data = cifar10(batch_size=256, train_samples=2000, val_samples=500, test_samples=1000, seed=3)
    assert (data.train_count, data.val_count, data.test_count) == (2000, 500, 1000)
    seen = {"train": [], "val": [], "test": []}
    for split in seen:
        for images, labels in getattr(data, split):
            assert images.dtype == tf.float32 and images.shape[1:] == (32, 32, 3)
            seen[split].append(labels.numpy())
    counts = {split: np.bincount(np.concatenate(labels), minlength=10) for split, labels in seen.items()}
    assert counts["train"].tolist() == [200] * 10 and counts["val"].tolist() == [50] * 10  # stratified
    assert counts["test"].tolist() == [100] * 10
    images, _ = next(iter(data.test))
    assert np.allclose(data.display(images.numpy()[:4]) * 255, data.test_images[:4], atol=1e-3)
    with pytest.raises(ValueError, match="validation"):
        cifar10(batch_size=8, validation=50_000)


def test_validation_comes_from_train_and_never_overlaps_it():
    """The split cifar10() makes, read back from its own pipelines: 45,000 + 5,000 of the training images, each
    once, none in both; the validation images stratified."""
    import collections

    x_train, y_train = load_cifar10("train")
    data = cifar10(batch_size=1000, augment=False, seed=0)

    def images_of(pipeline):  # back to the stored uint8 pixels, as bytes, one per image
        out = collections.Counter()
        for images, labels in pipeline:
            pixels = np.rint(data.display(images.numpy()) * 255).astype(np.uint8)
            out.update(p.tobytes() + bytes([int(label)]) for p, label in zip(pixels, labels.numpy()))
        return out

    train, val = images_of(data.train), images_of(data.val)
    assert sum(train.values()) == data.train_count == 45_000 and sum(val.values()) == data.val_count == 5000
    everything = collections.Counter(p.tobytes() + bytes([int(label)]) for p, label in zip(x_train, y_train))
    assert train + val == everything  # every training image exactly once across the two (duplicates counted)
    assert all(everything[k] > 1 for k in set(train) & set(val))  # in both only if stored twice in the files
    assert np.bincount([k[-1] for k in val.elements()], minlength=10).tolist() == [500] * 10


def test_every_image_of_a_batch_gets_its_own_crop_and_flip():
    image = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    batch = pad_crop_flip(tf.repeat(image, 64, axis=0), seed=tf.constant([1, 2])).numpy()
    assert batch.shape == (64, 32, 32, 3)
    assert len({b.tobytes() for b in batch}) > 20  # 81 offsets × 2 flips: identical inputs come out different
    # Each output is a shifted (maybe mirrored) window of the zero-padded input.
    padded = np.pad(image[0], ((4, 4), (4, 4), (0, 0)))
    windows = {padded[r:r + 32, c:c + 32].tobytes() for r in range(9) for c in range(9)}
    windows |= {padded[r:r + 32, c:c + 32][:, ::-1].tobytes() for r in range(9) for c in range(9)}
    assert all(b.tobytes() in windows for b in batch)
    with pytest.raises(ValueError, match="batch"):
        pad_crop_flip(image[0])
