"""ResNet-20 on CIFAR-10 on this CPU: test accuracy against minutes of training (goal: ≥ 88 % in ≤ 30 minutes).

The course's own pieces end to end: ``helpers.data.cifar10`` (all 50,000 training images, the paper's 4-pixel
pad + crop + flip, per-pixel mean), ``helpers.models.build("resnet20")`` (269,722 parameters, option A),
``helpers.recipes.SHORT`` (SGD + Nesterov 0.9, warm-up + cosine to zero, weight decay 5e-4, label smoothing 0.1)
and ``helpers.training.fit``. The model reported is the last epoch's; the test set is evaluated after every
epoch only to draw the curve (its time is measured and left out of the training minutes). Nothing is selected
on it.
"""

import argparse
import json
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--network", default="resnet20")
    parser.add_argument("--recipe", default="short", choices=("short", "paper"))
    parser.add_argument("--out", type=Path, help="also write the per-epoch curve to this JSON file")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    import helpers.data
    import helpers.evaluation
    import helpers.models
    import helpers.recipes
    import helpers.settings
    import helpers.training

    class TestCurve(keras.callbacks.Callback):
        """Test accuracy after each epoch, against training minutes (the test passes' own time left out)."""

        def __init__(self, test):
            super().__init__()
            self.test, self.rows, self.evaluating = test, [], 0.0

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            before = time.perf_counter()
            minutes = (before - self.start - self.evaluating) / 60
            accuracy = helpers.evaluation.predict(self.model, self.test).accuracy
            self.evaluating += time.perf_counter() - before
            self.rows.append(dict(epoch=epoch + 1, train_minutes=round(minutes, 2), test_accuracy=accuracy,
                                  train_loss=float(logs["loss"]), train_accuracy=float(logs["accuracy"]),
                                  images_per_second=float(logs.get("images_per_second", 0))))
            print(f"  epoch {epoch + 1:3d}  {minutes:6.2f} min  loss {logs['loss']:.4f}  train acc "
                  f"{logs['accuracy']:.4f}  test acc {accuracy:.4f}", flush=True)

    recipe = getattr(helpers.recipes, args.recipe.upper())
    helpers.settings.seed_everything(args.seed)
    data = helpers.data.cifar10(batch_size=args.batch_size, validation=0, seed=args.seed)
    model = helpers.models.build(args.network, input_shape=(32, 32, 3), num_classes=10)
    recipe.compile(model, epochs=args.epochs, train_count=data.train_count, batch_size=args.batch_size)
    print(f"{args.network} ({model.count_params():,} weights), recipe {recipe}, {args.epochs} epochs, batch "
          f"{args.batch_size}, seed {args.seed}; TensorFlow {tf.__version__}, Keras {keras.__version__}")
    curve = TestCurve(data.test)
    start = time.perf_counter()
    history = helpers.training.fit(model, data.train, epochs=args.epochs, batch_size=args.batch_size,
                                   callbacks=[curve], run=f"benchmark_{args.network}_cifar10", resume=False, verbose=2,
                                   monitor="loss")
    wall = time.perf_counter() - start
    final = curve.rows[-1]
    print(f"final epoch: test accuracy {final['test_accuracy']:.4f} on {data.test_count:,} test images; "
          f"training {final['train_minutes']:.1f} min (fit wall time {wall / 60:.1f} min including "
          f"{curve.evaluating / 60:.1f} min of per-epoch test passes); median "
          f"{sorted(r['images_per_second'] for r in curve.rows)[len(curve.rows) // 2]:.0f} training images/s")
    if args.out:
        args.out.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(args).items()}, rows=curve.rows,
                                            wall_seconds=wall, history_epochs=len(history.epoch)), indent=1))


if __name__ == "__main__":
    main()
