"""Streaming: GRU.step through a sequence gives forward's outputs (and the NumPy reference's);
model and estimator streams give predict's values for the prefixes seen so far."""

import numpy as np
import pytest

import fastgru

# Stepping sums the products in its own order (a dot product per row instead of forward's GEMM).
TOL = {"float32": 1e-6, "float64": 1e-13}


def step_through(layer, x, h0=None):
    """(y (T, B, H), h_n) from layer.step at every t of x (T, B, I)."""
    h, ys = h0, []
    for x_t in x:
        y_t, h = layer.step(x_t, h)
        ys.append(y_t)
    return np.stack(ys), h


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("sizes", [(3, 5, 2), (40, 70, 3), (128, 96, 1)])
def test_step_equals_forward(rng, isa, dtype, reset_after, num_layers, sizes):
    """On every instruction set this machine has (the step's row products are compiled per ISA)."""
    I, H, B = sizes
    layer = fastgru.GRU(I, H, num_layers, reset_after=reset_after, dtype=dtype, seed=0).eval()
    x = rng.standard_normal((12, B, I))
    h0 = 0.5 * rng.standard_normal((num_layers, B, H))
    y, h_n = layer(x, h0)
    y_steps, h_steps = step_through(layer, x, h0)
    assert y_steps.dtype == np.dtype(dtype) and h_steps.shape == h_n.shape
    np.testing.assert_allclose(y_steps, y, rtol=0, atol=TOL[dtype])
    np.testing.assert_allclose(h_steps, h_n, rtol=0, atol=TOL[dtype])
    reference = fastgru.GRU(I, H, num_layers, reset_after=reset_after, dtype=dtype, backend="numpy")
    reference.load_state_dict(layer.state_dict())
    y_ref, _ = step_through(reference, x, h0)  # the NumPy specification, one step at a time
    np.testing.assert_allclose(y_steps, y_ref, rtol=0, atol=TOL[dtype])
    np.testing.assert_allclose(y_ref, reference.eval()(x, h0)[0], rtol=0, atol=TOL[dtype])


def test_step_is_the_same_on_any_number_of_threads(rng, restore_threads):
    layer = fastgru.GRU(64, 128, 2, reset_after=False, seed=4).eval()  # big enough to split the rows
    x = rng.standard_normal((3, 16, 64)).astype(np.float32)
    results = []
    for threads in (1, 2):
        fastgru.set_num_threads(threads)
        results.append(step_through(layer, x))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_allclose(results[1][0], layer(x)[0], rtol=0, atol=1e-6)


def test_step_starts_from_zeros_and_reads_the_current_weights(rng):
    layer = fastgru.GRU(4, 6, 2, seed=1).eval()
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(step_through(layer, x)[0], layer(x)[0], rtol=0, atol=1e-6)
    layer.params[:] *= 0.5  # weights changed in place: the next step sees them
    np.testing.assert_allclose(step_through(layer, x)[0], layer(x)[0], rtol=0, atol=1e-6)


def test_step_errors():
    with pytest.raises(ValueError, match="bidirectional"):
        fastgru.GRU(3, 4, bidirectional=True).step(np.zeros((1, 3)))
    layer = fastgru.GRU(3, 4, 2)
    with pytest.raises(ValueError, match=r"x_t: expected shape \(B, I\)"):
        layer.step(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"x_t: expected shape \(B, I\)"):
        layer.step(np.zeros(3))
    with pytest.raises(ValueError, match=r"h: expected shape \(L, B, H\) = \(2, 1, 4\)"):
        layer.step(np.zeros((1, 3)), np.zeros((1, 1, 4)))
    with pytest.raises(TypeError, match="x_t"):
        layer.step(np.array([["a", "b", "c"]]))


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
def test_model_stream_equals_the_model_on_each_prefix(rng, return_sequences, reset_after):
    model = fastgru.GRUModel(
        3, 7, 2, num_layers=2, reset_after=reset_after, return_sequences=return_sequences, seed=2
    ).eval()
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)  # (B, T, F)
    stream = model.stream(n_streams=4)
    for t in range(x.shape[1]):
        out = stream.step(x[:, t])
        expected = model(x)[:, t] if return_sequences else model(x[:, : t + 1])
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_model_stream_one_stream_and_reset(rng):
    model = fastgru.GRUModel(3, 5, 2, return_sequences=False, seed=3).eval()
    x = rng.standard_normal((6, 3)).astype(np.float32)
    stream = model.stream()
    first = [stream.step(x_t) for x_t in x]
    assert first[0].shape == (2,)
    stream.reset()
    np.testing.assert_array_equal(stream.step(x[0]), first[0])
    pair = model.stream(n_streams=2)
    pair.step(np.stack([x[0], x[1]]))
    pair.reset(1)  # stream 1 starts over, stream 0 goes on
    out = pair.step(np.stack([x[1], x[0]]))
    np.testing.assert_array_equal(out[0], first[1])
    np.testing.assert_array_equal(out[1], first[0])


def test_stream_errors(rng):
    with pytest.raises(ValueError, match="bidirectional"):
        fastgru.GRUModel(3, 4, 1, bidirectional=True).stream()
    stream = fastgru.GRUModel(3, 4, 1).stream(n_streams=2)
    with pytest.raises(ValueError, match=r"x_t: expected shape \(n_streams, F\) = \(2, 3\)"):
        stream.step(np.zeros(3))
    with pytest.raises(ValueError, match="x_t"):
        stream.step(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="i: expected None or a stream index"):
        stream.reset(2)
    with pytest.raises(ValueError, match="not fitted"):
        fastgru.GRURegressor().stream()
    with pytest.raises(ValueError, match="n_streams"):
        fastgru.GRUModel(3, 4, 1).stream(n_streams=0)


def training_data(rng, N=20, T=6, F=3):
    X = rng.standard_normal((N, T, F)).astype(np.float32)
    return X, X[:, :, 0].cumsum(axis=1)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_stream_equals_predict(rng, return_sequences, outputs):
    X, steps = training_data(rng)
    y = steps if return_sequences else steps[:, -1]
    if outputs == 2:
        y = np.stack([y, 2 * y], axis=-1)
    reg = fastgru.GRURegressor(
        hidden_size=8, num_layers=2, return_sequences=return_sequences, epochs=1, random_state=0
    ).fit(X, y)
    stream = reg.stream(n_streams=len(X))
    for t in range(X.shape[1]):
        got = stream.step(X[:, t])
        expected = reg.predict(X)[:, t] if return_sequences else reg.predict(X[:, : t + 1])
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    one = reg.stream()
    value = one.step(X[0, 0])
    assert np.shape(value) == (() if outputs == 1 else (2,))


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_crossentropy"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_classifier_stream_equals_predict(rng, loss, return_sequences):
    X, steps = training_data(rng)
    labels = np.where(steps > 0, "up", "down")
    clf = fastgru.GRUClassifier(
        hidden_size=8, loss=loss, return_sequences=return_sequences, epochs=1, random_state=0
    ).fit(X, labels if return_sequences else labels[:, -1])
    labels_stream, proba_stream = clf.stream(n_streams=len(X)), clf.stream(n_streams=len(X))
    for t in range(X.shape[1]):
        prefix = X[:, : t + 1]
        expected = clf.predict(X)[:, t] if return_sequences else clf.predict(prefix)
        expected_proba = clf.predict_proba(X)[:, t] if return_sequences else clf.predict_proba(prefix)
        got_proba = proba_stream.step_proba(X[:, t])
        np.testing.assert_allclose(got_proba, expected_proba, rtol=0, atol=1e-6)
        # labels: equal except where two classes are tied within float32 rounding
        got = labels_stream.step(X[:, t])
        clear = np.abs(expected_proba[:, 0] - 0.5) > 1e-5
        assert (got[clear] == expected[clear]).all()
    with pytest.raises(AttributeError, match="step_proba"):
        fastgru.GRURegressor(epochs=1).fit(X, steps[:, -1]).stream().step_proba(X[0, 0])


def test_estimator_stream_refuses_nan_and_infinity_as_predict_does(rng):
    X, steps = training_data(rng)
    clf = fastgru.GRUClassifier(hidden_size=4, epochs=1, random_state=0).fit(
        X, np.where(steps[:, -1] > 0, "up", "down")
    )
    reg = fastgru.GRURegressor(hidden_size=4, epochs=1, random_state=0).fit(X, steps[:, -1])
    for est, steppers in ((clf, ("step", "step_proba")), (reg, ("step",))):
        with pytest.raises(ValueError, match="contains NaN or infinity"):
            est.predict(np.where(np.arange(3) == 0, np.nan, X[:1]))
        for name in steppers:
            stream, fresh = est.stream(), est.stream()
            getattr(stream, name)(X[0, 0])
            getattr(fresh, name)(X[0, 0])
            for bad in (np.nan, np.inf, -np.inf):
                with pytest.raises(ValueError, match=r"x_t: contains NaN or infinity"):
                    getattr(stream, name)(np.where(np.arange(3) == 1, bad, X[0, 1]))
            # The refused steps left the state alone: the stream goes on as one that never saw them.
            np.testing.assert_array_equal(getattr(stream, name)(X[0, 1]), getattr(fresh, name)(X[0, 1]))
