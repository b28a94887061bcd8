"""Time-series forecasting on real data: weekly atmospheric CO2 at Mauna Loa (1958-2001,
shipped in examples/data/, public domain), 1 to 4 weeks ahead from the past year.

Each sample is a 52-week window (one feature: CO2 relative to the window's last week); the
target is the next 4 weeks relative to that same week. The first 80% of the record trains, the
last 20% (1993-2001) tests. Prints the test RMSE in ppm next to the persistence forecast ("no
change"), the training time, and the same for an identical PyTorch model when torch is installed.

    python examples/forecast_co2.py [--epochs 20]
"""

import time
from pathlib import Path

import numpy as np
from torch_baseline import parse_example_args, torch_skip_reason, train_and_predict

import fastgru

DATA = Path(__file__).resolve().parent / "data" / "co2_mauna_loa_weekly.csv"
WINDOW, HORIZON = 52, 4
SCALE = 5.0  # ppm; brings inputs and targets to about unit size


def load_series():
    """Weekly CO2 in ppm; the 59 weeks without data are filled by linear interpolation."""
    co2 = np.genfromtxt(DATA, delimiter=",", skip_header=1, usecols=1)
    gaps = np.isnan(co2)
    co2[gaps] = np.interp(np.flatnonzero(gaps), np.flatnonzero(~gaps), co2[~gaps])
    return co2


def make_windows(series):
    """X (N, WINDOW, 1) and y (N, HORIZON) as float32, both relative to each window's last week
    and divided by SCALE, so the trend does not push test inputs outside the training range."""
    starts = np.arange(len(series) - WINDOW - HORIZON + 1)
    past = np.stack([series[s : s + WINDOW] for s in starts])
    future = np.stack([series[s + WINDOW : s + WINDOW + HORIZON] for s in starts])
    last = past[:, -1:]
    return ((past - last) / SCALE)[..., None].astype(np.float32), ((future - last) / SCALE).astype(np.float32)


def train_test_split(X, y, test_fraction=0.2):
    """Chronological: test windows come after every training target."""
    cut = int(len(X) * (1 - test_fraction))
    return X[:cut], y[:cut], X[cut + WINDOW + HORIZON :], y[cut + WINDOW + HORIZON :]


def rmse_ppm(pred, y):
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - y) ** 2)) * SCALE)


def main():
    args, opts = parse_example_args(__doc__, epochs=20, hidden=32)

    X_train, y_train, X_test, y_test = train_test_split(*make_windows(load_series()))
    print(
        f"CO2 at Mauna Loa: {len(X_train)} training and {len(X_test)} test windows of {WINDOW} weeks, "
        f"forecasting {HORIZON} weeks ahead; {args.epochs} epochs, hidden size {args.hidden}, "
        f"{fastgru.get_num_threads()} threads"
    )
    print(f"persistence (no change)  test RMSE {rmse_ppm(0 * y_test, y_test):.3f} ppm")

    est = fastgru.GRURegressor(random_state=0, **opts)
    start = time.perf_counter()
    est.fit(X_train, y_train)
    ours = time.perf_counter() - start
    print(f"fastgru                  test RMSE {rmse_ppm(est.predict(X_test), y_test):.3f} ppm, training {ours:.2f} s")

    skip_reason = torch_skip_reason(args)
    if skip_reason:
        print(f"PyTorch comparison skipped: {skip_reason}")
        return
    pred, theirs = train_and_predict(X_train, y_train, X_test, outputs=HORIZON, loss="mse", **opts)
    print(
        f"PyTorch                  test RMSE {rmse_ppm(pred, y_test):.3f} ppm, training {theirs:.2f} s "
        f"(PyTorch time / fastgru time = {theirs / ours:.2f})"
    )


if __name__ == "__main__":
    main()
