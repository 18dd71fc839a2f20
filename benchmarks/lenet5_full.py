"""Train both LeNet-5 variants in full mode, the way notebook 01 does, and report time and test accuracy.

    python benchmarks/lenet5_full.py                 # both variants, seeds 42 and 7, the "lenet5" profile's full sizes
    python benchmarks/lenet5_full.py --variants paper --seeds 0 1 2
    python benchmarks/lenet5_full.py --variants modern --epochs 5
    python benchmarks/lenet5_full.py --variants paper --weight-decay 0.1 --validation-only   # a choice

Choices (the weight decay) are made with ``--validation-only``: the final epoch's accuracy on the 5,000 validation
images (the first 5,000 of MNIST's training file, never trained on) is reported, and the test images are not scored.

Uses the notebook's own helpers (``mnist_splits``, ``train_lenet5``), so the numbers are the notebook's.
Needs the MNIST files (``CNN_DATA_DIR`` or ``<repo>/data``).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("CNN_NONINTERACTIVE", "1")  # one line per epoch instead of a progress bar

from helpers import settings  # noqa: E402
from helpers.models import lenet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=lenet.VARIANTS, default=list(lenet.VARIANTS))
    parser.add_argument("--epochs", type=int, default=None, help="default: the lenet5 profile's full mode")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--weight-decay", type=float, default=lenet.WEIGHT_DECAY, help="AdamW's; 0 for plain Adam")
    parser.add_argument("--validation-only", action="store_true",
                        help="for a choice: score the validation images only, never the test images")
    args = parser.parse_args()

    cfg = settings.run_config("lenet5", quick=False, epochs=args.epochs, batch_size=args.batch_size)
    print(f"{cfg.epochs} epochs of batch {cfg.batch_size}; variants {args.variants}; seeds {args.seeds}")
    train, validation, (x_test, y_test) = lenet.mnist_splits(cfg.train_samples, cfg.val_samples)
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            start = time.perf_counter()
            model, history = lenet.train_lenet5(variant, train, validation, epochs=cfg.epochs,
                                                batch_size=cfg.batch_size, seed=seed,
                                                weight_decay=args.weight_decay)
            scored = validation if args.validation_only else (x_test, y_test)
            result = model.evaluate(*scored, batch_size=1000, verbose=0, return_dict=True)
            rows.append((variant, seed, time.perf_counter() - start, history.wall_seconds,
                         history.history["epoch_seconds"], result["accuracy"]))

    print(f"\n{'variant':8s} {'seed':>4s} {'wall s':>7s} {'fit s':>7s} {'epochs':>6s} {'s/epoch (median)':>17s} "
          f"{'val acc' if args.validation_only else 'test acc':>9s}")
    for variant, seed, wall, fit_seconds, epoch_seconds, accuracy in rows:
        median = sorted(epoch_seconds)[len(epoch_seconds) // 2]
        print(f"{variant:8s} {seed:4d} {wall:7.1f} {fit_seconds:7.1f} {len(epoch_seconds):6d} {median:17.1f} "
              f"{accuracy:9.4f}")
    print("paper (1998), LeNet-5 without distortions: 0.9905")
    print(f"(train {len(train[0])}, validation {len(validation[0])}, test {len(x_test)} images; "
          f"batch {cfg.batch_size}; weight decay {args.weight_decay}; wall = build + fit + "
          f"{'validation' if args.validation_only else 'test'} evaluation; "
          f"CPU cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
