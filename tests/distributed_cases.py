"""Small training problems for the data-parallel tests, and the program each MPI rank runs.

    mpiexec -n P python -m mpi4py tests/distributed_cases.py OUT_DIR [CASE ...]

trains every case (all of them by default) with distributed=True and writes, per case and rank,
OUT_DIR/CASE.rankR.npz (the fitted parameters, history_ and predictions). test_distributed.py
trains the same cases with distributed=False in one process and compares.
"""

import sys

import numpy as np

import fastgru


def ragged(rng, N, F, shortest, longest):
    return [rng.standard_normal((int(n), F)) for n in rng.integers(shortest, longest + 1, N)]


def regressor_per_sequence():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((37, 7, 3))
    y = X[:, :, 0].mean(1) - X[:, -1, 2]
    return fastgru.GRURegressor(hidden_size=6, epochs=3, batch_size=10, lr=0.01, random_state=3), X, y


def regressor_per_step_ragged():
    rng = np.random.default_rng(2)
    X = ragged(rng, 29, 2, 3, 9)
    y = [np.stack([x[:, 0].cumsum(), x[:, 1]], 1) for x in X]
    return (
        fastgru.GRURegressor(
            hidden_size=5, return_sequences=True, epochs=3, batch_size=8, lr=0.02, clip_grad_norm=0.5, random_state=4
        ),
        X,
        y,
    )


def classifier_validation_split():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((41, 6, 2))
    y = np.array(["a", "b", "c"])[(X[:, :, 0].sum(1) > 0).astype(int) + (X[:, :, 1].sum(1) > 1)]
    return (
        fastgru.GRUClassifier(
            hidden_size=6, epochs=4, batch_size=7, lr=0.02, validation_split=0.25, patience=2, random_state=5
        ),
        X,
        y,
    )


def bidirectional_multilayer_ragged():
    rng = np.random.default_rng(4)
    X = ragged(rng, 23, 3, 2, 8)
    y = np.array([x[:, 0].sum() for x in X])
    return (
        fastgru.GRURegressor(
            hidden_size=4,
            num_layers=2,
            bidirectional=True,
            reset_after=False,
            epochs=2,
            batch_size=6,
            lr=0.01,
            weight_decay=0.1,
            loss="mae",
            random_state=6,
        ),
        X,
        y,
    )


def per_step_classifier_validation_data():
    rng = np.random.default_rng(5)
    X = ragged(rng, 30, 2, 2, 6)
    y = [x[:, 0] > 0 for x in X]
    return (
        fastgru.GRUClassifier(
            hidden_size=5,
            return_sequences=True,
            loss="binary_crossentropy",
            epochs=3,
            batch_size=9,
            lr=0.03,
            validation_data=(X[:8], y[:8]),
            random_state=7,
        ),
        X[8:],
        y[8:],
    )


def dropout_multilayer_per_step():
    """Dropout between the layers and on the head's input: each rank must use its columns of the
    masks one process draws for the whole batch."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((26, 6, 3))
    return (
        fastgru.GRURegressor(
            hidden_size=5,
            num_layers=2,
            dropout=0.3,
            return_sequences=True,
            epochs=2,
            batch_size=8,
            lr=0.02,
            random_state=9,
        ),
        X,
        X[:, :, :2].cumsum(1),
    )


def batches_smaller_than_ranks():
    """Two sequences a batch and a last batch of one: with 3 ranks, some ranks get nothing."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((9, 5, 2))
    return fastgru.GRURegressor(hidden_size=3, epochs=2, batch_size=2, lr=0.01, random_state=8), X, X[:, :, 1].sum(1)


CASES = {
    case.__name__: case
    for case in (
        regressor_per_sequence,
        regressor_per_step_ragged,
        classifier_validation_split,
        bidirectional_multilayer_ragged,
        per_step_classifier_validation_data,
        dropout_multilayer_per_step,
        batches_smaller_than_ranks,
    )
}


def make(name, distributed):
    """(estimator, X, y) of a case, in float64."""
    estimator, X, y = CASES[name]()
    return estimator.set_params(dtype="float64", distributed=distributed), X, y


def outcome(estimator, X):
    """What is compared: parameters, per-epoch losses and predictions (class probabilities for a
    classifier; flattened for ragged X)."""
    predictions = getattr(estimator, "predict_proba", estimator.predict)(X)
    if isinstance(predictions, list):
        predictions = np.concatenate([np.ravel(p) for p in predictions])
    return {
        "params": estimator.model_.params,
        "loss": np.array(estimator.history_["loss"]),
        "val_loss": np.array(estimator.history_["val_loss"], np.float64),
        "predictions": np.asarray(predictions, np.float64),
    }


def main(out_dir, names):
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    for name in names or CASES:
        estimator, X, y = make(name, distributed=True)
        np.savez(f"{out_dir}/{name}.rank{rank}.npz", **outcome(estimator.fit(X, y), X))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
