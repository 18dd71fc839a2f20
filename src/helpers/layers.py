"""Paper-specific pieces as small Keras layers (LRN now; LeNet-5's pieces join them here)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="helpers")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, §3.3).

    b = a / (k + α Σ a²)^β over n neighbouring channels. The paper's constants are k=2, n=5, α=1e-4, β=0.75,
    with α *not* divided by n, which is exactly ``tf.nn.local_response_normalization(depth_radius=2,
    bias=2, alpha=1e-4, beta=0.75)``. Keras 3 has no LRN layer, so this wraps the TensorFlow op.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}
