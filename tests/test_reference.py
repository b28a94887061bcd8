"""The NumPy reference (fastgru.reference) against torch.nn.GRU / torch.optim.Adam,
central finite differences, and a hand-written per-element loop."""

import numpy as np
import pytest
from helpers import gru_param_shapes, numeric_grad

from fastgru.reference.adam import adam_step
from fastgru.reference.gru import gru_backward, gru_forward


def make_params(rng, input_size, hidden_size, num_layers, bidirectional, bias, dtype=np.float64):
    scale = 1 / np.sqrt(hidden_size)
    shapes = gru_param_shapes(input_size, hidden_size, num_layers, bidirectional, bias)
    return {name: rng.uniform(-scale, scale, shape).astype(dtype) for name, shape in shapes.items()}


def make_case(seed, T, B, I, H, num_layers, bidirectional, bias, unequal):
    """Random params, x, h0, lengths, dy, dh_n (float64). dy is random at padded steps too."""
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    params = make_params(rng, I, H, num_layers, bidirectional, bias)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((num_layers * D, B, H))
    lengths = np.full(B, T)
    if unequal:
        lengths = rng.integers(1, T + 1, B)
        lengths[rng.integers(B)] = T
    dy = rng.standard_normal((T, B, D * H))
    dh_n = rng.standard_normal((num_layers * D, B, H))
    return params, x, h0, lengths, dy, dh_n


# ---- parity with torch.nn.GRU (reset_after=True) ----


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("unequal", [False, True])
def test_matches_torch(num_layers, bidirectional, bias, unequal):
    torch = pytest.importorskip("torch")
    T, B, I, H = 6, 4, 3, 5
    params, x, h0, lengths, dy, dh_n = make_case(0, T, B, I, H, num_layers, bidirectional, bias, unequal)
    opts = dict(num_layers=num_layers, bidirectional=bidirectional, reset_after=True)

    y, h_n, cache = gru_forward(params, x, h0, lengths, **opts)
    dx, dh0, grads = gru_backward(params, cache, dy, dh_n, **opts)

    gru = torch.nn.GRU(I, H, num_layers, bias=bias, bidirectional=bidirectional, dtype=torch.float64)
    gru.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    if unequal:
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths), enforce_sorted=False)
        out, h_nt = gru(packed, h0t)
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    else:
        yt, h_nt = gru(xt, h0t)
    ((yt * torch.from_numpy(dy)).sum() + (h_nt * torch.from_numpy(dh_n)).sum()).backward()

    tol = dict(rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, h_nt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dh0, h0t.grad.numpy(), **tol)
    assert grads.keys() == params.keys()
    for name, p in gru.named_parameters():
        assert grads[name].shape == params[name].shape
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **tol, err_msg=name)


# ---- central finite differences (both variants, with dropout masks) ----


def check_finite_differences(params, x, h0, lengths, dy, dh_n, opts, masks=None, eps=1e-6):
    def loss():
        y, h_n, _ = gru_forward(params, x, h0, lengths, dropout_masks=masks, keep_cache=False, **opts)
        return np.sum(y * dy) + np.sum(h_n * dh_n)

    _, _, cache = gru_forward(params, x, h0, lengths, dropout_masks=masks, **opts)
    dx, dh0, grads = gru_backward(params, cache, dy, dh_n, **opts)
    analytic = {"x": (x, dx), "h0": (h0, dh0)} | {n: (params[n], grads[n]) for n in params}
    assert grads.keys() == params.keys()
    for name, (value, grad) in analytic.items():
        np.testing.assert_allclose(grad, numeric_grad(loss, value, eps), rtol=0, atol=1e-7, err_msg=name)


FD_CONFIGS = [  # (num_layers, bidirectional, bias, unequal)
    (1, False, True, False),
    (1, True, False, True),
    (2, True, True, True),
    (2, False, True, True),
]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("num_layers,bidirectional,bias,unequal", FD_CONFIGS)
def test_finite_differences(reset_after, num_layers, bidirectional, bias, unequal):
    params, x, h0, lengths, dy, dh_n = make_case(1, 4, 3, 2, 3, num_layers, bidirectional, bias, unequal)
    opts = dict(num_layers=num_layers, bidirectional=bidirectional, reset_after=reset_after)
    check_finite_differences(params, x, h0, lengths, dy, dh_n, opts)


@pytest.mark.parametrize("reset_after", [True, False])
def test_dropout_masks_finite_differences(reset_after):
    num_layers, bidirectional = 3, True
    T, B, H = 4, 3, 2
    params, x, h0, lengths, dy, dh_n = make_case(2, T, B, 2, H, num_layers, bidirectional, True, True)
    rng = np.random.default_rng(3)
    masks = [rng.integers(0, 2, (T, B, 2 * H)) / 0.5 for _ in range(num_layers - 1)]
    opts = dict(num_layers=num_layers, bidirectional=bidirectional, reset_after=reset_after)
    check_finite_differences(params, x, h0, lengths, dy, dh_n, opts, masks=masks)

    # The masks really act: a layer whose input is all dropped sees only its biases.
    zero_masks = [np.zeros((T, B, 2 * H)) for _ in range(num_layers - 1)]
    y_dropped, _, _ = gru_forward(params, x, h0, lengths, dropout_masks=zero_masks, **opts)
    y_other_x, _, _ = gru_forward(params, x + 1, h0, lengths, dropout_masks=zero_masks, **opts)
    np.testing.assert_array_equal(y_dropped, y_other_x)


# ---- reset_after=False against an independent per-element loop ----


def test_reset_before_matches_elementwise_loop():
    T, B, I, H = 3, 2, 2, 3
    params, x, h0, _, _, _ = make_case(4, T, B, I, H, 1, False, True, False)
    lengths = np.array([3, 2])
    W, U = params["weight_ih_l0"], params["weight_hh_l0"]
    bw, bu = params["bias_ih_l0"], params["bias_hh_l0"]

    def sig(a):
        return 1 / (1 + np.exp(-a))

    expected = np.zeros((T, B, H))
    expected_h_n = np.zeros((1, B, H))
    for b in range(B):
        h = list(h0[0, b])
        for t in range(lengths[b]):
            r = [
                sig(sum(W[j, i] * x[t, b, i] for i in range(I)) + bw[j] + sum(U[j, i] * h[i] for i in range(H)) + bu[j])
                for j in range(H)
            ]
            z = [
                sig(
                    sum(W[H + j, i] * x[t, b, i] for i in range(I))
                    + bw[H + j]
                    + sum(U[H + j, i] * h[i] for i in range(H))
                    + bu[H + j]
                )
                for j in range(H)
            ]
            n = [
                np.tanh(
                    sum(W[2 * H + j, i] * x[t, b, i] for i in range(I))
                    + bw[2 * H + j]
                    + sum(U[2 * H + j, i] * r[i] * h[i] for i in range(H))
                    + bu[2 * H + j]
                )
                for j in range(H)
            ]
            h = [(1 - z[j]) * n[j] + z[j] * h[j] for j in range(H)]
            expected[t, b] = h
        expected_h_n[0, b] = h

    y, h_n, cache = gru_forward(
        params, x, h0, lengths, num_layers=1, bidirectional=False, reset_after=False, keep_cache=False
    )
    assert cache is None
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(h_n, expected_h_n, rtol=0, atol=1e-14)


# ---- dtype: float32 in, float32 computed and returned ----


def test_float32_stays_float32():
    params, x, h0, lengths, dy, dh_n = make_case(5, 4, 3, 2, 3, 2, True, True, True)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}

    def f32(a):
        return a.astype(np.float32)

    opts = dict(num_layers=2, bidirectional=True, reset_after=True)
    y, h_n, cache = gru_forward(p32, f32(x), f32(h0), lengths, **opts)
    dx, dh0, grads = gru_backward(p32, cache, f32(dy), f32(dh_n), **opts)
    for a in [y, h_n, dx, dh0, *grads.values()]:
        assert a.dtype == np.float32
    y64, _, _ = gru_forward(params, x, h0, lengths, **opts)
    np.testing.assert_allclose(y, y64, rtol=0, atol=1e-5)


# ---- Adam / AdamW against torch.optim ----


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_torch(decoupled, weight_decay, amsgrad):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    hyper = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay, amsgrad=amsgrad)
    params = rng.standard_normal(50)
    param_t = torch.tensor(params, requires_grad=True)
    opt_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = opt_cls([param_t], foreach=False, **hyper)
    exp_avg, exp_avg_sq, max_exp_avg_sq = np.zeros(50), np.zeros(50), np.zeros(50)
    for step in range(1, 11):
        grad = rng.standard_normal(50) * (0.1 if step % 3 else 2.0)  # uneven scales exercise amsgrad's max
        param_t.grad = torch.tensor(grad)
        opt.step()
        adam_step(
            params,
            grad,
            exp_avg,
            exp_avg_sq,
            max_exp_avg_sq if amsgrad else None,
            step,
            lr=hyper["lr"],
            beta1=0.9,
            beta2=0.99,
            eps=1e-8,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled,
            amsgrad=amsgrad,
        )
        np.testing.assert_allclose(params, param_t.detach().numpy(), rtol=0, atol=1e-12)
    state = opt.state[param_t]
    np.testing.assert_allclose(exp_avg, state["exp_avg"].numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(exp_avg_sq, state["exp_avg_sq"].numpy(), rtol=0, atol=1e-12)
