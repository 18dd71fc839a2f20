"""Training throughput from the real JPEG tf.data pipeline ÷ the same model fed from in-memory tensors.

Epochs alternate between the two feeds so that load on a shared machine hits both alike; the first epoch
of each (tracing, and the pipeline's one-off JPEG decoding into its cache) is reported apart.
"""

import argparse
import statistics
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1000, help="training images used (of 2,000)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", choices=["auto", "off"], default="auto",
                        help="'off' streams and decodes every epoch (the path for datasets larger than RAM)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    import helpers.data
    import helpers.models
    import helpers.settings

    helpers.settings.seed_everything(0)
    data = helpers.data.cats_and_dogs(image_size=args.image_size, batch_size=args.batch_size,
                                      train_samples=args.samples, val_samples=args.batch_size,
                                      cache="auto" if args.cache == "auto" else False)
    # The same images, decoded once into one array: the in-memory reference.
    images, labels = map(np.concatenate, zip(*[(x.numpy(), y.numpy()) for x, y in data.train]))
    in_memory = (tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images))
                 .batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
    feeds = {"in-memory tensors": in_memory, "JPEG pipeline": data.train}

    model = helpers.models.build(args.model, input_shape=(args.image_size, args.image_size, 3), num_classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")

    def epoch_seconds(ds):
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - start

    first = {name: epoch_seconds(ds) for name, ds in feeds.items()}
    times = {name: [] for name in feeds}
    for _ in range(args.repeats):
        for name, ds in feeds.items():
            times[name].append(epoch_seconds(ds))

    n = len(images)
    print(f"{args.model} at {args.image_size}px, batch {args.batch_size}, {n} images, cache={args.cache}, "
          f"{args.repeats} interleaved epochs each")
    for name in feeds:
        med = statistics.median(times[name])
        print(f"  {name:18s} first epoch {first[name]:6.2f} s; median epoch {med:6.2f} s = {n / med:7.1f} images/s")
    ratio = statistics.median(times["in-memory tensors"]) / statistics.median(times["JPEG pipeline"])
    per_pair = [m / p for m, p in zip(times["in-memory tensors"], times["JPEG pipeline"])]
    print(f"pipeline throughput ÷ in-memory throughput: {ratio:.3f} (per pair: "
          f"{', '.join(f'{r:.2f}' for r in per_pair)}; goal ≥ 0.90)")


if __name__ == "__main__":
    main()
