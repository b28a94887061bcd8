"""fastgru.quantize: int8 weights (one scale per row) for inference. Held to the NumPy
reference's quantization (fastgru.reference.quantize), to the float32 model within the contract's
tolerance, and checked for everything inference does and everything training must refuse."""

import pickle

import numpy as np
import pytest

import fastgru
from fastgru.reference.quantize import dequantize_rows, quantize_rows


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


# -- the layer -------------------------------------------------------------------------------------
OPTIONS = [
    dict(reset_after=True),
    dict(reset_after=False, num_layers=2),
    dict(reset_after=True, num_layers=2, bidirectional=True, bias=False),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_gru_copy_is_the_reference_on_int8_weights(rng, options):
    layer = fastgru.GRU(6, 48, seed=3, **options).eval()
    before = layer.params.copy()
    int8 = fastgru.quantize(layer)
    assert type(int8) is fastgru.GRU and int8 is not layer and int8.quantization == "int8"
    np.testing.assert_array_equal(layer.params, before)  # the original is untouched
    spec = fastgru.GRU(6, 48, backend="numpy", **options).eval()
    for name, value in layer.state_dict().items():  # the specification's weights
        spec.state_dict()[name][...] = dequantize_rows(*quantize_rows(value)) if value.ndim == 2 else value
    x = rng.standard_normal((11, 4, 6)).astype(np.float32)
    lengths = np.array([11, 3, 8, 1])
    y, h_n = int8(x, lengths=lengths)
    spec_y, spec_h = spec(x, lengths=lengths)
    np.testing.assert_allclose(y, spec_y, rtol=0, atol=1e-5)
    np.testing.assert_allclose(h_n, spec_h, rtol=0, atol=1e-5)
    float_y, _ = layer(x, lengths=lengths)
    assert 1e-4 < rel(y, float_y) < 2e-2


@pytest.mark.parametrize("reset_after", [True, False])
def test_int8_step_reads_int8_rows_as_the_reference_computes(isa, rng, reset_after):
    """The compiled step multiplies the int8 rows themselves (their scale after the sum): held to
    the reference on the dequantized weights, step by step, on every instruction set."""
    layer = fastgru.GRU(37, 70, 2, reset_after=reset_after, seed=4).eval()  # rows not a multiple of 8
    int8 = fastgru.quantize(layer)
    spec = fastgru.GRU(37, 70, 2, reset_after=reset_after, backend="numpy")
    spec._params[:] = int8.params
    spec.eval()
    x = rng.standard_normal((9, 3, 37)).astype(np.float32)
    whole, _ = int8(x)
    h = h_spec = None
    for t in range(9):
        y, h = int8.step(x[t], h)
        _, h_spec = spec.step(x[t], h_spec)
        np.testing.assert_allclose(h, h_spec, rtol=0, atol=2e-6)
        np.testing.assert_allclose(y, whole[t], rtol=0, atol=2e-6)


def test_int8_step_is_the_same_on_any_thread_count(rng, restore_threads):
    int8 = fastgru.quantize(fastgru.GRU(20, 64, seed=5))
    x = rng.standard_normal((64, 20)).astype(np.float32)
    h0 = rng.standard_normal((1, 64, 64)).astype(np.float32)
    results = []
    for threads in (1, 2):
        fastgru.set_num_threads(threads)
        results.append(int8.step(x, h0)[1])
    np.testing.assert_array_equal(results[0], results[1])


def test_training_an_int8_copy_is_refused(rng):
    layer = fastgru.quantize(fastgru.GRU(3, 8, seed=0))
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    layer.train()
    y, _ = layer(x)
    for call in (
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
