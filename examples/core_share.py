"""How much of GRURegressor.fit runs inside the compiled core, and what the Python around it costs.

For each configuration (B sequences a batch, T steps, F features, H hidden units; float32, one
layer), three numbers, interleaved over several repeats (median reported):
  - fit ms/batch: the wall time of fit over its number of batches (shuffled, no validation; fit's
    one-off preparation of X, e.g. the time-major copy, is included and spread over the epochs);
  - core ms/batch: the compiled training step alone (fastgru._core's Model.train_step) on
    ready-made batches, i.e. what fit would cost with no Python at all;
  - in core: the time fit spends inside compiled calls (every call of the compiled model timed)
    over fit's wall time.
fit / core is the Python overhead factor (1.10 = 10% on top of the core). --clock cpu times with
the process's CPU time instead of the wall clock: with one thread it is the work done, unaffected by
other processes taking the cores (on a shared machine the wall clock varies several-fold).

    python examples/core_share.py [--configs small medium b1] [--batches 20] [--epochs 3] [--repeats 5]
                                  [--threads 1] [--clock wall|cpu]
"""

import argparse
import statistics
import time

import numpy as np

import fastgru
from fastgru import model as model_module

CONFIGS = {"small": (32, 50, 32, 64), "medium": (64, 100, 128, 256), "b1": (1, 100, 128, 256)}


class TimedCore:
    """Stands in for a compiled model and adds the time of each call to `seconds[0]`."""

    def __init__(self, core, seconds, clock):
        self._core, self._seconds, self._clock = core, seconds, clock

    def __getattr__(self, name):
        fn = getattr(self._core, name)

        def timed(*args, **kwargs):
            start = self._clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self._seconds[0] += self._clock() - start

        return timed


def fit_once(X, y, batch_size, hidden_size, epochs, seconds, clock):
    """(fit's wall seconds, seconds inside compiled calls)."""
    est = fastgru.GRURegressor(hidden_size=hidden_size, epochs=epochs, batch_size=batch_size, random_state=0)
    original = model_module.GRUModel._core_model
    seconds[0] = 0.0
    model_module.GRUModel._core_model = lambda self, loss="mse": TimedCore(original(self, loss), seconds, clock)
    try:
        start = clock()
        est.fit(X, y)
        total = clock() - start
    finally:
        model_module.GRUModel._core_model = original
    return total, seconds[0]


def core_alone(X, y, batch_size, hidden_size, n_batches, clock):
    """Seconds of n_batches compiled training steps on batches prepared beforehand."""
    B = batch_size
    model = fastgru.GRUModel(X.shape[2], hidden_size, 1, return_sequences=False, seed=0)
    opt = fastgru.Adam(model)
    core = model._core_model("mse")
    xs = [np.ascontiguousarray(X[i * B : (i + 1) * B].transpose(1, 0, 2)) for i in range(n_batches)]
    ts = [np.ascontiguousarray(y[i * B : (i + 1) * B, None]) for i in range(n_batches)]
    start = clock()
    for x, t in zip(xs, ts):
        core.train_step(model.params, model.grad, x, None, t, None, None, None, opt.config, opt.state, 0.0)
    return clock() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batches", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    fastgru.set_num_threads(args.threads)
    print(
        f"fastgru {fastgru.__version__}, isa {fastgru.active_isa()}, {args.threads} thread(s), "
        f"{args.epochs} epochs of {args.batches} batches a fit, median of {args.repeats} interleaved repeats, "
        f"{args.clock} clock"
    )
    print("| config (B,T,F,H) | fit ms/batch | core ms/batch | fit / core | in core |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name in args.configs:
        B, T, F, H = CONFIGS[name]
        X = rng.standard_normal((B * args.batches, T, F)).astype(np.float32)
        y = X[:, -5:, 0].sum(axis=1)
        seconds = [0.0]
        fit_once(X, y, B, H, args.epochs, seconds, clock)  # warm-up
        core_alone(X, y, B, H, args.batches, clock)
        fits, cores, shares = [], [], []
        for _ in range(args.repeats):
            total, inside = fit_once(X, y, B, H, args.epochs, seconds, clock)
            fits.append(total / (args.epochs * args.batches))
            shares.append(inside / total)
            cores.append(core_alone(X, y, B, H, args.batches, clock) / args.batches)
        fit_ms, core_ms = 1e3 * statistics.median(fits), 1e3 * statistics.median(cores)
        print(
            f"| {name} ({B},{T},{F},{H}) | {fit_ms:.3f} | {core_ms:.3f} | {fit_ms / core_ms:.3f} | "
            f"{100 * statistics.median(shares):.1f}% |",
            flush=True,
        )


if __name__ == "__main__":
    main()
