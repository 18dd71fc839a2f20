"""Training-step time of the CIFAR ResNets with Keras's BatchNormalization ÷ with helpers.layers.BatchNormalization.

Keras 3 computes batch norm from about ten small ops (moments, then normalise); the course's layer calls
TensorFlow's fused kernel (``FusedBatchNormV3``) instead, with the same weights and results. Both variants of a
network start from the same weights and train on the same random batch, held in memory as tensors: each timed call
is one compiled ``fit`` of ``--steps`` SGD steps (momentum 0.9) on that batch repeated, after an untimed fit that
traces the step. The calls alternate between the variants. A fit's ms per step is the mean of its steps
(``helpers.measure.StepTimer``); the script prints each variant's median, fastest and slowest fit, the median
fit's whole wall time per step, and the ratio of the medians. Random data: no dataset to download.

It also answers where a deep net's throughput goes: the forward multiply-adds of one image (ResNet-20 40.6 M,
ResNet-56 125.5 M) times the batch, over the median step time, give multiply-adds per second for the residual
nets and their plain twins; the last lines compare ResNet-56's rate with ResNet-20's under each batch norm.
"""

import argparse
import os
import statistics

NETWORKS = ("resnet20", "resnet56", "plain20", "plain56")


def fit_steps(model, batches, steps, timers):
    """One timed call: a fit of ``steps`` steps, its per-step times appended to ``timers``."""
    import helpers.measure

    def call():
        # A batch-level callback, as helpers.training.fit has (Timing): Keras then runs the steps one after
        # another, not with its asynchronous callback dispatch, so this times the course's own training loop.
        timers.append(helpers.measure.StepTimer())
        return model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=timers[-1:])
    return call


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed fit")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per variant, interleaved")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import helpers.analysis
    import helpers.layers
    import helpers.measure
    import helpers.models
    import helpers.models.resnet

    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(args.batch_size, 32, 32, 3)).astype("float32"))
    labels = tf.constant(rng.integers(0, 10, args.batch_size))
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
    variants = {"Keras BN": keras.layers.BatchNormalization, "fused BN": helpers.layers.BatchNormalization}

    print(f"CIFAR ResNets at 32 px, batch {args.batch_size}, SGD momentum 0.9, {os.cpu_count()} CPU cores; "
          f"{args.repeats} interleaved fits of {args.steps} steps per variant after one untimed fit")
    print(f"{'network':10s} {'variant':10s} {'ms/step':>8s} {'min':>7s} {'max':>7s} {'fit wall/step':>14s} "
          f"{'G mult-adds/s':>14s}")
    rates = {}  # (network, variant) -> forward multiply-adds per second of training
    for name in args.networks:
        candidates, timers, weights = {}, {}, None
        for variant, layer in variants.items():
            helpers.models.resnet.BatchNormalization = layer  # the name the builder calls; put back below
            try:
                model = helpers.models.build(name, input_shape=(32, 32, 3), num_classes=10)
            finally:
                helpers.models.resnet.BatchNormalization = helpers.layers.BatchNormalization
            assert {type(x) for x in model.layers if isinstance(x, keras.layers.BatchNormalization)} == {layer}
            if weights is None:
                weights = model.get_weights()
                macs = helpers.analysis.layer_table(model).macs
            else:
                model.set_weights(weights)  # both variants start from the same weights
            model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
            model.fit(batches, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)  # traces the training step
            timers[variant] = []
            candidates[variant] = fit_steps(model, batches, args.steps, timers[variant])
        wall = helpers.measure.interleaved_seconds(candidates, repeats=args.repeats, warmup=0)
        # ms per step of each fit from its steps alone: on this machine a fit's wall time sometimes also holds
        # seconds spent outside its steps, with either BN (the last column shows it), which is not batch norm.
        per_step = {variant: [statistics.mean(timer.seconds) * 1000 for timer in timers[variant]]
                    for variant in candidates}
        for variant, ms in per_step.items():
            fit_wall = statistics.median(wall[variant]) * 1000 / args.steps
            rates[name, variant] = macs * args.batch_size / (statistics.median(ms) / 1000)
            print(f"{name:10s} {variant:10s} {statistics.median(ms):8.1f} {min(ms):7.1f} {max(ms):7.1f} "
                  f"{fit_wall:14.1f} {rates[name, variant] / 1e9:14.1f}")
        keras_ms, fused_ms = per_step["Keras BN"], per_step["fused BN"]
        pairs = ", ".join(f"{a / b:.2f}" for a, b in zip(keras_ms, fused_ms))
        print(f"{name:10s} Keras BN ÷ fused BN = {statistics.median(keras_ms) / statistics.median(fused_ms):.2f} "
              f"(medians; per pair: {pairs})")
    for deep, shallow in (("resnet56", "resnet20"), ("plain56", "plain20")):
        for variant in variants:
            if (deep, variant) in rates and (shallow, variant) in rates:
                print(f"{deep} ÷ {shallow} multiply-adds per second, {variant}: "
                      f"{rates[deep, variant] / rates[shallow, variant]:.2f} (goal ≥ 0.8)")


if __name__ == "__main__":
    main()
