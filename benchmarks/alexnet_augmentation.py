"""AlexNet's augmentation, per batch (Keras's RandomCrop + RandomFlip) ÷ per image (the course's RandomCropFlip).

Keras's ``RandomCrop`` draws one offset per call, so mapped over batches every image of a batch gets the same
crop; ``helpers.data.augment.RandomCropFlip`` draws an offset and a flip for each image with two gathers (the flip
reads the columns backwards). Does that cost pipeline speed? Both read the same Dogs vs. Cats pipeline
(``--images`` training images loaded at 110 px, cached in memory, batch 32) and cut 96-px crops; each timed call
iterates one whole epoch of the pipeline (no model: the augmentation is all that differs). The calls alternate
between the two after one untimed epoch each; the script prints the medians in images/s and their ratio.
"""

import argparse
import statistics


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per variant, interleaved")
    args = parser.parse_args()

    import keras

    import helpers.data
    import helpers.data.augment
    import helpers.measure
    from helpers.data.augment import load_size

    crop = 96
    variants = {
        "per batch (Keras)": keras.Sequential([keras.layers.RandomCrop(crop, crop), keras.layers.RandomFlip("horizontal")]),
        "per image (course)": keras.Sequential([helpers.data.augment.RandomCropFlip(crop, crop)]),
    }
    pipelines = {name: helpers.data.cats_and_dogs(image_size=load_size(crop), batch_size=32,
                                                  train_samples=args.images, val_samples=32, augment=augment, seed=0)
                 for name, augment in variants.items()}

    def epoch(data):
        def call():
            count = 0
            for images, _ in data.train:
                count += int(images.shape[0])
            return count
        return call

    times = helpers.measure.interleaved_seconds({name: epoch(d) for name, d in pipelines.items()},
                                                repeats=args.repeats, warmup=1)
    count = pipelines["per image (course)"].train_count
    print(f"Dogs vs. Cats, {count} images at {load_size(crop)} px → {crop}-px crops, batch 32; "
          f"{args.repeats} interleaved epochs per variant after one untimed epoch")
    for name, seconds in times.items():
        print(f"  {name:20s} median {count / statistics.median(seconds):8.0f} images/s")
    ratio = statistics.median(times["per batch (Keras)"]) / statistics.median(times["per image (course)"])
    print(f"  per image ÷ per batch throughput = {ratio:.2f}")


if __name__ == "__main__":
    main()
