"""Batch inference with int8 weights: milliseconds per forward over a whole batch of sequences,
fastgru float32 against its int8 copy (fastgru.quantize), in one process.

    python bench/int8_inference.py [--configs small medium large] [--threads 2] [--rounds 7]

For each configuration of bench/configs.csv, rounds alternate between the two (A B, then B A,
...) with the same thread count; the medians over rounds are reported with the speed-up
float32 / int8 (above 1: int8 is faster). Before timing, the int8 outputs must agree with the
float32 ones within 2e-2 (relative L2), the contract's bound.
"""

import argparse
import os
import statistics
import time

import numpy as np
from configs import CONFIGS, cpu_name

import fastgru


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["small", "medium", "large"], choices=sorted(CONFIGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    fastgru.set_num_threads(args.threads)
    print(
        f"fastgru {fastgru.__version__} (isa {fastgru.active_isa()}), {cpu_name()}, threads={args.threads}; "
        f"median of {args.rounds} interleaved rounds; 1-minute load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'config':24s} {'float32 ms':>11s} {'int8 ms':>9s} {'float32/int8':>13s} {'rel. L2':>8s}")
    for name in args.configs:
        B, T, I, H = CONFIGS[name].shape
        layer = fastgru.GRU(I, H, seed=0).eval()
        int8 = fastgru.quantize(layer)
        x = np.random.default_rng(0).uniform(-1, 1, (T, B, I)).astype(np.float32)
        want, got = layer(x)[0], int8(x)[0]
        error = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        assert error < 2e-2, f"{name}: int8 is {error:.3g} from float32"
        times = {"float32": [], "int8": []}
        runs = [("float32", layer), ("int8", int8)]
        for r in range(args.rounds + 1):  # one warm-up round
            for label, obj in runs if r % 2 == 0 else runs[::-1]:
                start = time.perf_counter()
                obj(x)
                if r:
                    times[label].append(time.perf_counter() - start)
        f, q = (statistics.median(times[k]) * 1e3 for k in ("float32", "int8"))
        print(f"{name + ' ' + str((B, T, I, H)):24s} {f:11.2f} {q:9.2f} {f / q:13.2f} {error:8.1e}")


if __name__ == "__main__":
    main()
