"""Notebook 08's final recipe end to end on this CPU: CIFAR-10 test accuracy, wall minutes and FLOP/s, per seed.

    python benchmarks/speedrun_cifar10.py --seeds 0 1 2             # the final recipe (airbench's 93 %, 14 epochs), three runs
    python benchmarks/speedrun_cifar10.py --cold --seeds 0          # also rebuild the array cache from the files
    python benchmarks/speedrun_cifar10.py --epochs 2 --widths 32 64 64   # a quick look
    python benchmarks/speedrun_cifar10.py --holdout 5000 --epochs 11  # a choice: 45,000 trained, 5,000 scored

Every run: ``helpers.speedrun.train`` (whitening from the training images, the recipe of ``Recipe()``), the
10,000 test images scored once at the end (without and with test-time augmentation); nothing is chosen on them.
Choices (the recipe's epochs) are made with ``--holdout N``: N class-balanced training images (the split
``helpers.data.cifar10`` makes by default) are held out and scored instead, and the test images are not read.
"Training" is ``fit`` alone (what the records count); "wall" adds loading, whitening, building and evaluation.
FLOP/s = 3 × forward FLOPs per image × images trained / training seconds (convolutions and dense layers only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("CNN_NONINTERACTIVE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's 14")
    parser.add_argument("--widths", type=int, nargs=3, default=None, help="default: 64 128 128")
    parser.add_argument("--cold", action="store_true", help="delete the decoded-array cache first")
    parser.add_argument("--holdout", type=int, default=0,
                        help="hold out this many training images and score them instead of the test images")
    parser.add_argument("--out", type=Path, help="append one JSON line per run to this file")
    args = parser.parse_args()

    start = time.perf_counter()
    import numpy as np

    from helpers import measure, models, speedrun
    from helpers.data import cifar, load_cifar10

    if args.cold:
        for split in cifar.SPLITS:
            cifar._cache_file(cifar.ensure_cifar10() / split).unlink(missing_ok=True)
    train = load_cifar10("train")
    if args.holdout:  # validation images for a choice; the test images stay unread
        held, kept = cifar.balanced_indices(np.asarray(train[1]), args.holdout, 0, "--holdout")
        train, test = (train[0][kept], train[1][kept]), (train[0][held], train[1][held])
    else:
        test = load_cifar10("test")
    scored = f"{len(test[0]):,} held-out training images" if args.holdout else "the test images"
    load_seconds = time.perf_counter() - start
    overrides = {k: v for k, v in (("epochs", args.epochs), ("widths", tuple(args.widths or ()))) if v}
    recipe = speedrun.Recipe(**overrides)
    flops = measure.forward_flops(models.build("speedrun", input_shape=(32, 32, 3), num_classes=10,
                                               widths=recipe.widths))
    print(f"{recipe}\ntraining on {len(train[0]):,} images, scoring {scored}\nloading {load_seconds:.1f} s; {flops / 1e6:.1f} MFLOP per image forward; CPU cores: "
          f"{os.cpu_count()}")

    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        result = speedrun.train(recipe, train, test, seed=seed)
        wall = time.perf_counter() - start
        trained = recipe.epochs * (len(train[0]) // recipe.batch_size) * recipe.batch_size
        row = {"seed": seed, "holdout": args.holdout, **result.row(), "wall_minutes": wall / 60,
               "flops_per_second": 3 * flops * trained / result.train_seconds,
               "epoch_seconds": result.history["epoch_seconds"], "recipe": str(recipe)}
        rows.append(row)
        print(f"seed {seed}: {'held-out' if args.holdout else 'test'} {result.test_accuracy:.4f}, with TTA {result.tta_accuracy:.4f}; training "
              f"{result.train_seconds / 60:.1f} min, wall {wall / 60:.1f} min; {row['flops_per_second'] / 1e9:.0f} "
              f"GFLOP/s", flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")

    print(f"\n{'seed':>4s} {'held acc' if args.holdout else 'test acc':>9s} {'TTA acc':>8s} {'train min':>10s} {'wall min':>9s} {'GFLOP/s':>8s}")
    for row in rows:
        print(f"{row['seed']:4d} {row['test_accuracy']:9.4f} {row['tta_accuracy']:8.4f} {row['train_minutes']:10.1f} "
              f"{row['wall_minutes']:9.1f} {row['flops_per_second'] / 1e9:8.0f}")
    if len(rows) > 1:
        print(f"mean {statistics.mean(r['tta_accuracy'] for r in rows):.4f} with TTA, "
              f"{statistics.mean(r['test_accuracy'] for r in rows):.4f} without; training "
              f"{statistics.median(r['train_minutes'] for r in rows):.1f} min (median)")


if __name__ == "__main__":
    main()
