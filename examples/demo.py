"""fastgru's demo: train a GRU forecaster on real data in a few seconds, printing the loss per
epoch (the README's first command). Needs only numpy and fastgru: the data (weekly CO2 at Mauna
Loa, public domain) ships in examples/data/.

    python examples/demo.py
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from forecast_co2 import load_series, make_windows, rmse_ppm, train_test_split

import fastgru


def main():
    X_train, y_train, X_test, y_test = train_test_split(*make_windows(load_series()))
    print(
        f"forecasting weekly CO2 at Mauna Loa 4 weeks ahead from the past 52 weeks: "
        f"{len(X_train)} training windows, {len(X_test)} test windows"
    )
    model = fastgru.GRURegressor(
        hidden_size=32, epochs=10, batch_size=32, lr=3e-3, validation_split=0.1, random_state=0, verbose=1
    )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    print(f"trained in {time.perf_counter() - start:.1f} s on {fastgru.get_num_threads()} threads")
    print(
        f"test RMSE {rmse_ppm(model.predict(X_test), y_test):.3f} ppm "
        f"(persistence forecast: {rmse_ppm(0 * y_test, y_test):.3f} ppm)"
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "co2.safetensors"
        model.save(path)
        same = np.array_equal(fastgru.load(path).predict(X_test), model.predict(X_test))
        print(f"saved to and loaded back from one safetensors file: identical predictions: {same}")


if __name__ == "__main__":
    main()
