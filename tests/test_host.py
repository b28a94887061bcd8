"""fastgru._host (the core on batch-major NumPy arrays, for TensorFlow's numpy_function) against
the NumPy reference, including workspaces reused from one training forward to the next."""

import numpy as np

from fastgru import _core, _host
from fastgru.reference import gru as reference

ATOL = 2e-5


def reference_grads(params_flat, config, x, h0, lengths, dy, dh_n):
    """(y, h_n, dx, dh0, grad) of the reference, batch-major as _host takes them."""
    layout = _core.gru_param_layout(config)
    params = {name: params_flat[offset : offset + int(np.prod(shape))].reshape(shape) for name, offset, shape in layout}
    kwargs = {"num_layers": config.num_layers, "bidirectional": config.bidirectional, "reset_after": config.reset_after}
    y, h_n, cache = reference.gru_forward(params, np.swapaxes(x, 0, 1), h0, lengths, **kwargs)
    dx, dh0, grads = reference.gru_backward(params, cache, np.swapaxes(dy, 0, 1), dh_n, **kwargs)
    grad = np.concatenate([grads[name].ravel() for name, _, _ in layout])
    return np.swapaxes(y, 0, 1), h_n, np.swapaxes(dx, 0, 1), dh0, grad


def test_training_forwards_reuse_freed_workspaces(rng):
    """Three training forwards of one shape, their backwards interleaved: the third forward takes
    the workspace that the first one's backward freed, and every result equals the reference."""
    config = _host.gru_config(3, 5, 2, True, True, True)
    B, T = 4, 6
    params = rng.uniform(-0.5, 0.5, _core.gru_param_count(config)).astype(np.float32)
    lengths = np.array([6, 3, 6, 1], np.int32)

    def case():
        x = rng.standard_normal((B, T, 3)).astype(np.float32)
        h0 = rng.standard_normal((4, B, 5)).astype(np.float32)
        dy = rng.standard_normal((B, T, 10)).astype(np.float32)
        dh_n = rng.standard_normal((4, B, 5)).astype(np.float32)
        return x, h0, dy, dh_n

    cases = [case() for _ in range(3)]
    expected = [reference_grads(params, config, x, h0, lengths, dy, dh_n) for x, h0, dy, dh_n in cases]

    def check(i, forward, backward):
        for got, want, what in zip(forward + backward, expected[i], ("y", "h_n", "dx", "dh0", "grad")):
            np.testing.assert_allclose(got, want, atol=ATOL, err_msg=f"case {i}: {what}")

    first = _host.forward_train(config, params, cases[0][0], cases[0][1], lengths)
    second = _host.forward_train(config, params, cases[1][0], cases[1][1], lengths)
    freed = _host._workspaces._kept[int(first[2])]
    check(0, first[:2], _host.backward(config, first[2], params, cases[0][0], cases[0][1], lengths, *cases[0][2:]))
    third = _host.forward_train(config, params, cases[2][0], cases[2][1], lengths)
    assert np.shares_memory(_host._workspaces._kept[int(third[2])], freed), "the freed workspace was not reused"
    check(2, third[:2], _host.backward(config, third[2], params, cases[2][0], cases[2][1], lengths, *cases[2][2:]))
    check(1, second[:2], _host.backward(config, second[2], params, cases[1][0], cases[1][1], lengths, *cases[1][2:]))


def test_free_list_is_bounded():
    workspaces = _host._Workspaces()
    blocks = [workspaces.new(n, np.dtype(np.float32)) for n in (10, 20, 30, 40)]
    for block in blocks:
        workspaces.release(block)
    assert len(workspaces._free) == workspaces.FREE_CAPACITY
    assert sorted(b.nbytes for b in workspaces._free) == [120, 160]  # the largest kept
    reused = workspaces.new(25, np.dtype(np.float64))  # 200 bytes: fits neither, so a new block
    assert reused.nbytes == 200 and len(workspaces._free) == 2
    small = workspaces.new(30, np.dtype(np.float32))  # fits the 120-byte block exactly
    assert small.shape == (30,) and len(workspaces._free) == 1
