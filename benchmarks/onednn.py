"""oneDNN on or off: the course's ResNet-20 and ResNet-56 trained both ways on this CPU, side by side.

TensorFlow turns oneDNN on by itself only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; ``helpers.cpu``
turns it on everywhere on x86-64 unless ``TF_ENABLE_ONEDNN_OPTS`` is set. This script is the measurement behind
that choice. On a CPU where TensorFlow's default is "on", the "off" rows reproduce what an AVX2-only CPU gets by
default (Eigen's kernels), on this CPU's cores.

Each (network, variant) runs in a fresh process with its own environment (the setting is read when TensorFlow is
imported), the processes in turns, the order reversed every round; the training step is the one
``pytorch_cpu.py`` times (batch 128, SGD with momentum, one random batch held in memory: the kernels alone, no
input pipeline), and the table gives medians of the rounds. A third variant keeps oneDNN on with one inter-op
thread (``TF_NUM_INTEROP_THREADS=1``), the other knob that differs between machines. Every worker prints its own
header (CPU, flags, oneDNN's state as TensorFlow reports it, threads).

    .venv/bin/python benchmarks/onednn.py               # both networks, 3 rounds
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

VARIANTS = {  # name: environment for TensorFlow's import
    "oneDNN on": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "oneDNN on, 1 inter-op thread": {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_NUM_INTEROP_THREADS": "1"},
}
NETWORKS = ("resnet20", "resnet56")


def worker(network, batch_size, seconds, warmup):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pytorch_cpu import keras_worker  # the same timed training step, written once

    import helpers.cpu

    result = keras_worker(network, batch_size, seconds, warmup)
    return {**result, "onednn": helpers.cpu.onednn_enabled(), "header": helpers.cpu.header()}


def run_worker(network, variant, args):
    command = [sys.executable, __file__, "--worker", network, "--batch-size", str(args.batch_size),
               "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTEROP_THREADS")}
    env.update(VARIANTS[variant], TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=15, help="timed training per process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first call")
    parser.add_argument("--rounds", type=int, default=3, help="processes per (network, variant), in turns")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.batch_size, args.seconds, args.warmup)))
        return

    jobs = [(n, v) for n in args.networks for v in args.variants]
    results = {job: [] for job in jobs}
    print(f"batch {args.batch_size}; {args.rounds} rounds of {len(jobs)} fresh processes, {args.seconds:g} s of "
          f"timed training each", flush=True)
    headers = {}
    for round_ in range(args.rounds):
        for job in jobs if round_ % 2 == 0 else jobs[::-1]:
            result = run_worker(*job, args)
            results[job].append(result)
            headers.setdefault(job[1], result.get("header"))
            shown = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items() if k != "header"}
            print(f"  round {round_ + 1}: {job[0]} {job[1]}: {shown}", flush=True)

    for variant, line in headers.items():
        print(f"\n[{variant}] {line}")

    def median(job, key):
        values = [r[key] for r in results[job] if key in r]
        return statistics.median(values) if values else None

    print(f"\n{'network':10s} {'variant':30s} {'oneDNN':>7s} {'images/s':>9s} {'÷ off':>6s} {'first call':>11s}")
    for network in args.networks:
        off = median((network, "oneDNN off"), "images_per_second")
        for variant in args.variants:
            rate = median((network, variant), "images_per_second")
            if rate is None:
                print(f"{network:10s} {variant:30s} failed: {results[(network, variant)][-1].get('error')}")
                continue
            states = {r.get("onednn") for r in results[(network, variant)] if "onednn" in r}
            ratio = f"{rate / off:.2f}" if off else "-"
            print(f"{network:10s} {variant:30s} {'/'.join(map(str, states)):>7s} {rate:9.0f} {ratio:>6s} "
                  f"{median((network, variant), 'first_call_s'):9.1f} s")
    print("÷ off: the variant's images/s over oneDNN off's; medians of the rounds; oneDNN: TensorFlow's own report")


if __name__ == "__main__":
    main()
