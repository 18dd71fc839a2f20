"""Image folders: real JPEGs stream through tf.data; broken and odd files are skipped or converted, and reported."""

import io
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from helpers import settings
from helpers.data import DatasetUnavailableError, cats_and_dogs, image_folder, scan_image_folder
from helpers.data.images import ensure_cats_and_dogs

SKIPPED = {"cats/truncated.jpg", "cats/empty.jpg", "dogs/notes.jpg"}
CONVERTED = {"cats/png_inside.jpg", "dogs/anim.gif", "dogs/old.bmp", "cats/gray.jpg", "dogs/cmyk.jpg", "cats/web.webp"}


def _real_images(kind, n):
    folder = settings.data_dir() / "cats_and_dogs_filtered" / "train" / kind
    return sorted(folder.glob("*.jpg"))[:n]


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    """A train/<class>/ folder of real photos plus every kind of bad file the loader must survive."""
    root = tmp_path_factory.mktemp("messy") / "train"
    for kind in ("cats", "dogs"):
        (root / kind).mkdir(parents=True)
        for src in _real_images(kind, 6):
            shutil.copy(src, root / kind / src.name)
    photo = Image.open(_real_images("cats", 1)[0]).convert("RGB")
    jpeg = (root / "cats" / "cat.0.jpg").read_bytes()
    (root / "cats" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "cats" / "empty.jpg").write_bytes(b"")
    (root / "dogs" / "notes.jpg").write_text("this is a text file with a .jpg name\n")
    photo.save(root / "cats" / "png_inside.jpg", format="PNG")
    photo.save(root / "dogs" / "anim.gif", format="GIF")
    photo.save(root / "dogs" / "old.bmp", format="BMP")
    photo.convert("L").save(root / "cats" / "gray.jpg", format="JPEG")
    photo.convert("CMYK").save(root / "dogs" / "cmyk.jpg", format="JPEG")
    photo.save(root / "cats" / "web.webp", format="WEBP", lossless=True)
    return root


def test_scan_skips_broken_files_and_reports_them(messy_folder):
    paths, labels, report = scan_image_folder(messy_folder)
    assert {name for name, _ in report.skipped} == SKIPPED
    assert {name for name, _ in report.converted} == CONVERTED
    assert len(paths) == len(labels) == 12 + len(CONVERTED)
    assert report.counts == {"cats": 6 + 3, "dogs": 6 + 3}
    reasons = dict(report.skipped)
    assert reasons["cats/empty.jpg"] == "empty file"
    assert "not an image" in reasons["dogs/notes.jpg"]
    assert "cannot be decoded" in reasons["cats/truncated.jpg"]
    text = str(report)
    assert "3 skipped" in text and "truncated.jpg" in text


def test_every_epoch_runs_through_a_messy_folder(messy_folder):
    data = image_folder(messy_folder, image_size=32, batch_size=4, validation_fraction=0.25, seed=3)
    assert data.train_count + data.val_count == 12 + len(CONVERTED)
    for _ in range(2):  # a second epoch reads from the cache
        seen = 0
        for x, y in data.train:
            assert x.shape[1:] == (32, 32, 3) and x.dtype.name == "float32"
            assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
            seen += len(y)
        assert seen == data.train_count
    assert sum(len(y) for _, y in data.val) == data.val_count


def test_converted_files_decode_to_rgb_with_the_right_colours(messy_folder):
    import tensorflow as tf

    for name in ("cats/gray.jpg", "dogs/cmyk.jpg", "cats/png_inside.jpg"):
        image = tf.io.decode_image(tf.io.read_file(str(messy_folder / name)), channels=3, expand_animations=False)
        reference = np.asarray(Image.open(messy_folder / name).convert("RGB"), dtype=np.float32)
        assert image.shape == reference.shape
        assert np.abs(image.numpy().astype(np.float32) - reference).mean() < 8  # JPEG decoders differ slightly


def test_webp_images_are_read_through_a_png_copy(messy_folder):
    """TensorFlow cannot decode WebP; PIL can: the pipeline reads a lossless PNG copy, with the same pixels."""
    import tensorflow as tf

    paths, _, report = scan_image_folder(messy_folder)
    copy = next(p for p in paths if p.endswith(".png") and "converted-images" in p)
    assert "WebP" in dict(report.converted)["cats/web.webp"]
    image = tf.io.decode_image(tf.io.read_file(copy), channels=3).numpy()
    np.testing.assert_array_equal(image, np.asarray(Image.open(messy_folder / "cats" / "web.webp").convert("RGB")))


def test_check_results_are_cached_and_a_changed_file_is_checked_again(messy_folder, tmp_path):
    victim = tmp_path / "train"
    shutil.copytree(messy_folder, victim)
    first = scan_image_folder(victim)[2]
    (victim / "dogs" / _real_images("dogs", 1)[0].name).write_bytes(b"\xff\xd8\xff broken jpeg")
    second = scan_image_folder(victim)[2]
    assert len(second.skipped) == len(first.skipped) + 1


def test_cats_and_dogs_streams_the_real_folder():
    data = cats_and_dogs(image_size=48, batch_size=16, train_samples=100, val_samples=40, seed=0)
    assert data.class_names == ["cats", "dogs"]
    # What the folder holds, read from the folder: the official archive has 1,000 / 1,000 and 500 / 500, and a
    # copy with a file missing must not fail this test (every file of a complete copy is a readable JPEG).
    root = settings.data_dir() / "cats_and_dogs_filtered"
    on_disk = {split: {kind: len(list((root / split / kind).glob("*.jpg"))) for kind in ("cats", "dogs")}
               for split in ("train", "validation")}
    assert data.train_report.counts == on_disk["train"] and not data.train_report.skipped
    assert data.val_report.counts == on_disk["validation"] and not data.val_report.skipped
    assert all(990 <= n <= 1000 for n in on_disk["train"].values())  # the real dataset, not a stub
    labels = np.concatenate([y.numpy() for _, y in data.train])
    assert len(labels) == 100 and abs(int(labels.sum()) - 50) <= 1  # the subset keeps the classes balanced
    x, _ = next(iter(data.val))
    assert x.shape == (16, 48, 48, 3)


def test_augmentation_runs_on_training_batches_only(messy_folder):
    import keras

    flip = keras.layers.RandomFlip("horizontal", seed=1)
    data = image_folder(messy_folder, image_size=16, batch_size=32, augment=flip, validation_fraction=0.25)
    x_train, _ = next(iter(data.train))
    assert x_train.shape[1:] == (16, 16, 3)


def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_image_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no class sub-folders"):
        scan_image_folder(tmp_path)
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "a.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="no usable images"):
        scan_image_folder(tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        image_folder(tmp_path, image_size=2, batch_size=4)


def test_train_and_validation_classes_must_match(messy_folder, tmp_path):
    other = tmp_path / "val" / "birds"
    other.mkdir(parents=True)
    shutil.copy(_real_images("cats", 1)[0], other / "x.jpg")
    with pytest.raises(ValueError, match="class folders differ"):
        image_folder(messy_folder, val_root=tmp_path / "val", image_size=16, batch_size=4)


def _zip_of_folder(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def test_archive_is_extracted_once_and_completely(tmp_path):
    jpeg = _real_images("cats", 1)[0].read_bytes()
    files = {f"cats_and_dogs_filtered/{split}/{kind}/{kind}.{i}.jpg": jpeg
             for split in ("train", "validation") for kind in ("cats", "dogs") for i in range(2)}
    _zip_of_folder(tmp_path / "cats_and_dogs_filtered.zip", files)
    root = ensure_cats_and_dogs(tmp_path)
    assert sorted(p.name for p in (root / "train" / "dogs").iterdir()) == ["dogs.0.jpg", "dogs.1.jpg"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".extract")]


def test_a_broken_archive_is_removed_with_a_clear_error(tmp_path):
    buffer = io.BytesIO()
    _zip_of_folder(buffer, {"cats_and_dogs_filtered/train/cats/a.jpg": b"x" * 1000})
    damaged = bytearray(buffer.getvalue())
    damaged[60:70] = b"0123456789"  # inside the stored file data: the CRC check fails
    (tmp_path / "cats_and_dogs_filtered.zip").write_bytes(bytes(damaged))
    with pytest.raises(DatasetUnavailableError, match="not a valid cats_and_dogs_filtered archive"):
        ensure_cats_and_dogs(tmp_path)
    assert not (tmp_path / "cats_and_dogs_filtered.zip").exists()
    assert not (tmp_path / "cats_and_dogs_filtered").exists()


def test_a_read_only_cache_gets_a_clear_message_and_no_scratch_file(messy_folder, tmp_path, monkeypatch):
    """WebP files need a PNG copy in the cache: where it cannot be written, the error says where and what to do."""
    from helpers.data.images import as_png

    cache = tmp_path / "cache"
    (cache / "converted-images").mkdir(parents=True)
    monkeypatch.setenv(settings.CACHE_DIR_ENV, str(cache))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("helpers.files.tempfile.mkstemp", refuse)  # as a read-only folder does, even for root
    with pytest.raises(OSError, match="writable folder") as caught:
        as_png(messy_folder / "cats" / "web.webp")
    assert settings.CACHE_DIR_ENV in str(caught.value) and "web.webp" in str(caught.value)
    assert list((cache / "converted-images").iterdir()) == []


def test_a_webp_that_pil_cannot_read_is_skipped_and_reported(messy_folder, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.CACHE_DIR_ENV, str(tmp_path / "cache"))
    victim = tmp_path / "train"
    shutil.copytree(messy_folder, victim)
    scan_image_folder(victim)  # the check finds a convertible WebP and records it (and makes its copy)
    shutil.rmtree(tmp_path / "cache" / "converted-images")  # the copy is gone, so the next scan converts again

    def broken_open(*args, **kwargs):  # what a file replaced by garbage after the check looks like to PIL
        raise OSError("cannot identify image file")

    monkeypatch.setattr("PIL.Image.open", broken_open)
    paths, _, report = scan_image_folder(victim)
    reasons = dict(report.skipped)
    assert "cats/web.webp" in reasons and "PIL could not read it" in reasons["cats/web.webp"]
    assert "cats/web.webp" not in dict(report.converted)
    assert not any("converted-images" in p for p in paths)
    assert list((tmp_path / "cache").rglob("*.part")) == []  # no scratch file left behind


def test_asking_for_more_images_than_there_are_says_so(messy_folder, capsys):
    data = image_folder(messy_folder, image_size=16, batch_size=4, validation_fraction=0.25, train_samples=500,
                        seed=0, cache=False)
    assert data.train_count < 500
    assert f"train_samples=500 asks for more than the {data.train_count} images there" in capsys.readouterr().out
    image_folder(messy_folder, image_size=16, batch_size=4, validation_fraction=0.25, train_samples=4, seed=0,
                 cache=False)
    assert "asks for more" not in capsys.readouterr().out
