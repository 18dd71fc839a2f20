"""How long does dropping a training pipeline's iterator take, with tf.data's autotuning thread and without it?

Keras makes a new iterator of the training dataset every epoch and drops the previous one; if that waits, the
epoch waits with it, at 0 % CPU. This holds an iterator of the course's CIFAR-10 training pipeline (shuffle,
batch, per-image augmentation, prefetch) for ``--lifetime`` seconds, taking a batch every ``--interval`` seconds
as a training loop would (little CPU: it can run beside other work), then times ``del iterator``. The two
variants, the pipeline as built and ``helpers.training.without_autotune_thread`` of it (what
``helpers.training.fit`` trains on), run side by side in two threads, ``--rounds`` times each.
"""

import argparse
import concurrent.futures
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lifetime", type=float, default=65.0, help="seconds each iterator lives")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between batches")
    args = parser.parse_args()

    import helpers.data
    import helpers.training

    train = helpers.data.cifar10(batch_size=128, validation=0).train
    variants = {"autotuned (tf.data default)": train,
                "without_autotune_thread": helpers.training.without_autotune_thread(train)}

    def rounds(dataset):
        seconds = []
        for _ in range(args.rounds):
            iterator, start = iter(dataset), time.perf_counter()
            while time.perf_counter() - start < args.lifetime:
                next(iterator)
                time.sleep(args.interval)
            before = time.perf_counter()
            del iterator
            seconds.append(time.perf_counter() - before)
        return seconds

    with concurrent.futures.ThreadPoolExecutor(len(variants)) as pool:
        results = dict(zip(variants, pool.map(rounds, variants.values())))
    print(f"CIFAR-10 training pipeline, batch 128; {args.rounds} iterators per variant, each read for "
          f"{args.lifetime:.0f} s (a batch every {args.interval} s), then dropped")
    for name, seconds in results.items():
        print(f"  {name:28s} drop: median {statistics.median(seconds):6.2f} s, max {max(seconds):6.2f} s, "
              f"{sum(s > 1 for s in seconds)} of {len(seconds)} over 1 s  ({', '.join(f'{s:.2f}' for s in seconds)})")


if __name__ == "__main__":
    main()
