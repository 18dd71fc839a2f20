"""Peak memory (RSS) of training from 2,000 vs 20,000 images, each in a fresh process.

The 20,000-image folder is made of symbolic links to the 2,000 real training files (ten per file), so the
pipeline does ten times the work on ten times the files. For contrast, the approach this course replaces —
every image held as one float64 array — is measured on the 2,000 images.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def train_on(folder, image_size, batch_size):
    import helpers.data
    import helpers.models

    data = helpers.data.image_folder(folder, image_size=image_size, batch_size=batch_size, validation_fraction=0.05)
    model = helpers.models.build("small_cnn", input_shape=(image_size, image_size, 3), num_classes=2)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    # One whole pass (which fills the cache, if the pipeline keeps one) and a few batches more (read from it).
    steps = -(-data.train_count // batch_size) + 10
    model.fit(data.train.repeat(2), steps_per_epoch=steps, epochs=1, verbose=0)
    return {"images": data.train_count, "peak_rss_mb": peak_rss_mb()}


def float64_arrays(folder, image_size):
    import numpy as np
    from PIL import Image

    paths = sorted(Path(folder).rglob("*.jpg"))
    arrays = np.stack([np.asarray(Image.open(p).convert("RGB").resize((image_size, image_size)), dtype=np.float64)
                       for p in paths])
    return {"images": len(arrays), "peak_rss_mb": peak_rss_mb(), "array_mb": arrays.nbytes / 2**20}


def link_farm(source, target, copies):
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        out = target / class_dir.name
        out.mkdir(parents=True)
        for f in sorted(class_dir.iterdir()):
            for i in range(copies):
                os.symlink(f, out / f"{i}_{f.name}")


def run_child(*args):
    result = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, size, batch = args.child
        out = (train_on(folder, int(size), int(batch)) if kind == "train"
               else float64_arrays(folder, int(size)))
        print(json.dumps(out))
        return

    import helpers.data.images

    train = helpers.data.images.ensure_cats_and_dogs() / "train"
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "train"
        link_farm(train, big, args.copies)
        rows = [("2,000 images, tf.data", run_child("train", train, args.image_size, args.batch_size)),
                (f"{2000 * args.copies:,} images, tf.data", run_child("train", big, args.image_size, args.batch_size)),
                ("2,000 images as float64 arrays", run_child("arrays", train, args.image_size, args.batch_size))]
    print(f"small_cnn training at {args.image_size}px, batch {args.batch_size}; peak RSS per fresh process:")
    for name, row in rows:
        extra = f" (the array alone: {row['array_mb']:.0f} MB)" if "array_mb" in row else ""
        print(f"  {name:34s} {row['images']:>6} images  peak {row['peak_rss_mb']:7.0f} MB{extra}")
    small, large = rows[0][1]["peak_rss_mb"], rows[1][1]["peak_rss_mb"]
    print(f"peak RSS ratio {2000 * args.copies:,} ÷ 2,000 images: {large / small:.2f} (goal: flat, ≤ 1,500 MB)")


if __name__ == "__main__":
    main()
