"""helpers.training: strategies, mixed-precision choice, resumable runs, best-model reload, verbosity.

Small models on a few hundred real MNIST images keep every test to seconds; random tensors are used only
for pure mechanics (a reloaded model must give the same outputs on any input).
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers.data
import helpers.models
import helpers.layers
import helpers.training as training
from helpers import recipes

BATCH = 64


@pytest.fixture(scope="module")
def mnist():
    """512 training and 256 test images of the real MNIST files."""
    return helpers.data.load_mnist("train", limit=512), helpers.data.load_mnist("test", limit=256)


@pytest.fixture(autouse=True)
def float32_policy():
    """Every test starts and ends in full precision (the dtype policy is global)."""
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def small_model(filters=8, seed=0, output_dtype="float32"):
    """conv → pool → LRN (a course layer, so reloading exercises its registration) → softmax."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(filters, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = helpers.layers.LocalResponseNormalization()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", dtype=output_dtype)(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def read_epochs(path):
    with open(path) as f:
        return [int(line.split(",")[0]) for line in f.readlines()[1:]]


class Probe(keras.callbacks.Callback):
    """Records what fit did: the verbosity Keras got, the epochs it ran, weights after restore and per epoch."""

    def __init__(self):
        super().__init__()
        self.epochs, self.weights = [], []

    def on_train_begin(self, logs=None):
        self.verbose = self.params["verbose"]
        self.start_weights = self.model.get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


class Interrupt(keras.callbacks.Callback):
    """Stands in for a lost session: raises when epoch ``at`` begins."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt(f"interrupted at epoch {epoch}")


def _timed_epoch(call_ends, clock, batch_size=10):
    """Feed Timing one epoch: Keras's step index at the end of each call into the graph, on a fake clock."""
    timing = training.Timing(batch_size=batch_size)
    timing.clock = iter(clock).__next__  # epoch begins, each call ends, epoch ends
    timing.on_epoch_begin(0)
    for step in call_ends:
        timing.on_train_batch_end(step)
    timing.on_epoch_end(0)
    return timing.rows[0]


def test_timing_counts_every_step_of_a_multi_step_execution():
    # steps_per_execution=16, 40 steps: Keras calls back with 15, 31 and 47 (the last call ran 8 steps, not 16).
    row = _timed_epoch([15, 31, 47], [0.0, 1.0, 3.0, 3.2, 3.5])
    assert row == {"epoch_seconds": 3.5, "images_per_second": 16 * 10 / 2.0}  # the short last call left out
    # One step per call (steps_per_execution=1), the last batch short: the same rule.
    assert _timed_epoch([0, 1, 2, 3], [0.0, 1.0, 1.5, 2.0, 2.1, 2.2])["images_per_second"] == 2 * 10 / 1.0
    assert _timed_epoch([15, 31], [0.0, 1.0, 3.0, 3.5])["images_per_second"] == 16 * 10 / 2.0  # two calls: to the end
    assert _timed_epoch([15], [0.0, 1.0, 1.5]) == {"epoch_seconds": 1.5}  # one call: nothing to time between


def test_fit_learns_logs_and_reloads_best_model(mnist):
    (x, y), validation = mnist
    model, probe = small_model(), Probe()
    history = training.fit(model, (x, y), validation=validation, epochs=3, batch_size=BATCH,
                           run="best", monitor="val_accuracy", callbacks=[probe])

    assert probe.verbose == 2  # tests run non-interactively
    assert history.initial_epoch == 0 and history.epoch == [0, 1, 2]
    assert max(history.history["val_accuracy"]) > 0.5  # well above chance (0.1) on real digits
    assert all(s > 0 for s in history.history["images_per_second"]) and history.wall_seconds > 0
    assert read_epochs(history.log_path) == [0, 1, 2]
    assert not (history.run_dir / "backup").exists()  # a completed run leaves no backup to resume

    best = training.load_best(history)  # safe_mode=True, with the LRN layer in it
    assert any(isinstance(layer, helpers.layers.LocalResponseNormalization) for layer in best.layers)
    best_epoch = int(np.argmax(history.history["val_accuracy"]))
    assert best.evaluate(*validation, verbose=0, return_dict=True)["accuracy"] == pytest.approx(
        history.history["val_accuracy"][best_epoch], abs=1e-6)
    model.set_weights(probe.weights[best_epoch])
    noise = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(best.predict(noise, verbose=0), model.predict(noise, verbose=0), atol=1e-6)


def test_fit_on_a_dataset_of_unknown_length_runs_every_batch_without_a_false_alarm(mnist, recwarn):
    """The course's image pipelines drop unreadable files (ignore_errors), so their length is unknown."""
    (x, y), _ = mnist
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).ignore_errors().batch(BATCH)
    assert dataset.cardinality() == tf.data.UNKNOWN_CARDINALITY
    counts = []  # training batches per epoch
    batches = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: counts.append(0),
                                             on_train_batch_end=lambda batch, logs: counts.append(counts.pop() + 1))
    history = training.fit(small_model(), dataset, epochs=2, batch_size=BATCH, run="unknown_length",
                           callbacks=[batches])
    assert history.epoch == [0, 1]
    assert counts == [len(x) // BATCH] * 2  # 512 images in 8 batches, both epochs
    assert not [w for w in recwarn if "ran out of data" in str(w.message)]


def test_fit_trains_on_pipelines_without_the_autotuning_thread(mnist, monkeypatch):
    """Dropping an autotuned iterator can wait up to a minute for tf.data's autotuning thread (at each epoch's end)."""
    (x, y), (x_val, y_val) = mnist
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).prefetch(tf.data.AUTOTUNE)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(BATCH)
    assert train.options().autotune.enabled is not False  # tf.data's default: autotuned
    model, given = small_model(), {}
    keras_fit = model.fit

    def spy(data, **kwargs):
        given.update(train=data, validation=kwargs["validation_data"])
        return keras_fit(data, **kwargs)

    monkeypatch.setattr(model, "fit", spy)
    training.fit(model, train, validation=val, epochs=1, batch_size=BATCH, run="no_autotune_thread")
    assert given["train"].options().autotune.enabled is False
    assert given["validation"].options().autotune.enabled is False
    arrays = (x, y)
    assert training.without_autotune_thread(arrays) is arrays and training.without_autotune_thread(None) is None


@pytest.mark.parametrize("as_dataset", [True, False])
def test_fit_traces_the_training_step_once(mnist, as_dataset):
    """The optimizer's slots and the metrics exist before the first trace, so tf.function need not retrace."""
    (x, y), _ = mnist
    model = small_model()
    traced = []
    step = model.train_step
    model.train_step = lambda data: (traced.append(1), step(data))[1]  # runs only while tracing
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH) if as_dataset else (x, y)
    history = training.fit(model, train, epochs=2, batch_size=BATCH, run="traced_once")
    assert model.optimizer.built and history.epoch == [0, 1]
    assert len(traced) == 1  # Keras 3.15 alone traces it twice (variables created on the first call)


def test_build_training_state_leaves_other_inputs_to_keras(mnist):
    (x, y), _ = mnist
    model = small_model()
    training.build_training_state(model, (xy for xy in [(x[:8], y[:8])]))  # a generator: no element_spec
    assert not model.optimizer.built
    training.build_training_state(model, (x, y))
    assert model.optimizer.built and len(model.optimizer.variables) > 1  # iterations + Adam's slots


def test_interrupted_run_resumes_at_the_epoch_it_stopped(mnist):
    (x, y), validation = mnist
    x, y = x[:256], y[:256]  # mechanics only: fewer steps
    steps = len(x) // BATCH
    first, before = small_model(), Probe()
    with pytest.raises(KeyboardInterrupt):
        training.fit(first, (x, y), validation=validation, epochs=3, batch_size=BATCH, run="resume",
                     callbacks=[before, Interrupt(at=2)])
    run = training.run_dir("resume")
    assert read_epochs(run / "log.csv") == [0, 1] and (run / "backup").is_dir()

    # Running the notebook cell again: a new model object, built and compiled the same way.
    second, after = small_model(seed=1), Probe()
    history = training.fit(second, (x, y), validation=validation, epochs=3, batch_size=BATCH, run="resume",
                           callbacks=[after])
    assert history.initial_epoch == 2 and after.epochs == [2]
    for restored, saved in zip(after.start_weights, before.weights[1]):  # as saved after the second epoch
        np.testing.assert_array_equal(restored, saved)
    assert int(second.optimizer.iterations) == 3 * steps  # optimizer state came back too
    assert read_epochs(run / "log.csv") == [0, 1, 2] and history.epoch == [0, 1, 2]
    assert len(history.history["loss"]) == len(history.history["val_accuracy"]) == 3
    assert not (run / "backup").exists()

    # Keras would otherwise start the model's next fit at epoch 2 as well.
    assert training.fit(second, (x, y), epochs=1, batch_size=BATCH, run="again").epoch == [0]


def test_backup_of_a_different_model_is_not_loaded(mnist, capsys):
    (x, y), _ = mnist
    x, y = x[:128], y[:128]
    with pytest.raises(KeyboardInterrupt):
        training.fit(small_model(filters=8), (x, y), epochs=2, batch_size=BATCH, run="changed",
                     callbacks=[Interrupt(at=1)])
    history = training.fit(small_model(filters=4), (x, y), epochs=1, batch_size=BATCH, run="changed")
    assert history.initial_epoch == 0 and "differs in: network)" in capsys.readouterr().out


def test_backup_of_another_configuration_is_not_resumed(mnist, capsys):
    """A QUICK run's backup must not resume inside a full run of the same network (other sizes and schedule)."""
    (x, y), _ = mnist
    x, y = x[:128], y[:128]
    quick, full = dict(quick=True, epochs=1), dict(quick=False, epochs=4)

    def compiled(epochs):
        model = small_model()
        schedule = recipes.cosine_decay(0.05, epochs=epochs, train_count=len(x), batch_size=BATCH)
        model.compile(optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy")
        return model

    with pytest.raises(KeyboardInterrupt):
        training.fit(compiled(3), (x, y), epochs=3, batch_size=BATCH, run="quick_then_full", config=quick,
                     callbacks=[Interrupt(at=1)])
    capsys.readouterr()
    history = training.fit(compiled(4), (x, y), epochs=4, batch_size=BATCH, run="quick_then_full", config=full)
    said = capsys.readouterr().out
    assert history.initial_epoch == 0
    assert "differs in: optimizer and schedule, run configuration)" in said
    # the same configuration resumes where the interrupted run stopped
    with pytest.raises(KeyboardInterrupt):
        training.fit(compiled(4), (x, y), epochs=4, batch_size=BATCH, run="same", config=full,
                     callbacks=[Interrupt(at=2)])
    assert training.fit(compiled(4), (x, y), epochs=4, batch_size=BATCH, run="same", config=full).initial_epoch == 2


def test_a_backup_past_the_requested_epochs_starts_afresh(mnist, capsys):
    (x, y), _ = mnist
    x, y = x[:128], y[:128]
    with pytest.raises(KeyboardInterrupt):
        training.fit(small_model(), (x, y), epochs=4, batch_size=BATCH, run="shorter", callbacks=[Interrupt(at=3)])
    history = training.fit(small_model(), (x, y), epochs=2, batch_size=BATCH, run="shorter")
    assert history.initial_epoch == 0 and history.epoch == [0, 1]
    assert "past this run's 2" in capsys.readouterr().out


@pytest.mark.parametrize("device, flags, expected", [
    ("gpu", frozenset(), "mixed_float16"),
    ("tpu", frozenset(), "mixed_bfloat16"),
    ("cpu", frozenset({"avx2", "avx512f", "avx512_bf16"}), "float32"),  # measured 0.97×: bf16 does not pay
    ("cpu", frozenset({"avx2", "avx512_bf16", "amx_bf16"}), "mixed_bfloat16"),  # AMX
    ("cpu", frozenset({"asimd", "bf16"}), "float32"),  # Arm BF16: not measured, so not chosen
    ("cpu", frozenset({"avx2", "avx512f"}), "float32"),  # no bfloat16 instructions: 16 bits would be slower
])
def test_policy_choice(device, flags, expected):
    assert training.choose_policy(device, flags) == expected


def test_set_precision_on_this_machine_and_float32_outputs(mnist):
    (x, y), _ = mnist
    x, y = x[:256], y[:256]
    expected = training.choose_policy(training.accelerator(), training.cpu_flags())
    if training.accelerator() == "cpu" and "amx_bf16" not in training.cpu_flags():  # this course's CI CPU
        assert expected == "float32"
    assert training.set_precision(True) == expected == keras.mixed_precision.dtype_policy().name
    if expected == "float32":  # mixed precision must still work where it is not the default
        expected = training.set_precision("mixed_bfloat16")

    with pytest.raises(ValueError, match="dtype='float32'"):  # a 16-bit softmax is refused before training
        training.fit(small_model(output_dtype=None), (x, y), epochs=1, batch_size=BATCH, run="mixed")
    model = small_model()
    assert model.layers[1].compute_dtype == expected.removeprefix("mixed_") and model.output.dtype == "float32"
    history = training.fit(model, (x, y), epochs=1, batch_size=BATCH, run="mixed")
    assert np.isfinite(history.history["loss"]).all()

    assert training.set_precision(False) == "float32" == keras.mixed_precision.dtype_policy().name
    with pytest.raises(ValueError, match="Unknown precision"):
        training.set_precision("float16")


def test_verbose_follows_interactivity(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("CNN_NONINTERACTIVE", "0")
    assert training.default_verbose() == 1  # a person watching: Keras's progress bar
    monkeypatch.setenv("CI", "true")
    assert training.default_verbose() == 2  # logs: one line an epoch


def test_auto_strategy_without_accelerators(monkeypatch):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(training, "_tpu_address", lambda: None)
    assert training.strategy() is training.strategy("default") is tf.distribute.get_strategy()


def test_bad_arguments_fail_early(mnist, monkeypatch):
    (x, y), _ = mnist
    with pytest.raises(ValueError, match="Unknown strategy"):
        training.strategy("gpu")
    monkeypatch.setattr(training, "_tpu_address", lambda: None)
    with pytest.raises(RuntimeError, match="No TPU found"):
        training.strategy("tpu")
    with pytest.raises(ValueError, match="plain folder name"):
        training.run_dir("../elsewhere")
    with pytest.raises(ValueError, match="needs validation data"):
        training.fit(small_model(), (x, y), epochs=1, monitor="val_accuracy")
    model = small_model()
    monkeypatch.setattr(training.importlib.util, "find_spec", lambda name: None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match="pip install tensorboard"):
        training.fit(model, (x, y), epochs=1, tensorboard=True)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="not compiled"):
        training.fit(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), (x, y), epochs=1)


MIRRORED_SCRIPT = textwrap.dedent("""
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]  # two logical CPUs, before TensorFlow starts its devices
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import helpers.data
    import helpers.training

    strategy = helpers.training.strategy("mirrored")
    train, test = (tf.data.Dataset.from_tensor_slices(helpers.data.load_mnist(split, limit=n)).batch(128)
                   for split, n in (("train", 512), ("test", 256)))
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                                  keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    history = helpers.training.fit(model, train, validation=test, epochs=2, batch_size=128, run="mirrored")
    print("RESULT " + json.dumps({
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "mirrored_variables": isinstance(model.weights[0].value, tf.distribute.DistributedValues),
        "val_accuracy": history.history["val_accuracy"],
    }))
""")


def test_mirrored_strategy_trains_over_two_cpu_devices(tmp_path):
    # Logical devices can only be set before TensorFlow initialises them, so this runs in a fresh process.
    env = {**os.environ, "CNN_RUNS_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["strategy"] == "MirroredStrategy" and result["replicas"] == 2
    assert result["mirrored_variables"]
    assert result["val_accuracy"][-1] > 0.5  # it learned real digits (chance is 0.1)


@pytest.mark.parametrize("name, shape", [("lenet5", (32, 32, 1)), ("alexnet", (67, 67, 3)), ("vgg11", (32, 32, 3)),
                                         ("googlenet", (65, 65, 3)), ("resnet18", (32, 32, 3)), ("resnet20", (32, 32, 3)),
                                         ("small_cnn", (28, 28, 1))])
def test_every_builder_keeps_float32_outputs_for_mixed_precision(name, shape):
    options = {"aux_heads": True} if name == "googlenet" else {}
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = helpers.models.build(name, input_shape=shape, num_classes=10, **options)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.layers[1].compute_dtype == "bfloat16"  # the policy took effect
    assert [output.dtype for output in model.outputs] == ["float32"] * len(model.outputs)


def test_cosine_decay_reaches_zero_at_the_last_step():
    schedule = recipes.cosine_decay(1e-3, epochs=3, train_count=100, batch_size=32)  # 4 steps an epoch
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(6)) == pytest.approx(5e-4)
    assert float(schedule(12)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 1"):
        recipes.cosine_decay(1e-3, epochs=0, train_count=100, batch_size=32)


def test_l2_weight_decay_adds_rate_times_w_to_each_kernel_gradient():
    model = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)
    assert recipes.l2_weight_decay(model, 1e-4) == 20  # 19 convolutions and the classifier
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    assert len(kernels) == len(model.losses) == 20  # batch-norm γ, β and the bias are not decayed
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    expected = 0.5e-4 * sum(float(tf.reduce_sum(tf.square(k))) for k in kernels)
    assert float(penalty) == pytest.approx(expected, rel=1e-5)
    gradients = tape.gradient(penalty, kernels)
    for kernel, gradient in zip(kernels, gradients):
        np.testing.assert_allclose(gradient.numpy(), 1e-4 * kernel.numpy(), rtol=1e-5, atol=1e-12)
    recipes.l2_weight_decay(model, 0)
    assert model.losses == []
    with pytest.raises(ValueError, match="at least 0"):
        recipes.l2_weight_decay(model, -1)


def test_fingerprint_ignores_the_names_keras_numbers_per_session():
    # Under mixed_float16 Keras wraps the optimizer; the inner one's auto-name (sgd, sgd_1, …) must not count.
    def compiled():
        model = small_model()
        model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)),
                      loss="sparse_categorical_crossentropy")
        return model

    first, second = compiled(), compiled()  # Keras 3.15 names the inner ones SGD and SGD_1 (3.13: SGD twice)
    assert training._fingerprint(first, 32) == training._fingerprint(second, 32)
    assert training._fingerprint(first, 32) != training._fingerprint(first, 64)  # a different batch size does count
