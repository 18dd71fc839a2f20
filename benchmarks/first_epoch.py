"""Wall time of a new model's first (short) epoch: Keras's ``fit`` alone ÷ ``fit`` after ``build_training_state``.

Without a distribution strategy, Keras 3 creates the optimizer's slots and the metrics' totals while tracing the
first training step, and tf.function then traces that step a second time. ``helpers.training.fit`` creates them
first (``build_training_state``). A short epoch is mostly tracing, so this is most of a QUICK run's training
time. Each timed call builds, compiles and fits a fresh model on the same real batches; the two variants are
called in turns and the medians and their ratio printed per network.
"""

import argparse
import statistics

NETWORKS = {  # name: (builder options, image size): networks like 04's and 05's (no aux heads, RGB input)
    "resnet56": ({}, 32),
    "googlenet": ({"width": 0.25, "batch_norm": True}, 72),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--images", type=int, default=128, help="Dogs vs. Cats training images in the epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per variant, interleaved")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import helpers.data
    import helpers.measure
    import helpers.models
    import helpers.training

    for name in args.networks:
        options, size = NETWORKS[name]
        data = helpers.data.cats_and_dogs(image_size=size, batch_size=args.batch_size, train_samples=args.images,
                                          val_samples=args.batch_size)
        images, labels = (np.concatenate(part) for part in zip(*data.train))  # the same real images every fit

        def first_epoch(prebuild):
            def call():
                keras.backend.clear_session()
                keras.utils.set_random_seed(0)
                model = helpers.models.build(name, input_shape=(size, size, 3), num_classes=2, **options)
                model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(args.batch_size)
                if prebuild:
                    helpers.training.build_training_state(model, train)
                return model.fit(train, epochs=1, verbose=0, shuffle=False)  # the dataset is in a fixed order
            return call

        print(f"{name} {options} at {size} px: build + compile + one epoch of {args.images} images, batch "
              f"{args.batch_size}; {args.repeats} interleaved fits per variant after one warm-up round")
        times = helpers.measure.interleaved_seconds(
            {"Keras fit": first_epoch(False), "prebuilt + fit": first_epoch(True)}, repeats=args.repeats, warmup=1)
        for variant, t in times.items():
            print(f"  {variant:15s} median {statistics.median(t):6.1f} s (min {min(t):.1f}, max {max(t):.1f})")
        ratio = statistics.median(times["Keras fit"]) / statistics.median(times["prebuilt + fit"])
        pairs = [a / b for a, b in zip(times["Keras fit"], times["prebuilt + fit"])]
        print(f"  Keras fit ÷ prebuilt = {ratio:.2f} (medians; per pair: {', '.join(f'{r:.2f}' for r in pairs)})")


if __name__ == "__main__":
    main()
