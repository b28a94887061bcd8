"""How much of GRURegressor.fit runs inside the compiled core (the project's target: >= 90% at
batch 64, T=100, H=256). Every function of fastgru._core is wrapped with a timer; the share is
the time inside those calls over the wall time of fit.

    python examples/core_share.py [--batches 20] [--epochs 2]
"""

import argparse
import functools
import time

import numpy as np

import fastgru
from fastgru import _core


def instrument_core():
    """Wraps every callable of fastgru._core with a timer; returns the dict of seconds per name.
    The Python layer looks the functions up on the module at call time, so the wrappers see all calls."""
    seconds = {}
    for name in dir(_core):
        fn = getattr(_core, name)
        if name.startswith("__") or isinstance(fn, type) or not callable(fn):
            continue

        def timed(*args, _fn=fn, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - start

        setattr(_core, name, functools.wraps(fn)(timed))
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--return-sequences", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    N = args.batches * args.batch_size
    X = rng.standard_normal((N, args.steps, args.features)).astype(np.float32)
    y = X[..., 0].cumsum(1) / 10 if args.return_sequences else X[:, :, 0].mean(1)
    est = fastgru.GRURegressor(hidden_size=args.hidden, epochs=args.epochs, batch_size=args.batch_size,
                               return_sequences=args.return_sequences, random_state=0)
    seconds = instrument_core()
    start = time.perf_counter()
    est.fit(X, y)
    total = time.perf_counter() - start
    core = sum(seconds.values())
    print(f"fit: {total:.3f} s for {args.epochs} epochs x {args.batches} batches "
          f"(B={args.batch_size}, T={args.steps}, F={args.features}, H={args.hidden}, "
          f"threads={fastgru.get_num_threads()})")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:24s} {s:8.3f} s  {100 * s / total:5.1f}%")
    print(f"inside the C++ core: {100 * core / total:.1f}% of fit time")


if __name__ == "__main__":
    main()
