"""Data-parallel scaling on one machine: fit time of 1 process x 1 thread, 1 process x 2 threads and
2 MPI processes x 1 thread (GRURegressor(distributed=True) under mpiexec), the bytes all-reduced
per step, and a ring all-reduce cost model for N machines. See bench/README.md.

    python bench/mpi_scaling.py [--config medium] [--batches 8] [--epochs 1] [--repeats 3]
                                [--bandwidth-gbit 10 100] [--markdown]

Each measurement is a fresh process (or MPI job) training on the same seeded data; the setups
run interleaved, `--repeats` rounds, and the median is reported. Before any number is printed the
setups' training losses are compared: the three must train the same model (float32 rounding apart).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

import numpy as np
from compare import CONFIGS

SETUPS = (("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1))
ALLREDUCE_REPEATS = 30


def worker(config, batches, epochs, out):
    """Runs inside every rank: one untimed warm-up fit, the timed fit, then timed all-reduces of
    the gradient message alone; rank 0 writes the numbers to `out` (JSON)."""
    import fastgru

    B, T, I, H = CONFIGS[config].shape
    distributed = "PMI_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B * batches, T, I)).astype(np.float32)
    y = X[:, -10:, 0].sum(1) + X[:, :, 1].mean(1)

    def make(n_epochs):
        return fastgru.GRURegressor(
            hidden_size=H, epochs=n_epochs, batch_size=B, lr=1e-3, random_state=0, distributed=distributed
        )

    make(1).fit(X[:B], y[:B])
    comm = None
    if distributed:
        from fastgru.distributed import Communicator

        comm = Communicator()
        comm.comm.Barrier()
    start = time.perf_counter()
    estimator = make(epochs).fit(X, y)
    seconds = time.perf_counter() - start
    message = np.zeros(estimator.model_.params.size + 1, np.float32)
    allreduce = None
    if comm is not None:
        times = []
        for _ in range(ALLREDUCE_REPEATS):
            comm.comm.Barrier()
            begin = time.perf_counter()
            comm.sum_in_place(message)
            times.append(time.perf_counter() - begin)
        allreduce = statistics.median(times)
        if comm.rank != 0:
            return
    with open(out, "w") as f:
        json.dump(
            {
                "seconds": seconds,
                "steps": epochs * batches,
                "loss": estimator.history_["loss"],
                "message_bytes": message.nbytes,
                "params": int(estimator.model_.params.size),
                "allreduce_seconds": allreduce,
                "threads": fastgru.get_num_threads(),
            },
            f,
        )


def find_mpiexec():
    beside = os.path.join(sysconfig.get_path("scripts"), "mpiexec")
    return beside if os.path.exists(beside) else shutil.which("mpiexec")


def measure(processes, threads, args, out):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        args.config,
        str(args.batches),
        str(args.epochs),
        out,
    ]
    if processes > 1:
        command = [find_mpiexec(), "-n", str(processes)] + command
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(command, check=True, env=env)
    with open(out) as f:
        return json.load(f)


def table(head, rows, markdown):
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    else:
        widths = [max(len(str(x)) for x in column) for column in zip(head, *rows)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [head] + rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(CONFIGS), default="medium")
    parser.add_argument("--batches", type=int, default=8, help="batches per epoch (N = batches x B sequences)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--bandwidth-gbit",
        type=float,
        nargs="+",
        default=[10.0, 100.0],
        help="network bandwidths for the cost model, Gbit/s",
    )
    parser.add_argument("--latency-us", type=float, default=5.0, help="per-message latency for the cost model")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", nargs=4, metavar=("CONFIG", "BATCHES", "EPOCHS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        config, batches, epochs, out = args.worker
        return worker(config, int(batches), int(epochs), out)

    load_start = os.getloadavg()[0]
    results = {name: [] for name, _, _ in SETUPS}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for name, processes, threads in SETUPS:
                results[name].append(measure(processes, threads, args, os.path.join(folder, "result.json")))
    load_end = os.getloadavg()[0]

    reference = results[SETUPS[0][0]][0]["loss"]
    for name, runs in results.items():
        for run in runs:
            if not np.allclose(run["loss"], reference, rtol=1e-4):
                sys.exit(f"{name} trained another model: losses {run['loss']} vs {reference}")

    import fastgru

    B, T, I, H = CONFIGS[args.config].shape
    first = results[SETUPS[0][0]][0]
    steps, message_bytes = first["steps"], first["message_bytes"]
    base = statistics.median(r["seconds"] for r in results[SETUPS[0][0]])
    print(f"command: python bench/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; fastgru "
        f"{fastgru.__version__} isa {fastgru.active_isa()}; Python {platform.python_version()}"
    )
    print(f"1-minute load average: {load_start:.1f} at the start, {load_end:.1f} at the end")
    print(
        f"config {args.config} (B={B}, T={T}, I={I}, H={H}), float32, {args.batches} batches x {args.epochs} "
        f"epoch(s) = {steps} steps per fit; median of {args.repeats} interleaved fits, each in a fresh process\n"
    )
    rows = []
    for name, _, _ in SETUPS:
        seconds = statistics.median(r["seconds"] for r in results[name])
        rows.append([name, f"{seconds:.2f}", f"{1000 * seconds / steps:.1f}", f"{base / seconds:.2f}x"])
    print(table(["setup", "fit s", "ms per step", "speed-up vs 1x1"], rows, args.markdown))

    allreduce = statistics.median(r["allreduce_seconds"] for r in results[SETUPS[2][0]])
    print(
        f"\nall-reduced per step: {first['params']} parameters + the loss sum = {message_bytes} bytes "
        f"({message_bytes / 2**20:.2f} MiB), one MPI_Allreduce; on this machine (2 ranks, shared memory) "
        f"it takes {1000 * allreduce:.2f} ms (median of {ALLREDUCE_REPEATS})\n"
    )

    # Ring all-reduce: each rank sends and receives 2 (N - 1) / N of the message, in 2 (N - 1)
    # messages. Compute: one step on B / N sequences, measured here on 2 threads (small batches
    # use the cores less well, which the measurement includes).
    fastgru.set_num_threads(2)
    head = ["machines N", "batch per machine", "compute ms"]
    head += [f"all-reduce ms @ {g:g} Gbit/s" for g in args.bandwidth_gbit]
    head += [f"speed-up @ {g:g} Gbit/s" for g in args.bandwidth_gbit]
    rows, single = [], None
    for n in (1, 2, 4, 8, 16, 32, 64):
        if B % n:
            continue
        compute = step_seconds(args.config, B // n, max(args.repeats, 5))
        single = single or compute
        comm = [
            0.0 if n == 1 else 2 * (n - 1) / n * message_bytes / (g * 1e9 / 8) + 2 * (n - 1) * args.latency_us * 1e-6
            for g in args.bandwidth_gbit
        ]
        rows.append(
            [n, B // n, f"{1000 * compute:.1f}"]
            + [f"{1000 * c:.2f}" for c in comm]
            + [f"{single / (compute + c):.1f}x" for c in comm]
        )
    print(
        f"ring all-reduce model, time per step of a global batch of {B} on N machines of 2 cores "
        f"(compute: median time per fit step at the per-machine batch, 1 process x 2 threads, measured here; "
        f"latency {args.latency_us:g} us per message):"
    )
    print(table(head, rows, args.markdown))


def step_seconds(config, batch, repeats, steps=8):
    """Median time of one fit step (forward, backward, Adam, Python included) on `batch` sequences."""
    import fastgru

    _, T, I, H = CONFIGS[config].shape
    X = np.random.default_rng(1).standard_normal((batch * steps, T, I)).astype(np.float32)

    def make(n):
        return fastgru.GRURegressor(hidden_size=H, epochs=1, batch_size=batch, random_state=0).fit(X[:n], X[:n, -1, 0])

    make(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make(len(X))
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


if __name__ == "__main__":
    main()
