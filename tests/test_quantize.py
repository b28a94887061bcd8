"""fastgru.quantize: int8 weights (one scale per row) for inference. Held to the NumPy
reference's quantization (fastgru.reference.quantize), to the float32 model within the contract's
tolerance, and checked for everything inference does and everything training must refuse."""

import pickle

import numpy as np
import pytest

import fastgru
from fastgru.reference.quantize import (
    Int8Rows,
    dequantize_rows,
    int8_product,
    quantize_activations,
    quantize_rows,
)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(np.asarray(b, np.float64)))


# -- the specification ---------------------------------------------------------------------------
def test_rows_are_symmetric_int8_with_one_scale_each(rng):
    w = rng.standard_normal((7, 13)).astype(np.float32) * np.arange(1, 8, dtype=np.float32)[:, None]
    w[3] = 0
    q, scale = quantize_rows(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (7,)
    assert np.abs(q).max() == 127 and q.min() >= -127
    assert (np.abs(q).max(axis=1)[scale > 0] == 127).all()  # each row's largest |w| -> 127
    assert scale[3] == 0 and (q[3] == 0).all() and (dequantize_rows(q, scale)[3] == 0).all()
    err = np.abs(dequantize_rows(q, scale) - w)
    assert (err <= scale[:, None] / 2 * (1 + 1e-6) + 1e-12).all()  # round to nearest
    q_neg, scale_neg = quantize_rows(-w)
    np.testing.assert_array_equal(q_neg, -q)
    np.testing.assert_array_equal(scale_neg, scale)


def test_activations_are_quantized_row_by_row():
    a = np.array(
        [
            [0.5, -1.0, 0.25, 1.0 / 254],  # 1/254 * 127 = 0.5: a tie, rounded to even (0)
            [0.0, 0.0, 0.0, 0.0],  # scale 0
            [3.0, np.nan, 1.0, 0.0],  # NaN: no values, a NaN scale
            [-2.0, 2.0 * 3 / 254, 1.0, 2.0 * 5 / 254],  # ties at 1.5 -> 2 and 2.5 -> 2
        ],
        np.float32,
    )
    qa, s = quantize_activations(a)
    assert qa.dtype == np.int8 and s.dtype == np.float32
    np.testing.assert_array_equal(qa[0], [64, -127, 32, 0])
    np.testing.assert_array_equal(qa[1], 0)
    np.testing.assert_array_equal(qa[2], 0)
    np.testing.assert_array_equal(qa[3], [-127, 2, 64, 2])
    assert s[0] == np.float32(1.0) / 127 and s[1] == 0 and np.isnan(s[2])


def test_int8_product_is_the_exact_integer_sum_times_both_scales(rng):
    a = rng.standard_normal((5, 300)).astype(np.float32)
    w = Int8Rows(*quantize_rows(rng.standard_normal((7, 300)).astype(np.float32)))
    qa, s = quantize_activations(a)
    want = np.array([[float(sum(int(x) * int(y) for x, y in zip(ra, rw))) for rw in w.q] for ra in qa])
    got = int8_product(a, w)
    np.testing.assert_allclose(got, (want * s[:, None] * w.scale[None, :]).astype(np.float32), rtol=1e-6)
    exact = a.astype(np.float64) @ dequantize_rows(w.q, w.scale).T.astype(np.float64)
    # each activation is off by at most half its row's step: s / 2 per element
    bound = (s[:, None] / 2) * np.abs(dequantize_rows(w.q, w.scale)).sum(axis=1)[None, :]
    assert (np.abs(got - exact) <= bound * 1.01 + 1e-6).all()


# -- the layer -------------------------------------------------------------------------------------
OPTIONS = [
    dict(reset_after=True),
    dict(reset_after=False, num_layers=2),
    dict(reset_after=True, num_layers=2, bidirectional=True, bias=False),
    dict(reset_after=False, num_layers=3, bidirectional=True),
]


def int8_reference(layer):
    """fastgru.quantize of the same weights on the NumPy backend: the specification."""
    spec = fastgru.GRU(
        layer.input_size,
        layer.hidden_size,
        layer.num_layers,
        bias=layer.bias,
        bidirectional=layer.bidirectional,
        reset_after=layer.reset_after,
        backend="numpy",
    )
    spec.load_state_dict(layer.state_dict())
    return fastgru.quantize(spec.eval())


@pytest.mark.parametrize("options", OPTIONS)
def test_gru_copy_is_the_reference_with_int8_activations(isa, rng, options):
    layer = fastgru.GRU(6, 48, seed=3, **options).eval()
    before = layer.params.copy()
    int8 = fastgru.quantize(layer)
    assert type(int8) is fastgru.GRU and int8 is not layer and int8.quantization == "int8"
    np.testing.assert_array_equal(layer.params, before)  # the original is untouched
    spec = int8_reference(layer)
    for name, (q, scale) in {n: quantize_rows(v) for n, v in layer.state_dict().items() if v.ndim == 2}.items():
        weights = spec._reference_params()[name]
        np.testing.assert_array_equal(weights.q, q)
        np.testing.assert_array_equal(weights.scale, scale)
    x = rng.standard_normal((11, 6, 6)).astype(np.float32)
    lengths = np.array([11, 3, 8, 1, 11, 5])  # a group of four sequences advancing together, then two
    h0 = rng.standard_normal((int8.num_layers * int8.num_directions, 6, 48)).astype(np.float32)
    y, h_n = int8(x, h0, lengths=lengths)
    spec_y, spec_h = spec(x, h0, lengths=lengths)
    np.testing.assert_allclose(y, spec_y, rtol=0, atol=1e-5)
    np.testing.assert_allclose(h_n, spec_h, rtol=0, atol=1e-5)
    float_y, _ = layer(x, h0, lengths=lengths)
    assert 1e-4 < rel(y, float_y) < 2e-2
    # a sequence's result does not depend on the others in its batch
    alone, alone_h = int8(x[: lengths[2], 2:3], h0[:, 2:3], lengths=lengths[2:3])
    np.testing.assert_array_equal(alone, y[: lengths[2], 2:3])
    np.testing.assert_array_equal(alone_h, h_n[:, 2:3])


def test_int8_forward_is_the_same_on_any_thread_count(rng, restore_threads):
    int8 = fastgru.quantize(fastgru.GRU(20, 64, 2, bidirectional=True, seed=5))
    x = rng.standard_normal((30, 37, 20)).astype(np.float32)
    lengths = rng.integers(1, 31, 37)
    results = []
    for threads in (1, 2):
        fastgru.set_num_threads(threads)
        results.append(int8(x, lengths=lengths))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_non_finite_inputs_give_nan_not_garbage(rng):
    layer = fastgru.GRU(4, 16, seed=1).eval()
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    x[1, 0, 2] = np.nan
    for obj in (fastgru.quantize(layer), int8_reference(layer)):
        y, _ = obj(x)
        assert np.isnan(y[1:, 0]).all() and np.isfinite(y[:, 1]).all() and np.isfinite(y[0]).all()


@pytest.mark.parametrize("reset_after", [True, False])
def test_int8_step_is_the_reference_and_the_forward(isa, rng, reset_after):
    """The compiled step, on every instruction set, against the reference step by step; and
    stepping a sequence gives its whole-sequence forward bit for bit."""
    layer = fastgru.GRU(37, 70, 2, reset_after=reset_after, seed=4).eval()  # rows not a multiple of 8
    int8 = fastgru.quantize(layer)
    spec = int8_reference(layer)
    x = rng.standard_normal((9, 5, 37)).astype(np.float32)
    whole, whole_h = int8(x)
    h = h_spec = None
    for t in range(9):
        y, h = int8.step(x[t], h)
        _, h_spec = spec.step(x[t], h_spec)
        np.testing.assert_allclose(h, h_spec, rtol=0, atol=2e-6)
        np.testing.assert_array_equal(y, whole[t])
    np.testing.assert_array_equal(h, whole_h)


def test_int8_step_is_the_same_on_any_thread_count(rng, restore_threads):
    int8 = fastgru.quantize(fastgru.GRU(20, 64, seed=5))
    x = rng.standard_normal((64, 20)).astype(np.float32)
    h0 = rng.standard_normal((1, 64, 64)).astype(np.float32)
    results = []
    for threads in (1, 2):
        fastgru.set_num_threads(threads)
        results.append(int8.step(x, h0)[1])
    np.testing.assert_array_equal(results[0], results[1])


def numpy_panels(w):
    """A weight matrix (3H, K) in the int8 kernels' panels, written out in NumPy: each gate's rows
    padded to whole panels of 16, K to a multiple of 4 (zeros), and each panel stored as K/4
    columns of 64 bytes, [row][input % 4]; then every (padded) row's weight sum as an int32."""
    H, K = w.shape[0] // 3, w.shape[1]
    rows, depth = -(-H // 16) * 16, -(-K // 4) * 4
    gates = np.zeros((3, rows, depth), np.int8)
    gates[:, :H, :K] = w.reshape(3, H, K)
    panels = gates.reshape(3, rows // 16, 16, depth // 4, 4).transpose(0, 1, 3, 2, 4)
    sums = gates.sum(axis=2, dtype=np.int32)
    return np.concatenate([panels.ravel(), sums.ravel().view(np.int8)])


def test_int8_weights_are_packed_in_the_documented_panels():
    """The packing that the compiled step and forward read, against the layout written out above,
    for two layers and both directions (sizes that pad both rows and inputs)."""
    layer = fastgru.GRU(5, 7, 2, bidirectional=True, seed=3)
    int8 = fastgru.quantize(layer)
    packed, _ = int8._int8_kernel_args()
    views = int8._views(int8._int8)
    want = [numpy_panels(views[name]) for name, _, shape in int8._layout if len(shape) == 2]
    np.testing.assert_array_equal(packed, np.concatenate(want))
    # The compiled entries check what they are given: the weights as stored are not the panels.
    from fastgru import _core

    with pytest.raises(ValueError, match="weights"):
        _core.gru_pack_int8(int8.config, int8._int8[:-1])
    x = np.zeros((3, 1, 5), np.float32)
    with pytest.raises(ValueError, match="packed"):
        _core.gru_forward_int8_float32(int8.config, int8._int8, int8._int8_kernel_args()[1], int8.params, x)


def test_training_an_int8_copy_is_refused(rng):
    layer = fastgru.quantize(fastgru.GRU(3, 8, seed=0))
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    y, _ = layer(x)
    layer.train()
    for call in (
        lambda: layer(x),
        lambda: layer.backward(np.ones_like(y)),
        lambda: fastgru.Adam(layer),
        lambda: layer.load_state_dict(layer.state_dict()),
    ):
        with pytest.raises(RuntimeError, match="quantized"):
            call()
    with pytest.raises(ValueError, match="read-only"):
        layer.params[0] = 1.0  # would leave the int8 rows behind
    model = fastgru.quantize(fastgru.GRUModel(3, 8, 2, seed=0))
    target = np.zeros((2, 4, 2), np.float32)
    for call in (
        lambda: model.train_step(x.transpose(1, 0, 2), target, None),
        lambda: model.compute_gradients(x.transpose(1, 0, 2), target),
        lambda: model.apply_gradients(None, 0.0),
    ):
        with pytest.raises(RuntimeError, match="quantized"):
            call()


def test_bad_requests_are_clear_errors():
    layer = fastgru.GRU(3, 8)
    for dtype in ("int4", "uint8", None, np.int8):
        with pytest.raises(ValueError, match="dtype"):
            fastgru.quantize(layer, dtype)
    with pytest.raises(ValueError, match="float64"):
        fastgru.quantize(fastgru.GRU(3, 8, dtype="float64"))
    with pytest.raises(ValueError, match="already quantized"):
        fastgru.quantize(fastgru.quantize(layer))
    with pytest.raises(TypeError, match="GRU"):
        fastgru.quantize(fastgru.Dense(3, 4))
    layer.params[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fastgru.quantize(layer)
    with pytest.raises(Exception, match=r"not fitted|fit"):
        fastgru.quantize(fastgru.GRURegressor())


# -- models, files, streams ------------------------------------------------------------------------
def test_model_files_hold_int8_weights(tmp_path, rng):
    model = fastgru.GRUModel(32, 128, 4, num_layers=2, seed=6).eval()
    int8 = fastgru.quantize(model)
    x = rng.standard_normal((5, 12, 32)).astype(np.float32)
    assert rel(int8(x), model(x)) < 2e-2
    model.save(tmp_path / "float.safetensors")
    int8.save(tmp_path / "int8.safetensors")
    ratio = (tmp_path / "int8.safetensors").stat().st_size / (tmp_path / "float.safetensors").stat().st_size
    assert 0.24 < ratio < 0.3
    loaded = fastgru.load(tmp_path / "int8.safetensors")
    assert loaded.quantization == "int8" and loaded.gru.quantization == "int8"
    np.testing.assert_array_equal(loaded(x), int8(x))
    np.testing.assert_array_equal(loaded.gru._int8, int8.gru._int8)
    again = pickle.loads(pickle.dumps(int8))
    assert again.quantization == "int8"
    np.testing.assert_array_equal(again(x), int8(x))
    # The kernels' packed weights (built by the forwards above) are not pickled: rebuilt at first
    # use, so a pickle from a version that packed them otherwise still loads.
    assert "_int8_kernel_cache" in int8.gru.__dict__
    state = int8.gru.__getstate__()
    assert "_int8_kernel_cache" not in state
    state["_int8_kernel_cache"] = (np.zeros(3, np.int8), np.zeros(3, np.float32))  # another packing
    old = type(int8.gru).__new__(type(int8.gru))
    old.__setstate__(state)
    np.testing.assert_array_equal(old(x.transpose(1, 0, 2))[0], int8.gru(x.transpose(1, 0, 2))[0])
    stream = loaded.stream(5)
    for t in range(12):
        out = stream.step(x[:, t])
    np.testing.assert_allclose(out, int8(x)[:, -1], rtol=0, atol=1e-5)


def test_damaged_int8_files_are_refused(tmp_path):
    from fastgru.safetensors_format import read_safetensors, write_safetensors

    int8 = fastgru.quantize(fastgru.GRUModel(3, 8, 2, seed=0))
    int8.save(tmp_path / "m.safetensors")
    tensors, metadata = read_safetensors(tmp_path / "m.safetensors")
    for name, damage in (
        ("gru.weight_ih_l0.scale", lambda t: -t),
        ("gru.weight_hh_l0", lambda t: t.astype(np.float32)),
        ("head.weight.scale", lambda t: t * np.nan),
    ):
        broken = dict(tensors, **{name: damage(tensors[name])})
        write_safetensors(tmp_path / "bad.safetensors", broken, metadata)
        with pytest.raises(ValueError, match=r"inconsistent|expected"):
            fastgru.load(tmp_path / "bad.safetensors")


def test_onnx_export_refuses_int8_and_writes_nothing(tmp_path):
    pytest.importorskip("onnx")
    import fastgru.onnx

    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="quantized"):
        fastgru.onnx.export(fastgru.quantize(fastgru.GRUModel(3, 8, 2)), path)
    assert not path.exists()


# -- estimators ------------------------------------------------------------------------------------
def test_regressor_int8_scores_as_float32(rng, tmp_path):
    X = rng.standard_normal((600, 20, 3)).astype(np.float32)
    y = np.tanh(X[:, -4:, 0].sum(axis=1)) + 0.3 * X[:, -1, 1]
    est = fastgru.GRURegressor(hidden_size=32, epochs=12, lr=5e-3, random_state=0).fit(X[:500], y[:500])
    int8 = fastgru.quantize(est)
    assert type(int8) is fastgru.GRURegressor and int8.model_.quantization == "int8"
    assert est.model_.quantization is None
    assert est.score(X[500:], y[500:]) > 0.8
    assert abs(int8.score(X[500:], y[500:]) - est.score(X[500:], y[500:])) < 0.02
    with pytest.raises(RuntimeError, match="quantized"):
        int8.fit(X[:50], y[:50])
    int8.save(tmp_path / "r.safetensors")
    np.testing.assert_array_equal(fastgru.load(tmp_path / "r.safetensors").predict(X[500:]), int8.predict(X[500:]))


def test_classifier_int8_accuracy_on_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 8, 8).astype(np.float32)  # each image as 8 rows of 8 pixels
    est = fastgru.GRUClassifier(hidden_size=64, epochs=15, lr=5e-3, random_state=0).fit(X[:1400], y[:1400])
    int8 = fastgru.quantize(est)
    float_accuracy, int8_accuracy = est.score(X[1400:], y[1400:]), int8.score(X[1400:], y[1400:])
    assert float_accuracy > 0.85
    assert abs(int8_accuracy - float_accuracy) <= 0.01
    np.testing.assert_allclose(int8.predict_proba(X[1400:1410]), est.predict_proba(X[1400:1410]), atol=0.05)
    stream = int8.stream(3)
    for t in range(8):
        labels = stream.step(X[1400:1403, t])
    np.testing.assert_array_equal(labels, int8.predict(X[1400:1403]))
