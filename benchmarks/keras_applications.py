"""Training-step time of the course's VGG-16 and ResNet-50 ÷ keras.applications' VGG16 / ResNet50 (weights=None).

Both sides get the same real batch of Dogs vs. Cats images, the same image size, the same optimizer and loss,
and are called in turns (ours, theirs, ours, theirs, …) after warm-up steps, so that load from other programs
hits both alike; the medians and their ratio are printed. A ratio near 1 means the course's builders, written
for readability from a configuration table, cost nothing in speed.
"""

import argparse
import statistics


def compiled(model):
    import keras

    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per model, interleaved")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first (tracing)")
    parser.add_argument("--models", nargs="+", default=["vgg16", "resnet50"], choices=["vgg16", "resnet50"])
    args = parser.parse_args()

    import keras

    import helpers.data
    import helpers.measure
    import helpers.models
    import helpers.settings

    helpers.settings.seed_everything(0)
    data = helpers.data.cats_and_dogs(image_size=args.image_size, batch_size=args.batch_size,
                                      train_samples=args.batch_size, val_samples=args.batch_size)
    images, labels = next(iter(data.train))
    shape, classes = (args.image_size, args.image_size, 3), len(data.class_names)
    reference = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}

    candidates, counts = {}, {}
    for name in args.models:
        ours = compiled(helpers.models.build(name, input_shape=shape, num_classes=classes))
        theirs = compiled(reference[name](weights=None, input_shape=shape, classes=classes))
        for who, model in (("ours", ours), ("keras", theirs)):
            candidates[(name, who)] = helpers.measure.train_step(model, images, labels)
            counts[(name, who)] = (sum(int(w.numpy().size) for w in model.trainable_weights), len(model.layers))

    times = helpers.measure.interleaved_seconds(candidates, repeats=args.repeats, warmup=args.warmup)
    print(f"training step at {args.image_size}px, batch {args.batch_size}, SGD; {args.repeats} interleaved timed "
          f"steps per model after {args.warmup} warm-up steps")
    for name in args.models:
        for who in ("ours", "keras"):
            params, layers = counts[(name, who)]
            t = times[(name, who)]
            print(f"  {name:9s} {who:6s} {params:>12,} trainable params {layers:>4} layers: median "
                  f"{statistics.median(t) * 1000:8.1f} ms/step (min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f})")
        ratio = statistics.median(times[(name, "ours")]) / statistics.median(times[(name, "keras")])
        pairs = [o / k for o, k in zip(times[(name, "ours")], times[(name, "keras")])]
        fastest = min(times[(name, "ours")]) / min(times[(name, "keras")])
        print(f"  {name}: ours ÷ keras.applications step time = {ratio:.3f} (medians; fastest steps: {fastest:.3f}; "
              f"per pair: {', '.join(f'{r:.2f}' for r in pairs)}; goal ≤ 1.05)")


if __name__ == "__main__":
    main()
