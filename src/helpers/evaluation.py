"""A model's predictions on a whole labelled dataset, kept beside the images and labels they belong to.

The notebooks draw the confusion matrix, the most confident mistakes and Grad-CAM from the same pass, so one
pass collects all three arrays instead of re-reading (and, with augmentation, re-drawing) the dataset.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from helpers.training import without_autotune_thread


@dataclass(frozen=True)
class Predictions:
    images: np.ndarray         # (n, height, width, channels), as the model saw them
    labels: np.ndarray         # (n,) integer class labels
    probabilities: np.ndarray  # (n, classes) softmax outputs

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def wrong(self) -> int:
        return int((self.predicted != self.labels).sum())

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean())

    @property
    def loss(self) -> float:
        """Mean cross-entropy, the quantity the network was trained to lower."""
        return float(np.mean(keras.losses.sparse_categorical_crossentropy(self.labels, self.probabilities)))

    def __len__(self) -> int:
        return len(self.labels)


def predict(model, dataset) -> Predictions:
    """Run ``model`` over every ``(images, labels)`` batch of ``dataset`` once.

    The model must have a single softmax output: for GoogLeNet, pass the inference network without the
    auxiliary heads (``googlenet.inference_model``).
    """
    if len(model.outputs) != 1:
        raise ValueError(f"{model.name} has {len(model.outputs)} outputs; predict() needs a single-output model "
                         "(for GoogLeNet, use googlenet.inference_model(model)).")
    images, labels, probabilities = [], [], []
    for batch in without_autotune_thread(dataset):  # dropping the iterator at the end never waits
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("predict() needs a dataset of (images, labels) batches.")
        x, y = batch
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:  # (batch, 1) integer labels are valid for Keras too
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"predict() needs integer class labels, one per image; got labels of shape {y.shape} "
                             "(one-hot labels: take argmax(axis=1) first).")
        images.append(np.asarray(x))
        labels.append(y)
        probabilities.append(np.asarray(model.predict_on_batch(x)))
    if not images:
        raise ValueError("predict() was given an empty dataset.")
    return Predictions(*(np.concatenate(parts) for parts in (images, labels, probabilities)))
