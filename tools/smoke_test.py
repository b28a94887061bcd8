"""Smoke test of an installed fastgru that needs nothing but numpy: the compiled core against the
NumPy reference on every instruction set this CPU runs, a few training steps that lower the loss,
predict, and a save/load round trip. Run by tools/build_wheel.sh in a fresh venv, by
cibuildwheel on each wheel it builds, and by the test suite.

    python tools/smoke_test.py
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import fastgru


def check_core_matches_reference():
    x = np.random.default_rng(0).standard_normal((7, 3, 4))
    for isa in fastgru.available_isas():
        fastgru.set_isa(isa)
        compiled = fastgru.GRU(4, 16, 2, bidirectional=True, dtype="float64", seed=0)
        reference = fastgru.GRU(4, 16, 2, bidirectional=True, dtype="float64", seed=0, backend="numpy")
        outputs = [layer(x, lengths=[7, 3, 5])[0] for layer in (compiled, reference)]
        for layer, y in zip((compiled, reference), outputs):
            layer.backward(np.ones_like(y))
        for got, want in ((outputs[0], outputs[1]), (compiled.grad, reference.grad)):
            error = np.abs(got - want).max()
            if error > 1e-10 * np.abs(want).max():
                sys.exit(f"smoke test failed: isa {isa}: compiled core differs from the reference by {error}")
    fastgru.set_isa(fastgru.available_isas()[-1])


def check_training_and_saving():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 20, 3)).astype(np.float32)
    y = X[:, -3:, 0].sum(axis=1)
    model = fastgru.GRURegressor(hidden_size=16, epochs=5, batch_size=32, lr=1e-2, random_state=0)
    model.fit(X, y)
    losses = model.history_["loss"]
    if not losses[-1] < losses[0]:
        sys.exit(f"smoke test failed: training did not lower the loss: {losses}")
    predictions = model.predict(X)
    if predictions.shape != (128,) or not np.isfinite(predictions).all():
        sys.exit(
            f"smoke test failed: predictions of shape {predictions.shape}, finite: {np.isfinite(predictions).all()}"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        model.save(path)
        if not np.array_equal(fastgru.load(path).predict(X), predictions):
            sys.exit("smoke test failed: the loaded model predicts differently")
    return losses


def main():
    check_core_matches_reference()
    losses = check_training_and_saving()
    print(
        f"fastgru {fastgru.__version__} from {Path(fastgru.__file__).parent}: instruction sets "
        f"{fastgru.available_isas()} match the reference; training loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
        f"save/load predicts identically: smoke test passed"
    )


if __name__ == "__main__":
    main()
