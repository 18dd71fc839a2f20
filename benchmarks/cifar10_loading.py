"""Loading all 60,000 CIFAR-10 images: cold (decode every PNG of the tree, write the cache) and warm (read the cache).

Each round points the course's cache at a new empty folder, loads the training and test splits twice and times
both loads. The PNG files themselves are in the operating system's file cache after the first round (as they
are on a learner's machine after the first epoch); the first round's cold time, which may include reading them
from disk, is printed too.
"""

import argparse
import os
import statistics
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (cold, warm)")
    args = parser.parse_args()

    from helpers.data import load_cifar10

    def load_all():
        start = time.perf_counter()
        n = sum(len(load_cifar10(split)[1]) for split in ("train", "test"))
        return time.perf_counter() - start, n

    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["CNN_CACHE_DIR"] = cache
            seconds, n = load_all()
            cold.append(seconds)
            warm.append(load_all()[0])
    print(f"CIFAR-10, {n:,} images (train + test), {os.cpu_count()} CPUs, {args.repeats} rounds")
    print(f"  cold (decode the PNG tree, write the cache): median {statistics.median(cold):5.1f} s "
          f"(first round {cold[0]:.1f} s; goal ≤ 60 s)")
    print(f"  warm (read the cache):                       median {statistics.median(warm):5.2f} s "
          f"(max {max(warm):.2f} s; goal ≤ 2 s)")
    print(f"  cold ÷ warm = {statistics.median(cold) / statistics.median(warm):.0f}")


if __name__ == "__main__":
    main()
