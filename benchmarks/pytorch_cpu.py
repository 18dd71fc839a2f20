"""Training speed on this CPU: the course's networks (TensorFlow/Keras) against the same networks in PyTorch.

The question a learner asks before picking this course: would the same network train faster in PyTorch? Each
network is built twice with equal trainable parameter counts (asserted): by the course's builder, and by a short
PyTorch module written out below. Both train with the same batch size, SGD with momentum 0.9, cross-entropy and
an accuracy metric, on one random batch held in memory (no input pipeline: the frameworks alone). PyTorch runs
eager, channels-last, and compiled (``torch.compile``, which needs a C++ compiler; a failure is printed as such).

Every (network, variant) runs in its own fresh process, so no framework's thread pools or caches meet another's;
the processes are run in turns, the order reversed every round (A B C, C B A, …), and medians are printed with
the ratios to the course's figure. Per process:

- first call: seconds from building the model to the end of its first training step (tracing / compiling
  included, interpreter start-up and imports not);
- training images/s: after ``--warmup`` more steps, steps are run for ``--seconds``; images ÷ seconds between
  the first and the last timed step's end;
- the fraction of the CPU's fp32 matmul peak that a step reaches: forward multiply-adds × 2 FLOPs × 3 (forward,
  and a backward pass of about twice its cost) × images/s ÷ the peak, measured in the same run with the faster
  of ``tf.matmul`` and ``torch.mm`` on 2,048² matrices.

Needs PyTorch, a benchmark dependency only: ``.venv/bin/pip install -r benchmarks/requirements-pytorch.txt``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NETWORKS = {  # name: (course builder name, its options, image size)
    "resnet20": ("resnet20", {}, 32),
    "resnet56": ("resnet56", {}, 32),
    # an ImageNet-family net at a CPU size: VGG-16 (configuration D) at a quarter of its widths, 64 px, 10 classes
    "vgg16_w0.25_64px": ("vgg16", {"width": 0.25, "fc_units": 1024}, 64),
}
VARIANTS = ("keras", "torch eager", "torch channels-last", "torch compiled")


# ---------------------------------------------------------------------------------------------------------
# One process = one (network, variant)


def _timed_steps(step, seconds, warmup):
    """Run ``step()`` ``warmup`` times, then for ``seconds``: (steps after the first timed one, their seconds)."""
    for _ in range(warmup):
        step()
    ends = [time.perf_counter()]
    while ends[-1] - ends[0] < seconds or len(ends) < 3:
        step()
        ends.append(time.perf_counter())
    return len(ends) - 1, ends[-1] - ends[0]


def keras_worker(network, batch_size, seconds, warmup):
    import keras
    import numpy as np
    import tensorflow as tf

    import helpers.analysis
    import helpers.models
    import helpers.training

    builder, options, size = NETWORKS[network]
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size, size, size, 3)).astype("float32"))
    labels = tf.constant(rng.integers(0, 10, batch_size))
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()

    class Steps(keras.callbacks.Callback):  # stops fit after the timed window; records each step's end
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            if len(self.ends) > warmup and self.ends[-1] - self.ends[warmup] >= seconds and len(self.ends) > warmup + 2:
                self.model.stop_training = True

    start = time.perf_counter()
    model = helpers.models.build(builder, input_shape=(size, size, 3), num_classes=10, **options)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    helpers.training.build_training_state(model, batches)  # as helpers.training.fit does: one trace, not two
    model.fit(batches, epochs=1, steps_per_epoch=1, verbose=0)
    first_call = time.perf_counter() - start

    steps = Steps()
    # steps_per_epoch is an upper bound; the callback stops the fit once the window has passed
    model.fit(batches, epochs=1, steps_per_epoch=100_000, verbose=0, callbacks=[steps])
    timed = steps.ends[warmup:]
    return {"first_call_s": first_call, "images_per_second": (len(timed) - 1) * batch_size / (timed[-1] - timed[0]),
            "parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "forward_macs": int(helpers.analysis.layer_table(model).macs),
            "version": f"TensorFlow {tf.__version__}, Keras {keras.__version__}"}


def torch_model(network):
    """The same network in PyTorch: he-normal convolutions, BN (ε 1e-5) where the course's builder has it."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    if network.startswith("resnet"):
        class Block(nn.Module):  # 3×3 → BN → ReLU → 3×3 → BN, + option-A shortcut, ReLU
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                self.stride, self.extra = stride, cout - cin

            def forward(self, x):
                y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
                shortcut = x[:, :, ::self.stride, ::self.stride]
                if self.extra:  # zero channels appended, as the course's ZeroPadShortcut does
                    shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
                return F.relu(y + shortcut)

        n = {"resnet20": 3, "resnet56": 9}[network]
        layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(n):
                layers.append(Block(cin, width, 2 if stage > 0 and index == 0 else 1))
                cin = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    else:  # VGG-16 configuration D at width 0.25: 16, 32, 64, 128, 128 filters; fc 1024, 1024, 10
        layers, cin = [], 3
        for width, convs in zip((16, 32, 64, 128, 128), (2, 2, 3, 3, 3)):
            for _ in range(convs):
                layers += [nn.Conv2d(cin, width, 3, 1, 1), nn.ReLU()]
                cin = width
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Flatten(), nn.Linear(128 * 2 * 2, 1024), nn.ReLU(), nn.Dropout(0.5),
                   nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10)]
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model


def torch_worker(network, variant, batch_size, seconds, warmup):
    import torch

    _, _, size = NETWORKS[network]
    torch.manual_seed(0)
    images = torch.randn(batch_size, 3, size, size)
    labels = torch.randint(0, 10, (batch_size,))

    start = time.perf_counter()
    model = torch_model(network).train()
    if variant in ("torch channels-last", "torch compiled"):
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if variant == "torch compiled" else model
    correct = torch.zeros(())

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = forward(images)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        correct.add_((logits.detach().argmax(1) == labels).sum())  # the accuracy metric Keras keeps

    step()
    first_call = time.perf_counter() - start
    steps, elapsed = _timed_steps(step, seconds, warmup)
    return {"first_call_s": first_call, "images_per_second": steps * batch_size / elapsed, "parameters": parameters,
            "version": f"PyTorch {torch.__version__}"}


def peak_worker(framework, seconds):
    """fp32 GFLOP/s of a 2,048² matmul, repeated for ``seconds``."""
    n = 2048
    if framework == "tf":
        import tensorflow as tf

        a = tf.random.normal((n, n))
        matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
        step = lambda: matmul().numpy()  # noqa: E731
    else:
        import torch

        a = torch.randn(n, n)
        step = lambda: torch.mm(a, a)  # noqa: E731
    steps, elapsed = _timed_steps(step, seconds, warmup=2)
    return {"gflops": 2 * n ** 3 * steps / elapsed / 1e9}


# ---------------------------------------------------------------------------------------------------------
# The driver: fresh processes in turns, medians, ratios


def run_worker(job, args):
    command = [sys.executable, __file__, "--worker", json.dumps(job), "--batch-size", str(args.batch_size),
               "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20, help="timed training per process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first call")
    parser.add_argument("--rounds", type=int, default=3, help="processes per (network, variant), in turns")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:  # one measurement in this process; the driver reads the JSON line
        job = json.loads(args.worker)
        if job["kind"] == "peak":
            result = peak_worker(job["framework"], args.seconds / 2)
        elif job["variant"] == "keras":
            result = keras_worker(job["network"], args.batch_size, args.seconds, args.warmup)
        else:
            result = torch_worker(job["network"], job["variant"], args.batch_size, args.seconds, args.warmup)
        print(json.dumps(result))
        return

    jobs = [{"kind": "peak", "framework": f} for f in ("tf", "torch")]
    jobs += [{"kind": "train", "network": n, "variant": v} for n in args.networks for v in args.variants]
    results = {json.dumps(job): [] for job in jobs}
    import helpers.cpu

    print(helpers.cpu.header())
    print(f"{os.cpu_count()} CPU cores; batch {args.batch_size}; {args.rounds} rounds of {len(jobs)} fresh "
          f"processes, {args.seconds:g} s of timed training each", flush=True)
    for round_ in range(args.rounds):
        for job in jobs if round_ % 2 == 0 else jobs[::-1]:
            result = run_worker(job, args)
            results[json.dumps(job)].append(result)
            print(f"  round {round_ + 1}: {job.get('network', 'matmul')} {job.get('variant', job.get('framework'))}: "
                  f"{result}", flush=True)

    def median(job, key):
        values = [r[key] for r in results[json.dumps(job)] if key in r]
        return statistics.median(values) if values else None

    peak = max(median({"kind": "peak", "framework": f}, "gflops") for f in ("tf", "torch"))
    versions = sorted({r["version"] for rs in results.values() for r in rs if "version" in r})
    print(f"\nfp32 matmul peak (2,048², the faster framework): {peak:.0f} GFLOP/s;  {'; '.join(versions)}")
    print(f"{'network':18s} {'variant':20s} {'params':>10s} {'images/s':>9s} {'÷ Keras':>8s} {'first call':>11s} "
          f"{'% of peak':>10s}")
    for network in args.networks:
        keras_job = {"kind": "train", "network": network, "variant": "keras"}
        keras_rate, macs = median(keras_job, "images_per_second"), median(keras_job, "forward_macs")
        for variant in args.variants:
            job = {"kind": "train", "network": network, "variant": variant}
            rate = median(job, "images_per_second")
            if rate is None:
                errors = {r.get("error") for r in results[json.dumps(job)]}
                print(f"{network:18s} {variant:20s} failed: {'; '.join(sorted(map(str, errors)))}")
                continue
            counts = {r["parameters"] for rs in (results[json.dumps(job)], results[json.dumps(keras_job)])
                      for r in rs if "parameters" in r}
            assert len(counts) == 1, f"{network}: parameter counts differ between Keras and {variant}: {counts}"
            ratio = f"{rate / keras_rate:.2f}" if keras_rate else "-"
            share = f"{100 * 6 * macs * rate / (peak * 1e9):.0f} %" if macs else "-"
            print(f"{network:18s} {variant:20s} {counts.pop():>10,} {rate:9.0f} {ratio:>8s} "
                  f"{median(job, 'first_call_s'):9.1f} s {share:>10s}")
    print("÷ Keras: a variant's images/s over the course's (above 1: PyTorch is faster); medians of the rounds")


if __name__ == "__main__":
    main()
