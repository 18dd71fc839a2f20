"""The course's figures: learning curves, image grids, filters, feature maps, confusion matrices, mistakes."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np


def history(history, metrics=("loss", "accuracy")):
    """Training and validation curves per epoch, one panel per metric."""
    logs = history.history if hasattr(history, "history") else history
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], "o-", label="training")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "s--", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.4, cmap="gray"):
    """Show images (each H×W, H×W×1 or H×W×3; sizes may differ) in a grid, with optional titles."""
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = np.asarray(images[i])
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def filters(kernel, ncols: int = 8, size: float = 1.0):
    """First-layer filters (kh, kw, in, out) as images: RGB when in == 3, else the first input channel."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"expected a conv kernel (kh, kw, in, out), got shape {kernel.shape}.")
    tiles = np.moveaxis(kernel, -1, 0)  # (out, kh, kw, in)
    tiles = tiles if tiles.shape[-1] == 3 else tiles[..., 0]
    # Scale each filter to [0, 1] on its own so weak and strong filters are equally visible.
    low = tiles.min(axis=tuple(range(1, tiles.ndim)), keepdims=True)
    high = tiles.max(axis=tuple(range(1, tiles.ndim)), keepdims=True)
    tiles = (tiles - low) / np.maximum(high - low, 1e-12)
    return image_grid(tiles, titles=[f"#{i}" for i in range(len(tiles))], ncols=ncols, size=size)


def feature_maps(model, layer_name: str, image, ncols: int = 8, size: float = 1.2, limit: int | None = None):
    """The activations of one layer for one image (H, W, C), one panel per channel (the first ``limit``)."""
    import keras

    probe = keras.Model(model.input, model.get_layer(layer_name).output)  # .input: no list-structure warning
    maps = np.asarray(probe(np.asarray(image)[None], training=False))[0][..., :limit]
    fig = image_grid(np.moveaxis(maps, -1, 0), titles=[f"{layer_name}:{i}" for i in range(maps.shape[-1])],
                     ncols=ncols, size=size, cmap="viridis")
    return fig


def confusion_matrix(y_true, y_pred, class_names=None, normalize=None):
    """scikit-learn's confusion matrix display (counts by default; ``normalize="true"`` for rates)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names) if class_names is not None else None
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * (n or 10), 1 + 0.5 * (n or 10)))
    longest = max((len(str(name)) for name in class_names), default=0) if class_names is not None else 0
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, display_labels=class_names, normalize=normalize,
                                            ax=ax, colorbar=False, cmap="Blues",
                                            xticks_rotation=45 if longest > 5 else "horizontal")  # names that fit
    fig.tight_layout()
    return fig


def confident_mistakes(images, y_true, probabilities, class_names=None, n: int = 16, ncols: int = 8):
    """The ``n`` wrong predictions the model was most sure of, titled "true→predicted (confidence)"."""
    probabilities = np.asarray(probabilities)
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    order = wrong[np.argsort(-probabilities[wrong, y_pred[wrong]])][:n]
    name = (lambda k: class_names[k]) if class_names is not None else str
    titles = [f"{name(y_true[i])}→{name(y_pred[i])} ({probabilities[i, y_pred[i]]:.2f})" for i in order]
    return image_grid(np.asarray(images)[order], titles=titles, ncols=ncols)
