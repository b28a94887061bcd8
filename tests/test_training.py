"""fastgru.training: the loop's seam for data parallelism. Several "processes" simulated by
threads, each with its own estimator and a reducer that sums the gradient buffers, must train
the same model as one process (the contract a real MPI reducer builds on)."""

import threading

import numpy as np
import pytest

import fastgru
from fastgru import training


class ThreadRanks(training.SingleProcess):
    """Rank `rank` of `size` threads; sum_gradients adds the ranks' buffers in rank order (the
    data checks and the job's end on a failure stay those of one process)."""

    distributed = True

    def __init__(self, rank, size, shared):
        self.rank, self.size, self.shared = rank, size, shared
        self.is_root = rank == 0

    def local_part(self, n):
        return np.array_split(np.arange(n), self.size)[self.rank]

    def sum_gradients(self, grad, loss_sum):
        shared = self.shared
        shared["grads"][self.rank], shared["sums"][self.rank] = grad.copy(), loss_sum
        shared["barrier"].wait()
        total, total_sum = sum(shared["grads"]), sum(shared["sums"])
        shared["barrier"].wait()  # every rank has read before the next step writes
        grad[:] = total
        return total_sum

    def agree(self, value):
        return value


def fit_on_ranks(make_estimator, X, y, size):
    shared = {"grads": [None] * size, "sums": [None] * size, "barrier": threading.Barrier(size)}
    estimators = [make_estimator() for _ in range(size)]
    errors = []

    def run(rank):
        est = estimators[rank]
        est._reducer = lambda: ThreadRanks(rank, size, shared)
        try:
            est.fit(X, y)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            shared["barrier"].abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return estimators


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("kind", ["regressor_per_step", "classifier_per_sequence"])
def test_data_parallel_seam_trains_the_one_process_model(rng, size, kind):
    lengths = rng.integers(2, 9, 21)
    X = [rng.standard_normal((n, 3)) for n in lengths]  # ragged; batches of 8 leave one of 5
    if kind == "regressor_per_step":
        y = [x[:, 0].cumsum() for x in X]
        options = dict(return_sequences=True, bidirectional=True, num_layers=2, dropout=0.2, clip_grad_norm=0.5)
        cls = fastgru.GRURegressor
    else:
        y = np.array([int(x[:, 1].sum() > 0) + int(x[0, 0] > 1) for x in X])
        options = dict(validation_split=0.25, dropout=0.3, weight_decay=0.01)
        cls = fastgru.GRUClassifier

    def make():
        return cls(hidden_size=5, epochs=3, batch_size=8, dtype="float64", random_state=4, **options)

    one = make().fit(X, y)
    ranks = fit_on_ranks(make, X, y, size)
    for est in ranks:
        np.testing.assert_allclose(est.model_.params, one.model_.params, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.history_["loss"], one.history_["loss"], rtol=1e-9)
    assert all(np.array_equal(est.model_.params, ranks[0].model_.params) for est in ranks)


def test_single_process_reducer_is_the_default():
    reducer = training.SingleProcess()
    assert not reducer.distributed and reducer.is_root
    assert list(reducer.local_part(3)) == [0, 1, 2] and reducer.agree(1.5) == 1.5
