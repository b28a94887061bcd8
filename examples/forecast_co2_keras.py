"""The CO2 forecast of forecast_co2.py as a Keras 3 GRUNet, trained with keras.layers.GRU and then
with fastgru.keras.GRU in its place (same data, same initial weights, same model.fit), printing
both layers' fit time and test RMSE.

The GRUNet: GRU(hidden, return_sequences=True) -> TimeDistributed(Dense(4)), whose last step is
the 4-week forecast. Keras's backend is KERAS_BACKEND's (torch, jax or tensorflow):

    KERAS_BACKEND=jax python examples/forecast_co2_keras.py [--epochs 10] [--hidden 32]
"""

import argparse
import sys
import time

from forecast_co2 import HORIZON, WINDOW, load_series, make_windows, rmse_ppm, train_test_split

try:
    import keras
except ImportError:
    sys.exit('this example needs Keras 3 and a backend: pip install ".[keras]" torch (or jax, or tensorflow-cpu)')

import fastgru
import fastgru.keras


def grunet(gru_layer, hidden):
    """(N, WINDOW, 1) -> (N, HORIZON): the GRU's outputs at every step, a Dense on each, the last step."""
    inputs = keras.Input((WINDOW, 1))
    x = gru_layer(hidden, return_sequences=True, name="gru")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(HORIZON))(x)
    outputs = keras.layers.Cropping1D((WINDOW - 1, 0))(x)
    return keras.Model(inputs, keras.layers.Reshape((HORIZON,))(outputs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--train-windows", type=int, default=0, help="train on the last N windows only (0: all)")
    args = parser.parse_args()

    X_train, y_train, X_test, y_test = train_test_split(*make_windows(load_series()))
    if args.train_windows:
        X_train, y_train = X_train[-args.train_windows :], y_train[-args.train_windows :]
    print(
        f"CO2 at Mauna Loa on Keras {keras.__version__} ({keras.backend.backend()} backend): {len(X_train)} "
        f"training and {len(X_test)} test windows; {args.epochs} epochs, hidden size {args.hidden}, "
        f"{fastgru.get_num_threads()} threads for fastgru"
    )
    print(f"persistence (no change)  test RMSE {rmse_ppm(0 * y_test, y_test):.3f} ppm")
    keras.utils.set_random_seed(0)
    reference = grunet(keras.layers.GRU, args.hidden)
    weights = reference.get_weights()
    for name, layer in (("keras.layers.GRU", keras.layers.GRU), ("fastgru.keras.GRU", fastgru.keras.GRU)):
        model = reference if layer is keras.layers.GRU else grunet(layer, args.hidden)
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        start = time.perf_counter()
        model.fit(X_train, y_train, batch_size=32, epochs=args.epochs, verbose=0)
        seconds = time.perf_counter() - start
        pred = model.predict(X_test, verbose=0)
        print(f"{name:<18} test RMSE {rmse_ppm(pred, y_test):.3f} ppm, fit {seconds:.1f} s")


if __name__ == "__main__":
    main()
