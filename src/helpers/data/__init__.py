"""Datasets of the course, read from the real files: MNIST (IDX), CIFAR-10 (PNG tree) and image folders such as
Dogs vs. Cats."""

from helpers.data.cifar import Cifar10Data, cifar10, load_cifar10
from helpers.data.download import DatasetUnavailableError, fetch
from helpers.data.images import FolderReport, cats_and_dogs, image_folder, scan_image_folder
from helpers.data.mnist import load_mnist, mnist_dataset

__all__ = [
    "Cifar10Data",
    "DatasetUnavailableError",
    "FolderReport",
    "cats_and_dogs",
    "cifar10",
    "fetch",
    "image_folder",
    "load_cifar10",
    "load_mnist",
    "mnist_dataset",
    "scan_image_folder",
]
