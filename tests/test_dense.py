"""fastgru.Dense and its reference against independent truths: central finite differences,
torch.nn.Linear, and the compiled kernels against the reference; bad inputs."""

import numpy as np
import pytest
from helpers import numeric_grad

import fastgru
from fastgru.reference import heads

TOL = {"float64": 1e-12, "float32": 1e-5}


def test_reference_dense_gradients_match_finite_differences(rng):
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    c = rng.standard_normal((2, 3, 5))  # loss = sum(c * y), so dy = c

    def loss():
        return float((c * heads.dense_forward(x, w, b)).sum())

    dx, dw, db = heads.dense_backward(x, w, c)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-7, atol=1e-8)


def test_reference_dense_matches_torch_linear(rng, torch):
    x, w, b, dy = (rng.standard_normal(s) for s in ((6, 4), (3, 4), (3,), (6, 3)))
    lin = torch.nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    xt = torch.from_numpy(x).requires_grad_()
    y = lin(xt)
    y.backward(torch.from_numpy(dy))
    dx, dw, db = heads.dense_backward(x, w, dy)
    np.testing.assert_allclose(heads.dense_forward(x, w, b), y.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(dw, lin.weight.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(db, lin.bias.grad.numpy(), rtol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 5), (1, 5)])
def test_cpp_dense_matches_reference(rng, dtype, bias, shape):
    cpp = fastgru.Dense(5, 3, bias=bias, dtype=dtype, seed=1)
    ref = fastgru.Dense(5, 3, bias=bias, dtype=dtype, seed=1, backend="numpy")
    assert np.array_equal(cpp.params, ref.params)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape[:-1] + (3,))
    y_cpp, y_ref = cpp(x), ref(x)
    assert y_cpp.dtype == np.dtype(dtype) and y_cpp.shape == shape[:-1] + (3,)
    np.testing.assert_allclose(y_cpp, y_ref, rtol=TOL[dtype], atol=TOL[dtype])
    for _ in range(2):  # gradients accumulate (+=)
        dx_cpp, dx_ref = cpp.backward(dy), ref.backward(dy)
    np.testing.assert_allclose(dx_cpp, dx_ref, rtol=TOL[dtype], atol=TOL[dtype])
    for key, g in ref.grads().items():
        np.testing.assert_allclose(cpp.grads()[key], g, rtol=TOL[dtype], atol=TOL[dtype] * 10)
    assert cpp.backward(dy, need_dx=False) is None


def test_dense_bias_gradient_is_deterministic_across_thread_counts(rng, restore_threads):
    x, dy = rng.standard_normal((257, 64)), rng.standard_normal((257, 40))
    grads = []
    for threads in (1, 2, 3):
        fastgru.set_num_threads(threads)
        layer = fastgru.Dense(64, 40, dtype="float64", seed=0)
        layer(x)
        layer.backward(dy)
        grads.append(layer.grad.copy())
    assert all(np.array_equal(grads[0], g) for g in grads[1:])


def test_dense_layout_init_and_buffers():
    layer = fastgru.Dense(16, 3, seed=0)
    sd = layer.state_dict()
    assert list(sd) == ["weight", "bias"] and sd["weight"].shape == (3, 16) and sd["bias"].shape == (3,)
    assert np.shares_memory(sd["weight"], layer.params) and np.shares_memory(layer.grads()["bias"], layer.grad)
    assert np.abs(layer.params).max() <= 0.25  # torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in))
    assert np.array_equal(layer.params, fastgru.Dense(16, 3, seed=0).params)
    params, grad = np.zeros(60, np.float32), np.ones(60, np.float32)
    inside = fastgru.Dense(16, 3, buffers=(params[9:], grad[9:]), seed=0)
    assert np.array_equal(params[9:], inside.params) and not params[:9].any() and not grad[9:].any()
    with pytest.raises(ValueError, match="buffers"):
        fastgru.Dense(16, 3, buffers=(params, grad))


def test_dense_bad_inputs():
    layer = fastgru.Dense(4, 2)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., in_features\)"):
        layer(np.zeros((3, 5)))
    with pytest.raises(RuntimeError, match="forward"):
        fastgru.Dense(4, 2).backward(np.zeros((3, 2)))
    layer(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="in_features"):
        fastgru.Dense(4.0, 2)
    with pytest.raises(ValueError, match="backend"):
        fastgru.Dense(4, 2, backend="torch")
    before = layer.params.copy()
    with pytest.raises(ValueError, match=r"state_dict\['bias'\]"):
        layer.load_state_dict({"weight": np.zeros((2, 4)), "bias": np.zeros(3)})
    assert np.array_equal(before, layer.params)


def test_core_dense_kernels_check_their_buffers():
    from fastgru import _core

    w = np.zeros((2, 4), np.float32)
    x, dy = np.zeros((3, 4), np.float32), np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="grad_weight"):
        _core.dense_backward_float32(x, w, dy, np.zeros((2, 4), np.float64), None, True)
    with pytest.raises(ValueError, match="grad_bias"):
        _core.dense_backward_float32(x, w, dy, np.zeros((2, 4), np.float32), np.zeros(3, np.float32), True)
    with pytest.raises(ValueError, match="x"):
        _core.dense_forward_float32(np.zeros((3, 5), np.float32), w, None)


def test_dense_names_x_for_a_ragged_list():
    with pytest.raises(TypeError, match="x: expected an array of real numbers"):
        fastgru.Dense(3, 2)([[1, 2, 3], [1, 2]])
