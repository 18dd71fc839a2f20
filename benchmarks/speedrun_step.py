"""Notebook 08's training step on this CPU, and what each alternative would cost: medians of interleaved steps.

    python benchmarks/speedrun_step.py                      # batch 1,024, 8 timed steps each
    python benchmarks/speedrun_step.py --batch-size 256 --repeats 12

Variants of the same network and optimizer step (``helpers.speedrun.build``), timed in turns on one fixed batch:
- course: the speedrun net as built (the course's fused batch norm, exact GELU);
- keras_bn: Keras's own BatchNormalization layer instead of the course's fused one;
- gelu_tanh: GELU's tanh approximation instead of the exact (erf) one;
- xla: the course's net compiled with XLA (``jit_compile=True``);
- pytorch: the same layers in PyTorch (eager, channels-last, SGD + Nesterov, label-smoothed cross-entropy), if
  PyTorch is installed (``benchmarks/requirements-pytorch.txt``).
Ratios are against "course"; below 1 means faster than the course's step.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("CNN_NONINTERACTIVE", "1")


def keras_variant(name: str, images, seed: int):
    import keras

    from helpers import speedrun

    recipe = speedrun.Recipe(batch_size=len(images))
    options = {"keras_bn": {"fused_batch_norm": False},
               "gelu_tanh": {"activation": lambda x: keras.activations.gelu(x, approximate=True)}}.get(name, {})
    model, _, _ = speedrun.build(recipe, images, seed, **options)
    if name == "xla":
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], jit_compile=True)
    return model


def pytorch_step(images, labels):
    """The same network and step in PyTorch, eager mode: a learner's alternative on the same CPU."""
    import torch
    from torch import nn

    def group(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2),
                             nn.BatchNorm2d(cout, eps=1e-12, momentum=0.6, affine=True), nn.GELU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout, eps=1e-12, momentum=0.6, affine=True), nn.GELU())

    net = nn.Sequential(nn.Conv2d(3, 24, 2, bias=True), nn.GELU(), group(24, 64), group(64, 128), group(128, 128),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, 10, bias=False))
    net[0].weight.requires_grad = False
    for module in net.modules():  # γ fixed at 1, as in the Keras net
        if isinstance(module, nn.BatchNorm2d):
            module.weight.requires_grad = False
    net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1, momentum=0.85,
                                nesterov=True, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2)
    x = torch.tensor(images, dtype=torch.float32).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y = torch.tensor(labels.reshape(-1), dtype=torch.long)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x) / 9, y)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    return step, torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--variants", nargs="+", default=["course", "keras_bn", "gelu_tanh", "xla", "pytorch"])
    args = parser.parse_args()

    import importlib.util

    import numpy as np

    from helpers import measure, models
    from helpers.data import load_cifar10

    images, labels = load_cifar10("train")
    images, labels = images[: args.batch_size].astype("float32"), labels[: args.batch_size]
    one_hot = np.eye(10, dtype="float32")[labels.reshape(-1)]
    candidates, notes = {}, []
    for name in args.variants:
        if name == "pytorch":
            if importlib.util.find_spec("torch") is None:
                notes.append("pytorch: not installed, skipped")
                continue
            candidates[name], threads = pytorch_step(images, labels)
            notes.append(f"pytorch: {threads} threads")
        else:
            candidates[name] = measure.train_step(keras_variant(name, images, seed=0), images, one_hot)
    times = measure.medians(measure.interleaved_seconds(candidates, repeats=args.repeats, warmup=2))
    flops = 3 * measure.forward_flops(models.build("speedrun", input_shape=(32, 32, 3), num_classes=10))
    base = times.get("course")
    print(f"batch {args.batch_size}, medians of {args.repeats} interleaved steps; CPU cores: {os.cpu_count()}; "
          + "; ".join(notes))
    print(f"{'variant':10s} {'s/step':>7s} {'images/s':>9s} {'GFLOP/s':>8s} {'÷ course':>9s}")
    for name, seconds in times.items():
        ratio = f"{seconds / base:9.2f}" if base else ""
        print(f"{name:10s} {seconds:7.3f} {args.batch_size / seconds:9.0f} "
              f"{flops * args.batch_size / seconds / 1e9:8.1f} {ratio}")


if __name__ == "__main__":
    main()
