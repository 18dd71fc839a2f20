"""The papers' own layers that Keras lacks: AlexNet's LRN, LeNet-5's squashing, subsampling, sparse C3 and RBF
output (with its loss and accuracy), ResNet's zero-padding shortcut, and the fused batch norm the course trains with.

The augmentation layers (random crops and flips, PCA colour jitter) live with the rest of the input pipeline, in
``helpers.data.augment``.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


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
        # TF's LRN kernels are float32-only on GPU and lack bfloat16 on CPU, so mixed precision computes it
        # in float32 (better for the sum of squares anyway) and hands back the layer's compute dtype.
        outputs = tf.nn.local_response_normalization(
            tf.cast(inputs, "float32"), depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
            beta=self.beta
        )
        return tf.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                "alpha": self.alpha, "beta": self.beta}


# ---------------------------------------------------------------------------------------------------------------
# LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998): squashing function, trainable subsampling, the sparse C3
# convolution, the Euclidean RBF output with its fixed digit bitmaps, and the loss and accuracy that go with it.
# ---------------------------------------------------------------------------------------------------------------

# Squashing function f(a) = A·tanh(S·a) (paper §II-B and Appendix A). With S = 2/3, A = 1.7159 makes f(±1) = ±1,
# and ±1 is where f's second derivative peaks: the gain is near 1 and ±1 targets never drive units into the tails.
TANH_AMPLITUDE = 1.7159
TANH_SLOPE = 2.0 / 3.0


@keras.saving.register_keras_serializable(package="helpers")
def scaled_tanh(x):
    """LeNet-5's squashing function f(a) = 1.7159·tanh(2a/3): f(0) = 0, f(±1) = ±1.0000, f(±∞) = ±1.7159."""
    return TANH_AMPLITUDE * ops.tanh(TANH_SLOPE * x)


@keras.saving.register_keras_serializable(package="helpers")
class PaperUniform(keras.initializers.Initializer):
    """The paper's initialisation (Appendix A): uniform in ±2.4/F, F = the fan-in of the unit.

    Small weights keep the scaled tanh in its linear region at the start, where gradients are largest.
    The fan-in is every input dimension but the last (kh·kw·C_in for a conv kernel, n_in for a dense one).
    """

    def __init__(self, scale=2.4, seed=None):
        self.scale, self.seed = scale, seed
        self._generator = keras.random.SeedGenerator(seed)

    def __call__(self, shape, dtype=None):
        fan_in = int(np.prod(shape[:-1]))
        limit = self.scale / fan_in
        return keras.random.uniform(shape, -limit, limit, dtype=dtype, seed=self._generator)

    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}


@keras.saving.register_keras_serializable(package="helpers")
class Subsampling(keras.layers.Layer):
    """LeNet-5's S2/S4 layers: each non-overlapping window is summed, times a trainable coefficient, plus a
    trainable bias, then squashed. One coefficient and one bias per map, so 2 parameters per map.

    With a small coefficient the unit is nearly linear (a blur); with a large one it acts like a noisy OR or
    AND, depending on the bias (paper §II-B). Max-pooling, used today, has no parameters at all.
    """

    def __init__(self, pool_size=2, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        maps = input_shape[-1]
        # Start as the plain sum (4× the mean): the paper's small initial weights shrink the signal layer after
        # layer, and the sum offsets that; starting as an average learns visibly slower in the first epoch.
        self.coefficient = self.add_weight(shape=(maps,), name="coefficient", initializer="ones")
        self.bias = self.add_weight(shape=(maps,), name="bias", initializer="zeros")

    def call(self, inputs):
        window_sum = ops.average_pool(inputs, self.pool_size, self.pool_size, padding="valid") * self.pool_size**2
        return self.activation(window_sum * self.coefficient + self.bias)

    def compute_output_shape(self, input_shape):
        batch, height, width, maps = input_shape
        return (batch, height // self.pool_size, width // self.pool_size, maps)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size,
                "activation": keras.activations.serialize(self.activation)}


# Paper Table I: which S2 maps (rows) each C3 map (columns) reads. Maps 0-5 take three contiguous S2 maps,
# 6-11 four contiguous, 12-14 four non-contiguous and 15 all six: 60 of the 96 possible connections.
LENET5_C3_TABLE = (
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
)


def c3_connections() -> np.ndarray:
    """Paper Table I as a (6 S2 maps, 16 C3 maps) 0/1 array."""
    return np.array([[c == "X" for c in row] for row in LENET5_C3_TABLE], dtype=np.int32)


@keras.saving.register_keras_serializable(package="helpers")
class SparseConv2D(keras.layers.Layer):
    """A valid convolution in which output map o reads input map i only where ``connections[i][o]`` is 1.

    Only the connected k×k kernels exist as trainable weights (for LeNet-5's C3: 60 × 25 + 16 biases = 1,516
    parameters, the paper's count); they are scattered into a full kernel with zeros elsewhere, so the
    convolution itself is one ordinary ``conv`` call. The missing connections are zeros, not weights.

    ``kernel_initializer=None`` is the paper's U(±2.4/F) with F the true fan-in of each output map
    (k·k·number of inputs it reads); any Keras initializer is applied to the (k, k, connections) weights.
    """

    def __init__(self, connections, kernel_size=5, activation=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        table = np.asarray(connections, dtype=np.int32)
        if table.ndim != 2 or not np.isin(table, (0, 1)).all():
            raise ValueError("connections must be a 2-D 0/1 table of shape (input maps, output maps).")
        if (table.sum(axis=0) == 0).any():
            raise ValueError(f"output maps {np.flatnonzero(table.sum(axis=0) == 0).tolist()} read no input map.")
        self.connections = table
        self.filters = table.shape[1]
        self.kernel_size = int(kernel_size)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = None if kernel_initializer is None else keras.initializers.get(kernel_initializer)
        # Connection c joins input map rows[c] to output map cols[c]; slot 0 of the gather below is a zero.
        rows, cols = np.nonzero(table)
        index = np.zeros(table.shape, dtype=np.int32)
        index[rows, cols] = np.arange(1, len(rows) + 1)
        self._gather_index = index.reshape(-1)
        self._fan_in = (self.kernel_size**2 * table.sum(axis=0))[cols]

    def build(self, input_shape):
        if input_shape[-1] != self.connections.shape[0]:
            raise ValueError(f"{self.name}: the connection table has {self.connections.shape[0]} input maps, "
                             f"the input has {input_shape[-1]} channels.")
        k, n = self.kernel_size, len(self._fan_in)
        initializer = self.kernel_initializer or self._paper_initializer
        self.kernel = self.add_weight(shape=(k, k, n), name="kernel", initializer=initializer)
        self.bias = self.add_weight(shape=(self.filters,), name="bias", initializer="zeros")

    def _paper_initializer(self, shape, dtype=None):
        dtype = dtype or "float32"
        limit = ops.cast(2.4 / self._fan_in, dtype)
        return keras.random.uniform(shape, -1.0, 1.0, dtype=dtype) * limit

    def full_kernel(self):
        """The (k, k, in, out) kernel the convolution uses: learned weights where connected, zeros elsewhere."""
        k = self.kernel_size
        slots = ops.concatenate([ops.zeros_like(self.kernel[..., :1]), self.kernel], axis=-1)
        return ops.reshape(ops.take(slots, self._gather_index, axis=-1), (k, k, *self.connections.shape))

    def call(self, inputs):
        return self.activation(ops.conv(inputs, self.full_kernel(), padding="valid") + self.bias)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = self.kernel_size - 1
        return (batch, None if height is None else height - shrink, None if width is None else width - shrink,
                self.filters)

    def get_config(self):
        return {**super().get_config(), "connections": self.connections.tolist(), "kernel_size": self.kernel_size,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": None if self.kernel_initializer is None
                else keras.initializers.serialize(self.kernel_initializer)}


# The RBF output's targets (paper Fig. 3): one stylised 7×12 bitmap per digit, "#" = +1 and "." = -1.
# Flattened row by row they are the 84-dimensional points F6 is trained to reach, hence F6's 84 units.
DIGIT_BITMAPS = {
    0: ["..###..", ".#...#.", "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."],
    1: ["...#...", "..##...", ".#.#...", "...#...", "...#...", "...#...", "...#...", "...#...", ".#####."],
    2: [".#####.", "#.....#", "......#", ".....#.", "....#..", "...#...", "..#....", ".#.....", "#######"],
    3: ["######.", "......#", "......#", ".....#.", ".####..", ".....#.", "......#", "......#", "######."],
    4: ["....##.", "...#.#.", "..#..#.", ".#...#.", "#....#.", "#######", ".....#.", ".....#.", ".....#."],
    5: ["#######", "#......", "#......", "######.", "......#", "......#", "......#", "#.....#", ".#####."],
    6: ["..####.", ".#.....", "#......", "#.####.", "##....#", "#.....#", "#.....#", "#.....#", ".#####."],
    7: ["#######", "......#", ".....#.", "....#..", "...#...", "..#....", "..#....", "..#....", "..#...."],
    8: [".#####.", "#.....#", "#.....#", ".#...#.", "..###..", ".#...#.", "#.....#", "#.....#", ".#####."],
    9: [".#####.", "#.....#", "#.....#", "#....##", ".####.#", "......#", "......#", ".....#.", ".####.."],
}
BITMAP_HEIGHT, BITMAP_WIDTH = 12, 7


def digit_bitmaps() -> np.ndarray:
    """The ten bitmaps as a (10, 12, 7) array of ±1: each drawing above, with one blank row above it and two
    below (room the paper's set used for descenders and for its other ASCII characters)."""
    maps = []
    for digit in range(10):
        rows = ["." * BITMAP_WIDTH] + DIGIT_BITMAPS[digit] + ["." * BITMAP_WIDTH] * 2
        assert len(rows) == BITMAP_HEIGHT and all(len(r) == BITMAP_WIDTH for r in rows), digit
        maps.append([[1.0 if c == "#" else -1.0 for c in row] for row in rows])
    return np.array(maps, dtype=np.float32)


@keras.saving.register_keras_serializable(package="helpers")
class EuclideanRBF(keras.layers.Layer):
    """LeNet-5's output layer: y_i = Σ_j (x_j − w_ij)², the squared distance from the input to class i's
    prototype. The prototypes are the fixed ±1 digit bitmaps (not trained); the *smallest* output wins.

    Unlike softmax outputs these are distances, not probabilities: train them with :class:`RBFLoss` and score
    them with :class:`RBFAccuracy` (arg-min).
    """

    def build(self, input_shape):
        prototypes = digit_bitmaps().reshape(10, -1)
        if input_shape[-1] != prototypes.shape[1]:
            raise ValueError(f"{self.name}: the digit prototypes have {prototypes.shape[1]} (= 7×12) dimensions, "
                             f"the input has {input_shape[-1]}.")
        self.prototypes = self.add_weight(shape=prototypes.shape, name="prototypes", trainable=False,
                                          initializer=keras.initializers.Constant(prototypes))

    def call(self, inputs):
        difference = ops.expand_dims(inputs, 1) - self.prototypes  # (batch, 10, 84)
        return ops.sum(ops.square(difference), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 10)


@keras.saving.register_keras_serializable(package="helpers")
class RBFLoss(keras.losses.Loss):
    """The paper's discriminative MAP criterion for RBF outputs (eq. 9), per example:

        E = y_D + log(e^(−j) + Σ_i e^(−y_i))

    y_D is the distance to the correct class's prototype; the paper's plain criterion (eq. 8) minimises only
    that, which never pushes wrong classes away (and would let trainable prototypes collapse onto one point).
    The log term pushes the wrong classes' distances up. The constant j > 0 acts as a "rubbish" class: once a wrong class is farther than about j,
    it stops being pushed. This is softmax cross-entropy with logits −y_i plus one fixed logit −j.
    """

    def __init__(self, j=10.0, name="rbf_map_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.j = float(j)

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        correct = ops.take_along_axis(y_pred, labels[:, None], axis=1)[:, 0]
        rubbish = ops.full_like(y_pred[:, :1], -self.j)
        return correct + ops.logsumexp(ops.concatenate([rubbish, -y_pred], axis=1), axis=1)

    def get_config(self):
        return {**super().get_config(), "j": self.j}


def rbf_correct(y_true, y_pred):
    """1.0 where the nearest prototype (smallest distance) is the true class, else 0.0."""
    labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    return ops.cast(ops.equal(ops.cast(ops.argmin(y_pred, axis=-1), "int32"), labels), "float32")


@keras.saving.register_keras_serializable(package="helpers")
class RBFAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy of distance outputs: the prediction is the class with the smallest distance (arg-min)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=rbf_correct, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def rbf_posteriors(distances, j=10.0):
    """Class scores from RBF distances under the loss's own model: p_i = e^(−y_i) / (e^(−j) + Σ_k e^(−y_k)).

    They sum to less than 1; the rest is the "rubbish" class. Useful to rank how sure the network was.
    """
    distances = np.asarray(distances, dtype=np.float64)
    logits = np.concatenate([np.full((len(distances), 1), -j), -distances], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True))[:, 1:]


@keras.saving.register_keras_serializable(package="helpers")
class ZeroPadShortcut(keras.layers.Layer):
    """ResNet's option-A shortcut (He et al. 2015, §3.3): identity, subsampled and zero-padded, no parameters.

    Where a residual block halves the maps and widens the channels, the shortcut keeps every ``stride``-th
    pixel and appends zero channels up to ``channels``, so it can still be added to the block's output.
    """

    def __init__(self, channels, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.stride = int(channels), int(stride)

    def call(self, inputs):
        x = inputs[:, :: self.stride, :: self.stride, :]
        extra = self.channels - x.shape[-1]
        if extra < 0:
            raise ValueError(f"{self.name}: cannot shrink {x.shape[-1]} channels to {self.channels} with zeros.")
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]]) if extra else x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = lambda n: None if n is None else -(-n // self.stride)  # noqa: E731
        return (batch, shrink(height), shrink(width), self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "stride": self.stride}


@keras.saving.register_keras_serializable(package="helpers")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization, computed by TensorFlow's fused kernel (``FusedBatchNormV3``) where it can.

    Keras 3 builds batch norm from about ten small ops (moments, then normalise): about a third of a CIFAR
    ResNet's training step on a CPU. The fused kernel does the same in one op forwards and one backwards
    (benchmarks/batch_norm.py). Same arguments, weights, config and results as Keras's layer: batch statistics
    when training, the moving ones otherwise (also when ``trainable=False``, as in Keras), and the moving averages
    fed the *biased* batch variance, as Keras feeds them. Inputs other than 4-D channels-last float32/16-bit ones
    (after a Dense layer, channels-first), masks, ``renorm`` and ``synchronized`` run Keras's own code.
    """

    FUSED_DTYPES = ("float32", "float16", "bfloat16")  # the kernel's x; its statistics and γ, β stay float32

    def uses_fused_kernel(self, inputs, mask=None) -> bool:
        """Whether ``call`` uses the fused kernel for these inputs."""
        # renorm arrived in Keras 3.14; Colab's 3.13 has no such attribute.
        return (mask is None and not getattr(self, "renorm", False) and not self.synchronized and len(inputs.shape) == 4
                and self.axis in (-1, 3) and keras.backend.standardize_dtype(inputs.dtype) in self.FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        if not self.uses_fused_kernel(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = self.moving_mean.shape[0]
        # 16-bit x goes in as it is: the kernel computes in float32 inside, as Keras does after upcasting.
        scale = ops.cast(self.gamma, "float32") if self.scale else tf.ones((channels,), "float32")
        offset = ops.cast(self.beta, "float32") if self.center else tf.zeros((channels,), "float32")
        if training and self.trainable:
            empty = tf.zeros((0,), "float32")
            outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset, mean=empty, variance=empty, epsilon=self.epsilon,
                exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
            # The kernel normalises with the biased variance but returns the unbiased one, Σ(x-μ)²/(n-1); Keras
            # averages the biased one into moving_variance, so undo Bessel's correction (n = N·H·W per channel).
            count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), "float32")
            variance = variance * (tf.maximum(count - 1.0, 1.0) / count)
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                current = ops.cast(moving, "float32")
                moving.assign(ops.cast(current * self.momentum + batch * (1.0 - self.momentum), moving.dtype))
        else:
            outputs, *_ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset, mean=ops.cast(self.moving_mean, "float32"),
                variance=ops.cast(self.moving_variance, "float32"), epsilon=self.epsilon, data_format="NHWC",
                is_training=False)
        return ops.cast(outputs, self.compute_dtype)
