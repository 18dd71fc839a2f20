"""Datasets of the course, read from the real files: MNIST (IDX) and image folders such as Dogs vs. Cats."""

from helpers.data.download import DatasetUnavailableError, fetch
from helpers.data.images import FolderReport, cats_and_dogs, image_folder, scan_image_folder
from helpers.data.mnist import load_mnist, mnist_dataset

__all__ = [
    "DatasetUnavailableError",
    "FolderReport",
    "cats_and_dogs",
    "fetch",
    "image_folder",
    "load_mnist",
    "mnist_dataset",
    "scan_image_folder",
]
