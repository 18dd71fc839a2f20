"""Grad-CAM (Selvaraju et al. 2017): which image regions a convolutional layer's evidence for a class comes from.

For a class c and a convolutional layer with feature maps A^k, weight each map by the spatial mean of
∂y^c/∂A^k and keep the positive part of the weighted sum: L^c = ReLU(Σ_k α_k^c A^k). y^c is the class score
*before* the softmax, as in the paper. Works for any functional Keras model given the name of one of its
layers (usually the last convolution, whose maps are the most semantic and still spatial).
"""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from helpers import plots


def _spatial_layers(model) -> list[str]:
    names = []
    for layer in model.layers:
        try:
            if len(layer.output.shape) == 4:
                names.append(layer.name)
        except (AttributeError, ValueError):  # layers called several times or never have no single output
            pass
    return names


def _score_model(model, layer_name: str):
    """A model returning (the layer's feature maps, the pre-softmax class scores of the first output)."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise ValueError(f"{model.name} has no layer {layer_name!r}; layers with spatial maps: "
                         f"{_spatial_layers(model)}.") from None
    if layer_name not in _spatial_layers(model):
        raise ValueError(f"Grad-CAM needs a layer with (H, W, C) maps; {layer_name!r} is not one. "
                         f"Layers with spatial maps: {_spatial_layers(model)}.")
    # The class scores before the softmax, as the paper differentiates them. The course's builders end in a
    # separate activation layer named "predictions" (the main head when there are auxiliary ones) whose input
    # is the scores; a model ending in a Dense softmax has them recomputed without it; any other is used as is.
    names = [candidate.name for candidate in model.layers]
    head = model.get_layer("predictions") if "predictions" in names else model.layers[-1]
    if isinstance(head, keras.layers.Softmax) or (
            isinstance(head, keras.layers.Activation) and head.activation is keras.activations.softmax):
        scores = head.input
    elif isinstance(head, keras.layers.Dense) and head.activation is keras.activations.softmax:
        scores = keras.ops.matmul(head.input, head.kernel) + (head.bias if head.use_bias else 0)
    else:
        scores = model.outputs[0]
    return keras.Model(model.inputs, [layer.output, scores])


def heatmaps(model, images, layer_name: str, class_index=None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps for a batch of images, upsampled to the image size and scaled to [0, 1] per image.

    ``class_index`` None explains each image's predicted class; an int or one int per image picks classes.
    Returns (maps of shape (N, H, W), the classes explained).
    """
    images = tf.convert_to_tensor(np.asarray(images, np.float32))
    probe = _score_model(model, layer_name)
    with tf.GradientTape() as tape:
        maps, scores = probe(images, training=False)
        if class_index is None:
            classes = tf.argmax(scores, axis=-1, output_type=tf.int32)
        else:
            classes = tf.broadcast_to(tf.constant(class_index, tf.int32), [tf.shape(images)[0]])
        chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # α_k^c: global-average-pooled gradients
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))[..., None]
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return cam / np.where(peak > 0, peak, 1), classes.numpy()


def overlay(image, heatmap, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """An RGB image in [0, 1] with the heat map blended over it."""
    colours = plt.get_cmap(cmap)(heatmap)[..., :3]
    return np.clip((1 - alpha) * np.asarray(image)[..., :3] + alpha * colours, 0, 1)


def show(model, images, layer_name: str, class_names=None, labels=None, ncols: int = 4, size: float = 2.2,
         display=None):
    """Each image beside its Grad-CAM overlay, titled with the true (if given) and the explained class.

    ``display`` maps the model's inputs to [0, 1] pictures when they are not already (e.g. mean-subtracted
    CIFAR-10 images: ``display=data.display``).
    """
    maps, classes = heatmaps(model, images, layer_name)
    if display is not None:
        images = display(images)
    name = (lambda k: class_names[k]) if class_names is not None else str
    tiles, titles = [], []
    for i, (image, cam, c) in enumerate(zip(images, maps, classes)):
        truth = f"true {name(labels[i])}, " if labels is not None else ""
        tiles += [image, overlay(image, cam)]
        titles += [f"{truth}image", f"Grad-CAM: {name(c)}"]
    return plots.image_grid(np.clip(np.asarray(tiles), 0, 1), titles=titles, ncols=ncols, size=size)
