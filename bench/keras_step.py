"""Keras 3 `model.fit` with keras.layers.GRU vs fastgru.keras.GRU on each Keras backend, with
fastgru.GRUModel.train_step on the same work for reference, by the protocol of bench/README.md:
same process, interleaved A B C A B C ..., same thread count, median times, ratios from the same run.

    python bench/keras_step.py [--backends torch jax tensorflow] [--configs small medium]
                               [--threads 2] [--repeats 5] [--batches N] [--markdown]

The model (float32, batch-major (B, T, I) input): Input -> GRU(H, return_sequences=True) ->
Dense(1), MSE, Adam(1e-3), compiled with Keras's defaults (jit_compile="auto": XLA on JAX, none
on torch; on TensorFlow XLA for keras.layers.GRU, none for fastgru's layer, which XLA cannot
call). One timed run is model.fit over `batches` batches of B sequences (one epoch, after a
warm-up epoch that compiles); the time per batch is the run's time / batches. "fastgru model" is
fastgru.GRUModel(I, H, 1) (GRU + Dense head + MSE + fused Adam) taking the same batches with
train_step. "Keras alone" is the same model.fit with keras.layers.Dense(H) in place of the GRU:
what Keras and the backend cost per batch around any recurrent layer. speed-up =
keras.layers.GRU's time / fastgru.keras.GRU's; glue = fastgru.keras.GRU's time / GRUModel's
(1.00 = Keras adds nothing around the core). Before timing, the two Keras GRU models (same
weights) must predict the same outputs, so wrong code is never timed.

Keras picks its backend at import: each backend runs in a child process of this script.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from configs import CONFIGS, cpu_name

BACKENDS = ("torch", "jax", "tensorflow")
# Batches per timed epoch: enough that Keras's per-`fit` costs (building the data adapter and
# iterator, callbacks: about 75 ms per call on TensorFlow, 7 ms on JAX) are a small share of a
# batch's time, as in an epoch over real data.
DEFAULT_BATCHES = {"small": 100, "medium": 10, "large": 4, "b1": 100, "long": 4}
LR = 1e-3


def child(args):
    """In a process whose KERAS_BACKEND is set: times every config, prints one JSON line per config."""
    threads = args.threads
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    import fastgru
    import fastgru.keras

    fastgru.set_num_threads(threads)

    for name in args.configs:
        B, T, I, H = CONFIGS[name].shape
        batches = args.batches or DEFAULT_BATCHES.get(name, 3)
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batches * B, T, I)).astype(np.float32)
        y = rng.uniform(-1, 1, (batches * B, T, 1)).astype(np.float32)

        def build(layer):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((T, I)), layer(), keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.Adam(LR), loss="mse")
            return model

        reference = build(lambda: keras.layers.GRU(H, return_sequences=True))
        ours = build(lambda: fastgru.keras.GRU(H, return_sequences=True))
        alone = build(lambda: keras.layers.Dense(H))
        ours.set_weights(reference.get_weights())
        err = float(np.max(np.abs(ours.predict(x[:B], verbose=0) - reference.predict(x[:B], verbose=0))))
        if err > 1e-4:
            raise SystemExit(f"{name}: fastgru.keras.GRU's outputs differ from keras.layers.GRU's by {err:.3g}")

        model = fastgru.GRUModel(I, H, 1, seed=0)
        adam = fastgru.Adam(model, lr=LR)

        def fit(m):
            return lambda: m.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)

        def fastgru_model():
            for k in range(batches):
                model.train_step(x[k * B : (k + 1) * B], y[k * B : (k + 1) * B], adam)

        fns = [fit(reference), fit(ours), fastgru_model, fit(alone)]
        for fn in fns:  # the warm-up epoch: compilation, first-touch memory
            fn()
        times = [[] for _ in fns]
        for _ in range(args.repeats):
            for k, fn in enumerate(fns):
                start = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - start) / batches)
        medians = [statistics.median(t) * 1e3 for t in times]
        print(
            "ROW "
            + json.dumps(
                {
                    "backend": backend,
                    "config": name,
                    "shape": [B, T, I, H],
                    "keras": medians[0],
                    "fastgru.keras": medians[1],
                    "fastgru model": medians[2],
                    "keras alone": medians[3],
                }
            ),
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--configs", nargs="+", default=["small", "medium"], choices=sorted(CONFIGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per system (medians; >= 3)")
    parser.add_argument("--batches", type=int, default=0, help="batches per run (0: a default per config)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    print(
        f"# {cpu_name()}, {args.threads} threads, median ms per batch of model.fit over {args.repeats} interleaved runs"
    )
    rows = []
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS=str(args.threads), TF_CPP_MIN_LOG_LEVEL="3")
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            "--threads",
            str(args.threads),
            "--repeats",
            str(args.repeats),
            "--batches",
            str(args.batches),
            "--configs",
            *args.configs,
        ]
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=os.path.dirname(os.path.abspath(__file__))
        )
        if proc.returncode != 0:
            print(proc.stdout[-2000:] + proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"the {backend} run failed")
        rows += [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("ROW ")]

    header = [
        "backend",
        "config (B,T,I,H)",
        "keras.layers.GRU",
        "fastgru.keras.GRU",
        "speed-up",
        "fastgru model",
        "glue",
        "Keras alone",
    ]
    lines = []
    for r in rows:
        lines.append(
            [
                r["backend"],
                f"{r['config']} ({','.join(map(str, r['shape']))})",
                f"{r['keras']:.2f}",
                f"{r['fastgru.keras']:.2f}",
                f"{r['keras'] / r['fastgru.keras']:.2f}x",
                f"{r['fastgru model']:.2f}",
                f"{r['fastgru.keras'] / r['fastgru model']:.2f}",
                f"{r['keras alone']:.2f}",
            ]
        )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)))


if __name__ == "__main__":
    main()
