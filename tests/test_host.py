"""fastgru._host (the core on batch-major NumPy arrays, for TensorFlow's numpy_function) against
the NumPy reference, including workspaces reused from one training forward to the next."""

import numpy as np
import pytest

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
    the workspace that the first one's backward freed (the core's store: kept_workspaces.h), and
    every result equals the reference."""
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

    def backward(i, token):
        return _host.backward(config, token, params, cases[i][0], cases[i][1], lengths, *cases[i][2:])

    kept, free, again = _core.kept_workspace_counts()
    first = _host.forward_train(config, params, cases[0][0], cases[0][1], lengths)
    second = _host.forward_train(config, params, cases[1][0], cases[1][1], lengths)
    assert _core.kept_workspace_counts()[0] == kept + 2
    check(0, first[:2], backward(0, first[2]))
    assert _core.kept_workspace_counts()[:2] == (kept + 1, max(free, 1))
    third = _host.forward_train(config, params, cases[2][0], cases[2][1], lengths)
    assert _core.kept_workspace_counts()[:2] == (kept + 2, max(free, 1) - 1), "the freed workspace was not reused"
    check(2, third[:2], backward(2, third[2]))
    check(1, second[:2], backward(1, second[2]))
    assert _core.kept_workspace_counts()[0] == kept
    assert _core.kept_workspace_counts()[2] == again, "a backward ran its forward again"


def test_a_smaller_batch_in_a_larger_freed_workspace(rng):
    """An epoch's last, smaller batch takes a larger freed workspace: its backward still finds it
    (no forward again) and equals the reference."""
    config = _host.gru_config(3, 5, 1, False, True, True)
    params = rng.uniform(-0.5, 0.5, _core.gru_param_count(config)).astype(np.float32)
    for B in (6, 2):
        x = rng.standard_normal((B, 4, 3)).astype(np.float32)
        h0 = np.zeros((1, B, 5), np.float32)
        dy = rng.standard_normal((B, 4, 5)).astype(np.float32)
        dh_n = np.zeros((1, B, 5), np.float32)
        lengths = np.full(B, 4, np.int32)
        again = _core.kept_workspace_counts()[2]
        token = _host.forward_train(config, params, x, h0, lengths)[2]
        got = _host.backward(config, token, params, x, h0, lengths, dy, dh_n)
        assert _core.kept_workspace_counts()[2] == again, f"B={B}: the backward ran its forward again"
        for g, want in zip(got, reference_grads(params, config, x, h0, lengths, dy, dh_n)[2:]):
            np.testing.assert_allclose(g, want, atol=ATOL)


def test_a_backward_without_its_workspace_runs_the_forward_again(rng):
    """A second backward of one forward, and a backward of token 0 (TensorFlow's forward without
    a workspace), find no workspace: they run the forward again and give the same gradients."""
    config = _host.gru_config(3, 5, 1, False, True, False)
    B, T = 2, 4
    params = rng.uniform(-0.5, 0.5, _core.gru_param_count(config)).astype(np.float32)
    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    h0 = rng.standard_normal((1, B, 5)).astype(np.float32)
    dy = rng.standard_normal((B, T, 5)).astype(np.float32)
    dh_n = rng.standard_normal((1, B, 5)).astype(np.float32)
    lengths = np.array([4, 2], np.int32)
    expected = reference_grads(params, config, x, h0, lengths, dy, dh_n)[2:]
    token = _host.forward_train(config, params, x, h0, lengths)[2]
    again = _core.kept_workspace_counts()[2]
    for t in (token, token, np.int32(0)):
        for got, want in zip(_host.backward(config, t, params, x, h0, lengths, dy, dh_n), expected):
            np.testing.assert_allclose(got, want, atol=ATOL)
    assert _core.kept_workspace_counts()[2] == again + 2


def test_refused_lengths():
    config = _host.gru_config(3, 5, 1, False, True, True)
    x, h0 = np.zeros((2, 4, 3), np.float32), np.zeros((1, 2, 5), np.float32)
    params = np.zeros(_core.gru_param_count(config), np.float32)
    for lengths, message in (([4, -1], "right-padded"), ([0, 4], "no unmasked step")):
        with pytest.raises(ValueError, match=message):
            _host.forward(config, params, x, h0, np.array(lengths, np.int32))
