"""Does the CIFAR-10 loader keep up with training? An epoch from the course's pipeline ÷ the same epoch from memory.

ResNet-20 trains one epoch (``--images`` training images, batch 128, SGD with momentum) from two sources:
``helpers.data.cifar10(augment=True).train`` — the course's pipeline: shuffle, mean subtraction and the paper's
per-image pad + crop + flip, all computed on the fly on the same two cores that train — and the same images,
already normalised, from a ``tf.data`` cache in memory with no augmentation: the fastest the step can be fed.
Both go through ``helpers.training.without_autotune_thread`` as ``helpers.training.fit`` does. The epochs
alternate between the sources after one untimed epoch each (tracing, filling the cache); the script prints
the median epoch times and the ratio of throughputs (goal ≥ 0.9: the augmentation must not eat the cores).
"""

import argparse
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10_000, help="training images in an epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per source, interleaved")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import helpers.data
    import helpers.measure
    import helpers.models
    import helpers.training

    data = helpers.data.cifar10(batch_size=args.batch_size, train_samples=args.images, augment=True, seed=0)
    x, y = helpers.data.load_cifar10("train")
    index = np.random.default_rng(0).permutation(len(y))[: data.train_count]
    images = x[index].astype(np.float32) / 255 - data.mean
    memory = tf.data.Dataset.from_tensor_slices((images, y[index])).batch(args.batch_size).cache()
    sources = {"loader + augmentation": data.train, "tensors in memory": memory.prefetch(tf.data.AUTOTUNE)}

    keras.utils.set_random_seed(0)
    model = helpers.models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    helpers.training.build_training_state(model, memory)

    def epoch(source):
        def call():
            return model.fit(helpers.training.without_autotune_thread(source), epochs=1, verbose=0, shuffle=False)
        return call

    print(f"ResNet-20, one epoch of {data.train_count:,} CIFAR-10 images, batch {args.batch_size}; "
          f"{args.repeats} interleaved epochs per source after one untimed epoch each")
    start = time.perf_counter()
    times = helpers.measure.interleaved_seconds({name: epoch(ds) for name, ds in sources.items()},
                                                repeats=args.repeats, warmup=1)
    for name, seconds in times.items():
        print(f"  {name:22s} median {statistics.median(seconds):6.2f} s per epoch "
              f"({data.train_count / statistics.median(seconds):5.0f} img/s; min {min(seconds):.2f}, max {max(seconds):.2f})")
    ratio = statistics.median(times["tensors in memory"]) / statistics.median(times["loader + augmentation"])
    print(f"  loader ÷ in-memory throughput = {ratio:.2f} (goal ≥ 0.9); {time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
