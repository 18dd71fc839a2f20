"""Training-step time of AlexNet in float32 ÷ the same network under mixed_bfloat16, on this machine's CPU.

Mixed precision computes in 16 bits and keeps float32 weights (``helpers.training.set_precision``). It only pays
where the hardware has fast 16-bit arithmetic: on a CPU, bfloat16 instructions (AVX512_BF16 / AMX); the script
prints whether this CPU has them. The two models get the same real batch and are called in turns after warm-up
steps; the medians and their ratio are printed.
"""

import argparse
import statistics


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=float, default=0.5, help="notebook 02's full-mode width")
    parser.add_argument("--fc-units", type=int, default=1024, help="notebook 02's fc6/fc7 width")
    parser.add_argument("--repeats", type=int, default=9, help="timed steps per precision, interleaved")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per precision first (tracing)")
    args = parser.parse_args()

    import keras

    import helpers.data
    import helpers.measure
    import helpers.models
    import helpers.settings
    import helpers.training

    helpers.settings.seed_everything(0)
    data = helpers.data.cats_and_dogs(image_size=args.image_size, batch_size=args.batch_size,
                                      train_samples=args.batch_size, val_samples=args.batch_size)
    images, labels = next(iter(data.train))
    shape = (args.image_size, args.image_size, 3)
    options = dict(width=args.width, fc_units=args.fc_units) if args.model in ("alexnet", "vgg16") else {}

    candidates = {}
    for policy in ("float32", "mixed_bfloat16"):
        helpers.training.set_precision(policy)  # layers take the policy when they are built
        model = helpers.models.build(args.model, input_shape=shape, num_classes=len(data.class_names), **options)
        helpers.training.check_float32_outputs(model)
        model.compile(optimizer=keras.optimizers.Adam(3e-4), loss="sparse_categorical_crossentropy")
        candidates[policy] = helpers.measure.train_step(model, images, labels)
    helpers.training.set_precision(False)

    flags = helpers.training.cpu_flags() & helpers.training.BF16_CPU_FLAGS
    print(f"{args.model} (width {args.width}, fc {args.fc_units}) training step at {args.image_size}px, batch "
          f"{args.batch_size}, Adam; device: {helpers.training.accelerator()}; bfloat16 CPU flags: "
          f"{', '.join(sorted(flags)) or 'none'}; {args.repeats} interleaved timed steps after {args.warmup} warm-up")
    times = helpers.measure.interleaved_seconds(candidates, repeats=args.repeats, warmup=args.warmup)
    for policy, t in times.items():
        print(f"  {policy:15s} median {statistics.median(t) * 1000:8.1f} ms/step "
              f"(min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f})")
    ratio = statistics.median(times["float32"]) / statistics.median(times["mixed_bfloat16"])
    pairs = [f / b for f, b in zip(times["float32"], times["mixed_bfloat16"])]
    fastest = min(times["float32"]) / min(times["mixed_bfloat16"])
    print(f"float32 ÷ mixed_bfloat16 step time = {ratio:.2f} (medians; >1: bfloat16 is faster; fastest steps: "
          f"{fastest:.2f}; per pair: {', '.join(f'{r:.2f}' for r in pairs)})")


if __name__ == "__main__":
    main()
