"""Weights from Keras and ONNX layouts: the converted layer must compute what those frameworks'
documented equations compute (written out here step by step, independently of fastgru)."""

import numpy as np
import pytest

import fastgru
from fastgru import convert
from fastgru.convert import from_keras, from_onnx


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def keras_gru(x, kernel, recurrent_kernel, bias, reset_after):
    """keras.layers.GRU (gates z, r, h in kernel columns), time-major x (T, B, I)."""
    H = recurrent_kernel.shape[0]
    h = np.zeros((x.shape[1], H))
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * H))
    ys = []
    for x_t in x:
        mx = x_t @ kernel + b_in
        if reset_after:
            mh = h @ recurrent_kernel + b_rec
            z = sigmoid(mx[:, :H] + mh[:, :H])
            r = sigmoid(mx[:, H : 2 * H] + mh[:, H : 2 * H])
            hh = np.tanh(mx[:, 2 * H :] + r * mh[:, 2 * H :])
        else:
            z = sigmoid(mx[:, :H] + h @ recurrent_kernel[:, :H])
            r = sigmoid(mx[:, H : 2 * H] + h @ recurrent_kernel[:, H : 2 * H])
            hh = np.tanh(mx[:, 2 * H :] + (r * h) @ recurrent_kernel[:, 2 * H :])
        h = z * h + (1 - z) * hh
        ys.append(h)
    return np.stack(ys)


def onnx_gru(x, W, R, B, linear_before_reset):
    """ONNX GRU operator (gates z, r, h in rows), Y (T, D, B, H)."""
    D, _, H = R.shape
    out = np.zeros((x.shape[0], D, x.shape[1], H))
    for d in range(D):
        Wz, Wr, Wh = np.split(W[d], 3)
        Rz, Rr, Rh = np.split(R[d], 3)
        Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(B[d], 6)
        h = np.zeros((x.shape[1], H))
        for t in range(x.shape[0]) if d == 0 else reversed(range(x.shape[0])):
            z = sigmoid(x[t] @ Wz.T + h @ Rz.T + Wbz + Rbz)
            r = sigmoid(x[t] @ Wr.T + h @ Rr.T + Wbr + Rbr)
            if linear_before_reset:
                hh = np.tanh(x[t] @ Wh.T + r * (h @ Rh.T + Rbh) + Wbh)
            else:
                hh = np.tanh(x[t] @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh)
            h = (1 - z) * hh + z * h
            out[t, d] = h
    return out


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_weights(reset_after, rng):
    I, H = 4, 6
    kernel, recurrent = rng.standard_normal((I, 3 * H)), rng.standard_normal((H, 3 * H))
    bias = rng.standard_normal((2, 3 * H) if reset_after else (3 * H,))
    x = rng.standard_normal((5, 3, I))
    layer = fastgru.GRU(I, H, reset_after=reset_after, dtype="float64")
    layer.load_state_dict(from_keras(kernel, recurrent, bias))
    y, _ = layer(x)
    np.testing.assert_allclose(y, keras_gru(x, kernel, recurrent, bias, reset_after), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("linear_before_reset", [1, 0])
@pytest.mark.parametrize("directions", [1, 2])
def test_onnx_weights(linear_before_reset, directions, rng):
    I, H = 3, 5
    W, R = rng.standard_normal((directions, 3 * H, I)), rng.standard_normal((directions, 3 * H, H))
    B = rng.standard_normal((directions, 6 * H))
    x = rng.standard_normal((4, 2, I))
    layer = fastgru.GRU(I, H, bidirectional=directions == 2, reset_after=bool(linear_before_reset), dtype="float64")
    layer.load_state_dict(from_onnx(W, R, B))
    y, _ = layer(x)
    want = onnx_gru(x, W, R, B, linear_before_reset)
    np.testing.assert_allclose(y.reshape(4, 2, directions, H).transpose(0, 2, 1, 3), want, rtol=1e-12, atol=1e-12)


def test_keras_without_bias_and_bad_shapes(rng):
    out = from_keras(rng.standard_normal((4, 18)), rng.standard_normal((6, 18)))
    assert set(out) == {"weight_ih_l0", "weight_hh_l0"}
    with pytest.raises(ValueError, match="kernel"):
        from_keras(rng.standard_normal((4, 17)), rng.standard_normal((6, 18)))
    with pytest.raises(ValueError, match="recurrent_kernel"):
        from_keras(rng.standard_normal((4, 18)), rng.standard_normal((6, 17)))
    with pytest.raises(ValueError, match="bias"):
        from_keras(rng.standard_normal((4, 18)), rng.standard_normal((6, 18)), rng.standard_normal(17))
    with pytest.raises(ValueError, match="W"):
        from_onnx(rng.standard_normal((1, 15, 3)), rng.standard_normal((2, 15, 5)))
    with pytest.raises(ValueError, match="B"):
        from_onnx(rng.standard_normal((1, 15, 3)), rng.standard_normal((1, 15, 5)), rng.standard_normal((1, 29)))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_to_onnx_is_the_inverse_of_from_onnx(rng, bidirectional, bias):
    layer = fastgru.GRU(3, 4, 2, bias=bias, bidirectional=bidirectional, seed=0)
    state = layer.state_dict()
    back = {}
    for k in range(2):
        W, R, B = convert.to_onnx(state, layer=k, bidirectional=bidirectional)
        D = 2 if bidirectional else 1
        assert W.shape == (D, 12, 3 if k == 0 else 4 * D) and R.shape == (D, 12, 4) and B.shape == (D, 24)
        back.update(convert.from_onnx(W, R, B if bias else None, layer=k))
    assert back.keys() == state.keys()
    for name, value in state.items():
        np.testing.assert_array_equal(back[name], value)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_reset_before_biases_act_as_one(rng, backend):
    """With reset_after=False, bias_ih and bias_hh enter every gate only through their sum, so
    they get the same gradient and a Keras bias may sit in either: what the README says about
    training a model converted from Keras rests on this."""
    layer = fastgru.GRU(3, 4, num_layers=2, reset_after=False, backend=backend)
    x = rng.standard_normal((5, 2, 3))
    y, h_n = layer(x)
    layer.backward(rng.standard_normal(y.shape), rng.standard_normal(h_n.shape))
    grads = layer.grads()
    for k in range(2):
        np.testing.assert_array_equal(grads[f"bias_ih_l{k}"], grads[f"bias_hh_l{k}"])
    state = layer.state_dict()
    moved = {name: value.copy() for name, value in state.items()}
    for k in range(2):
        moved[f"bias_ih_l{k}"], moved[f"bias_hh_l{k}"] = (
            state[f"bias_ih_l{k}"] + state[f"bias_hh_l{k}"],
            0 * state[f"bias_hh_l{k}"],
        )
    other = fastgru.GRU(3, 4, num_layers=2, reset_after=False, backend=backend)
    other.load_state_dict(moved)
    np.testing.assert_allclose(other(x)[0], y, rtol=1e-5, atol=1e-6)  # float32: the sum rounds
