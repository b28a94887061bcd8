"""fastgru.onnx.export: every exported variant run by ONNX Runtime (an independent implementation
of the ONNX GRU) gives fastgru's results, from one file for any batch size and sequence length."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgru

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import fastgru.onnx  # noqa: E402  (after the skips: it needs onnx)

TOL = 1e-5
LENGTHS = np.array([7, 3, 1, 5])


def run(path, feeds):
    """All outputs of the file for feeds, by name."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def gru_nodes(path):
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == "GRU"]


def attribute(node, name):
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [False, True])
def test_layer(tmp_path, rng, reset_after, num_layers, bidirectional, batch_first, lengths):
    layer = fastgru.GRU(
        3, 5, num_layers, bidirectional=bidirectional, reset_after=reset_after, batch_first=batch_first, seed=1
    ).eval()
    path = tmp_path / "layer.onnx"
    fastgru.onnx.export(layer, path, lengths=lengths)
    nodes = gru_nodes(path)
    assert len(nodes) == num_layers
    for node in nodes:
        assert attribute(node, "linear_before_reset") == int(reset_after)
        assert attribute(node, "direction") == (b"bidirectional" if bidirectional else b"forward")
        assert attribute(node, "hidden_size") == 5
    for T, B in [(7, 4), (2, 4), (11, 1)]:  # one file, other batch sizes and lengths
        shape = (B, T, 3) if batch_first else (T, B, 3)
        x = rng.standard_normal(shape).astype(np.float32)
        h0 = rng.standard_normal((num_layers * layer.num_directions, B, 5)).astype(np.float32)
        lens = np.minimum(LENGTHS[:B], T) if lengths else None
        feeds = {"x": x, "h0": h0}
        if lengths:
            feeds["lengths"] = lens.astype(np.int32)
        got = run(path, feeds)
        y, h_n = layer(x, h0, lens)
        np.testing.assert_allclose(got["y"], y, rtol=0, atol=TOL)
        np.testing.assert_allclose(got["h_n"], h_n, rtol=0, atol=TOL)


def test_layer_without_bias(tmp_path, rng):
    layer = fastgru.GRU(4, 6, 2, bias=False, seed=2).eval()
    fastgru.onnx.export(layer, tmp_path / "l.onnx")
    x, h0 = rng.standard_normal((5, 3, 4)).astype(np.float32), rng.standard_normal((2, 3, 6)).astype(np.float32)
    got = run(tmp_path / "l.onnx", {"x": x, "h0": h0})
    y, h_n = layer(x, h0)
    np.testing.assert_allclose(got["y"], y, rtol=0, atol=TOL)
    np.testing.assert_allclose(got["h_n"], h_n, rtol=0, atol=TOL)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("lengths", [False, True])
def test_model(tmp_path, rng, return_sequences, bidirectional, reset_after, lengths):
    model = fastgru.GRUModel(
        3,
        6,
        2,
        num_layers=2,
        bidirectional=bidirectional,
        reset_after=reset_after,
        return_sequences=return_sequences,
        seed=3,
    ).eval()
    path = tmp_path / "model.onnx"
    fastgru.onnx.export(model, path, lengths=lengths)
    for B, T in [(4, 7), (1, 3)]:
        x = rng.standard_normal((B, T, 3)).astype(np.float32)
        lens = np.minimum(LENGTHS[:B], T) if lengths else None
        feeds = {"x": x} if not lengths else {"x": x, "lengths": lens.astype(np.int32)}
        np.testing.assert_allclose(run(path, feeds)["out"], model(x, lens), rtol=0, atol=TOL)


def test_model_without_bias(tmp_path, rng):
    model = fastgru.GRUModel(3, 6, 2, bias=False, return_sequences=False, seed=6).eval()
    fastgru.onnx.export(model, tmp_path / "m.onnx")
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(run(tmp_path / "m.onnx", {"x": x})["out"], model(x), rtol=0, atol=TOL)


def ragged(X, lengths):
    return [X[i, :n] for i, n in enumerate(lengths)]


def valid_steps(values, lengths):
    """Per-step outputs (N, T, ...) at the valid steps only, one sequence after another."""
    return np.concatenate([values[i, :n] for i, n in enumerate(lengths)])


def fit_data(rng, N=24, T=7, F=3):
    X = rng.standard_normal((N, T, F)).astype(np.float32)
    return X, X[:, :, 0].cumsum(axis=1)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_regressor(tmp_path, rng, return_sequences, outputs, bidirectional):
    X, steps = fit_data(rng)
    y = steps if return_sequences else steps[:, -1]
    if outputs == 2:
        y = np.stack([y, -y], axis=-1)
    reg = fastgru.GRURegressor(
        hidden_size=8,
        num_layers=2,
        bidirectional=bidirectional,
        reset_after=False,
        return_sequences=return_sequences,
        epochs=2,
        random_state=0,
    ).fit(X, y)
    path = tmp_path / "reg.onnx"
    fastgru.onnx.export(reg, path)
    X_new = rng.standard_normal((5, 9, 3)).astype(np.float32)
    got = run(path, {"X": X_new})["y"]
    assert got.shape == np.shape(reg.predict(X_new))
    np.testing.assert_allclose(got, reg.predict(X_new), rtol=0, atol=TOL)

    fastgru.onnx.export(reg, path, lengths=True)
    lens = np.array([9, 2, 5, 1, 8])
    got = run(path, {"X": X_new, "lengths": lens.astype(np.int32)})["y"]
    expected = reg.predict(ragged(X_new, lens))
    if return_sequences:
        np.testing.assert_allclose(valid_steps(got, lens), np.concatenate(expected), rtol=0, atol=TOL)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("loss,n_classes", [("cross_entropy", 3), ("cross_entropy", 2), ("binary_crossentropy", 2)])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_classifier(tmp_path, rng, loss, n_classes, return_sequences):
    X, steps = fit_data(rng)
    labels = np.array(["a", "b", "c"])[:n_classes]
    codes = (steps > 0).astype(int) + (steps > 1) * (n_classes - 2)
    y = labels[codes if return_sequences else codes[:, -1]]
    clf = fastgru.GRUClassifier(
        hidden_size=8, loss=loss, return_sequences=return_sequences, epochs=2, random_state=0
    ).fit(X, y)
    path = tmp_path / "clf.onnx"
    fastgru.onnx.export(clf, path, lengths=True)
    X_new = rng.standard_normal((5, 6, 3)).astype(np.float32)
    lens = np.array([6, 2, 5, 1, 4])
    probabilities = run(path, {"X": X_new, "lengths": lens.astype(np.int32)})["probabilities"]
    expected = clf.predict_proba(ragged(X_new, lens))
    labels_from_file = clf.classes_[probabilities.argmax(-1)]
    if return_sequences:
        np.testing.assert_allclose(valid_steps(probabilities, lens), np.concatenate(expected), rtol=0, atol=TOL)
        top2 = np.sort(np.concatenate(expected), axis=-1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-5  # not tied within float32 rounding
        labels = np.concatenate(clf.predict(ragged(X_new, lens)))
        assert (valid_steps(labels_from_file, lens)[clear] == labels[clear]).all()
    else:
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOL)
        assert probabilities.shape == (5, n_classes)


def test_float64_exports_as_float32_with_a_warning(tmp_path, rng):
    model = fastgru.GRUModel(3, 5, 2, dtype="float64", return_sequences=False, seed=4).eval()
    with pytest.warns(UserWarning, match="float64") as caught:
        fastgru.onnx.export(model, tmp_path / "m.onnx")
    assert [w.filename for w in caught] == [__file__]  # the warning names the caller's line
    x = rng.standard_normal((4, 6, 3))
    got = run(tmp_path / "m.onnx", {"x": x.astype(np.float32)})["out"]
    np.testing.assert_allclose(got, model(x), rtol=0, atol=TOL)


def test_graph_passes_the_full_checker_and_has_symbolic_sizes(tmp_path):
    model = fastgru.GRUModel(3, 5, 2, num_layers=2, bidirectional=True, seed=5)
    for opset in (13, 18):
        fastgru.onnx.export(model, tmp_path / "m.onnx", lengths=True, opset=opset)
        x = np.ones((2, 4, 3), np.float32)
        got = run(tmp_path / "m.onnx", {"x": x, "lengths": np.array([4, 2], np.int32)})["out"]
        np.testing.assert_allclose(got, model.eval()(x, np.array([4, 2])), rtol=0, atol=TOL)
    loaded = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.opset_import[0].version == 18
    x_dims = [d.dim_param or d.dim_value for d in loaded.graph.input[0].type.tensor_type.shape.dim]
    assert x_dims == ["B", "T", 3]


def test_errors_leave_no_file(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="not fitted"):
        fastgru.onnx.export(fastgru.GRURegressor(), path)
    with pytest.raises(TypeError, match="GRUModel"):
        fastgru.onnx.export(object(), path)
    with pytest.raises(ValueError, match="opset"):
        fastgru.onnx.export(fastgru.GRU(2, 3), path, opset=12)
    with pytest.raises(TypeError, match="lengths: expected True or False"):
        fastgru.onnx.export(fastgru.GRU(2, 3), path, lengths="no")
    with pytest.raises(FileNotFoundError):
        fastgru.onnx.export(fastgru.GRU(2, 3), "")
    assert os.listdir(tmp_path) == []
    path.write_bytes(b"keep me")  # an existing file survives a failed export
    with pytest.raises(TypeError):
        fastgru.onnx.export("not a model", path)
    assert path.read_bytes() == b"keep me" and os.listdir(tmp_path) == ["m.onnx"]


def test_import_fastgru_does_not_import_onnx():
    code = (
        "import sys, fastgru; assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules; "
        "assert callable(fastgru.onnx.export) and 'onnx' in sys.modules"
    )  # loaded on first use
    subprocess.run([sys.executable, "-c", code], check=True)
