"""fastgru.Adam (the C++ fused step) against the NumPy reference adam_step and torch.optim.Adam /
AdamW; bit-identity across thread counts and instruction sets' odd sizes; bad input; a short
GRU + Adam training run against torch's."""

import numpy as np
import pytest

import fastgru
from fastgru.reference import adam_step

RTOL = {"float64": 1e-12, "float32": 1e-6}
HYPER = dict(lr=1e-2, betas=(0.8, 0.95), eps=1e-8)


def assert_close(actual, expected, rtol, what):
    """max |actual - expected| <= rtol * the larger max magnitude of the two."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0)
    scale = max(np.abs(expected).max(initial=0.0), np.abs(actual).max(initial=0.0))
    assert diff <= rtol * scale, f"{what}: max abs error {diff:.3g} > {rtol:g} * max magnitude {scale:.3g}"


def random_grad(rng, size, dtype):
    """Gradients over many scales, some exactly zero, so eps and weight decay matter somewhere."""
    g = rng.standard_normal(size) * 10.0 ** rng.integers(-7, 2, size)
    g[rng.random(size) < 0.05] = 0
    return g.astype(dtype)


class ReferenceAdam:
    """The NumPy reference update with its own moment buffers."""

    def __init__(self, params, *, lr, betas, eps, weight_decay, decoupled_weight_decay, amsgrad):
        self.params = params
        self.m, self.v = np.zeros_like(params), np.zeros_like(params)
        self.vmax = np.zeros_like(params) if amsgrad else None
        self.step_count = 0
        self.options = dict(
            lr=lr,
            beta1=betas[0],
            beta2=betas[1],
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            amsgrad=amsgrad,
        )

    def step(self, grad):
        self.step_count += 1
        adam_step(self.params, grad, self.m, self.v, self.vmax, self.step_count, **self.options)


def torch_optimizer(torch, tensor, *, lr, betas, eps, weight_decay, decoupled_weight_decay, amsgrad):
    cls = torch.optim.AdamW if decoupled_weight_decay else torch.optim.Adam
    return cls([tensor], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, foreach=False)


# ---- against the reference and torch ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
@pytest.mark.parametrize("amsgrad", [False, True], ids=["plain", "amsgrad"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_reference_and_torch(rng, torch, weight_decay, amsgrad, decoupled, dtype):
    layer = fastgru.GRU(4, 8, 2, bidirectional=True, dtype=dtype, seed=0)
    options = dict(HYPER, weight_decay=weight_decay, decoupled_weight_decay=decoupled, amsgrad=amsgrad)
    opt = fastgru.Adam(layer, **options)
    ref = ReferenceAdam(layer.params.copy(), **options)
    tensor = torch.tensor(layer.params.copy(), requires_grad=True)
    topt = torch_optimizer(torch, tensor, **options)
    for _ in range(20):
        grad = random_grad(rng, layer.params.size, dtype)
        layer.grad[...] = grad
        opt.step()
        ref.step(grad.copy())
        tensor.grad = torch.tensor(grad)
        topt.step()
        assert np.array_equal(layer.grad, grad)  # step leaves grad alone
    state = topt.state[tensor]
    assert_close(layer.params, ref.params, RTOL[dtype], "params vs reference")
    assert_close(layer.params, tensor.detach().numpy(), RTOL[dtype], "params vs torch")
    assert_close(opt.exp_avg, state["exp_avg"].numpy(), RTOL[dtype], "exp_avg vs torch")
    assert_close(opt.exp_avg_sq, state["exp_avg_sq"].numpy(), RTOL[dtype], "exp_avg_sq vs torch")
    if amsgrad:
        assert_close(opt.max_exp_avg_sq, state["max_exp_avg_sq"].numpy(), RTOL[dtype], "max_exp_avg_sq")
    assert layer.params.dtype == np.dtype(dtype)
    opt.zero_grad()
    assert not layer.grad.any()


@pytest.mark.parametrize("container", [tuple, list])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adam_on_a_params_grad_pair(rng, dtype, container):
    params = rng.standard_normal(1001).astype(dtype)
    grad = np.zeros_like(params)
    options = dict(HYPER, weight_decay=0.05, decoupled_weight_decay=False, amsgrad=True)
    opt = fastgru.Adam(container((params, grad)), **options)
    ref = ReferenceAdam(params.copy(), **options)
    for _ in range(5):
        grad[...] = random_grad(rng, params.size, dtype)
        opt.step()
        ref.step(grad.copy())
    assert opt.params is params  # updated in place
    assert_close(params, ref.params, RTOL[dtype], "params")
    opt.zero_grad()
    assert not grad.any()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("size", [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 1037])
def test_adam_odd_sizes_every_isa(rng, isa, size, dtype):
    params = rng.standard_normal(size).astype(dtype)
    grad = np.zeros_like(params)
    options = dict(HYPER, weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)
    opt = fastgru.Adam((params, grad), **options)
    ref = ReferenceAdam(params.copy(), **options)
    for _ in range(4):
        grad[...] = random_grad(rng, size, dtype)
        opt.step()
        ref.step(grad.copy())
    assert_close(params, ref.params, RTOL[dtype], "params")


def test_adam_follows_a_numpy_backend_layer(rng):
    cpp = fastgru.GRU(3, 5, dtype="float64", seed=0)
    ref = fastgru.GRU(3, 5, dtype="float64", backend="numpy", seed=0)
    opts = [fastgru.Adam(layer, **HYPER) for layer in (cpp, ref)]
    for _ in range(5):
        grad = random_grad(rng, cpp.params.size, np.float64)
        for layer, opt in zip((cpp, ref), opts):
            layer.grad[...] = grad
            opt.step()
    assert_close(cpp.params, ref.params, RTOL["float64"], "params")


# ---- bit-identical for any thread count ---------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adam_bit_identical_for_any_thread_count(rng, isa, restore_threads, dtype):
    size = 1_000_003
    start = rng.standard_normal(size).astype(dtype)
    grads = [random_grad(rng, size, dtype) for _ in range(3)]
    results = {}
    for n in (1, 2, 3):
        fastgru.set_num_threads(n)
        params, grad = start.copy(), np.zeros_like(start)
        opt = fastgru.Adam((params, grad), **HYPER, weight_decay=0.1, amsgrad=True)
        for g in grads:
            grad[...] = g
            opt.step()
        results[n] = (params, opt.exp_avg, opt.exp_avg_sq, opt.max_exp_avg_sq)
    for n in (2, 3):
        for name, a, b in zip(("params", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"), results[n], results[1]):
            assert np.array_equal(a, b), f"{name}: {n} threads vs 1"


# ---- bad input ----------------------------------------------------------------------------------


def test_adam_bad_buffers():
    p64, p32 = np.zeros(10), np.zeros(10, np.float32)
    cases = [
        ((p32, np.zeros(10)), ValueError, "grad"),  # dtype mismatch
        ((p64, np.zeros(11)), ValueError, "grad"),  # size mismatch
        ((np.zeros(20)[::2], np.zeros(10)), ValueError, "params"),  # non-contiguous
        ((p64, np.zeros(20)[::2]), ValueError, "grad"),
        ((np.zeros((2, 5)), np.zeros((2, 5))), ValueError, "params"),  # not 1-D
        ((np.zeros(10, np.int64), np.zeros(10, np.int64)), TypeError, "params"),
        ((np.zeros(10, np.float16), np.zeros(10, np.float16)), TypeError, "params"),
        (([0.0] * 10, np.zeros(10)), TypeError, "params"),
        ((p64, [0.0] * 10), TypeError, "grad"),
        ((np.broadcast_to(np.zeros(1), 10), np.zeros(10)), ValueError, "params"),  # read-only
        ((p64,), TypeError, "layer_or_buffers"),
        ((p64, p64, p64), TypeError, "layer_or_buffers"),
        (p64, TypeError, "layer_or_buffers"),
        (None, TypeError, "layer_or_buffers"),
    ]
    for buffers, error, name in cases:
        with pytest.raises(error, match=rf"\b{name}\b"):
            fastgru.Adam(buffers)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(lr=-1e-3), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(lr=float("inf")), "lr"),
        (dict(betas=(1.0, 0.999)), "betas"),
        (dict(betas=(0.9, 1.0)), "betas"),
        (dict(betas=(-0.1, 0.999)), "betas"),
        (dict(betas=(0.9, 1.5)), "betas"),
        (dict(betas=(0.9,)), "betas"),
        (dict(betas=0.9), "betas"),
        (dict(betas=("a", 0.9)), "betas"),
        (dict(eps=-1e-8), "eps"),
        (dict(weight_decay=-0.1), "weight_decay"),
    ],
    ids=lambda v: "-".join(f"{k}={v[k]}" for k in v) if isinstance(v, dict) else v,
)
def test_adam_bad_hyperparameters(kwargs, name):
    layer = fastgru.GRU(2, 3, seed=0)
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        fastgru.Adam(layer, **kwargs)


# ---- a training run against torch ---------------------------------------------------------------


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_training_loop_matches_torch(rng, torch, decoupled):
    T, B, I, H, L = 8, 4, 3, 6, 2
    layer = fastgru.GRU(I, H, L, bidirectional=True, batch_first=True, dtype="float64", seed=0)
    gru = torch.nn.GRU(I, H, L, bidirectional=True, batch_first=True, dtype=torch.float64)
    gru.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    options = dict(lr=2e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01, amsgrad=False)
    opt = fastgru.Adam(layer, decoupled_weight_decay=decoupled, **options)
    topt = (torch.optim.AdamW if decoupled else torch.optim.Adam)(gru.parameters(), foreach=False, **options)
    x = rng.standard_normal((B, T, I))
    target = np.tanh(rng.standard_normal((B, T, 2 * H)))
    lengths = np.array([8, 5, 2, 7])
    valid = (np.arange(T)[None, :] < lengths[:, None])[..., None]
    target = target * valid
    ours, theirs = [], []
    for _ in range(10):
        opt.zero_grad()
        y, _ = layer(x, lengths=lengths)
        ours.append(np.mean((y - target) ** 2))
        layer.backward(2 * (y - target) / y.size)
        opt.step()

        topt.zero_grad()
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            torch.tensor(x), torch.tensor(lengths), batch_first=True, enforce_sorted=False
        )
        out, _ = gru(packed)
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        loss = ((yt - torch.tensor(target)) ** 2).mean()
        theirs.append(loss.item())
        loss.backward()
        topt.step()
    assert ours[-1] < 0.9 * ours[0]  # it is learning
    assert_close(ours, theirs, 1e-10, "losses")
    for name, p in gru.named_parameters():
        assert_close(layer.state_dict()[name], p.detach().numpy(), 1e-9, name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_grad_scale_is_clipping_folded_into_the_step(rng, torch, dtype, decoupled):
    """step(grad_scale=s) is torch's clip_grad_norm_ (which scales the gradient by s) then step;
    grad itself is left as it is."""
    layer = fastgru.GRU(4, 8, 2, dtype=dtype, seed=0)
    options = dict(HYPER, weight_decay=0.1, decoupled_weight_decay=decoupled, amsgrad=False)
    opt = fastgru.Adam(layer, **options)
    tensor = torch.tensor(layer.params.astype(np.float64))
    topt = torch_optimizer(torch, tensor, **options)
    for _ in range(4):
        grad = random_grad(rng, layer.params.size, dtype)
        layer.grad[:] = grad
        norm = float(np.linalg.norm(grad.astype(np.float64)))
        opt.step(grad_scale=min(1.0, 0.5 / (norm + 1e-6)))  # torch's clipping factor
        assert np.array_equal(layer.grad, grad)
        tensor.grad = torch.tensor(grad.astype(np.float64))
        torch.nn.utils.clip_grad_norm_([tensor], 0.5)
        topt.step()
        assert_close(layer.params, tensor.detach().numpy(), 1e-6 if dtype == "float32" else 1e-9, "params")


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_a_step_that_raises_is_not_counted_and_errors_match_across_backends(backend):
    layer = fastgru.GRU(3, 4, backend=backend)
    opt = fastgru.Adam(layer)
    for bad, error in (("x", TypeError), (None, TypeError), (float("nan"), ValueError), (-1.0, ValueError)):
        with pytest.raises(error, match="grad_scale"):
            opt.step(grad_scale=bad)
    assert opt.step_count == 0
    opt.step()
    assert opt.step_count == 1


@pytest.mark.parametrize(
    "edit, error",
    [
        (dict(step=-1), ValueError),
        (dict(step=2.7), TypeError),
        (dict(step=True), TypeError),
        (dict(exp_avg=np.ones(5, bool)), TypeError),
        (dict(exp_avg=np.ones(5, complex)), TypeError),
        (dict(exp_avg=np.array(["a"] * 5)), TypeError),
        (dict(exp_avg_sq=-np.ones(5)), ValueError),
        (dict(exp_avg=np.full(5, np.nan)), ValueError),
        (dict(exp_avg=np.ones(4)), ValueError),
    ],
)
def test_load_state_dict_checks_everything_before_changing_anything(edit, error):
    params, grad = np.ones(5, np.float32), np.ones(5, np.float32)
    opt = fastgru.Adam((params, grad))
    opt.step()
    before = opt.state_dict()
    with pytest.raises(error):
        opt.load_state_dict({**before, **edit})
    after = opt.state_dict()
    assert after["step"] == before["step"] == 1
    assert all(np.array_equal(after[k], before[k]) for k in ("exp_avg", "exp_avg_sq"))


def test_buffers_that_share_memory_are_refused():
    b = np.zeros(fastgru.GRU.param_count(3, 4), np.float32)
    wide = np.zeros(2 * b.size, np.float32)
    for buffers in ((b, b), (wide[: b.size], wide[1 : b.size + 1])):
        with pytest.raises(ValueError, match="shares memory"):
            fastgru.GRU(3, 4, buffers=buffers)
        with pytest.raises(ValueError, match="shares memory"):
            fastgru.Adam(buffers)
    with pytest.raises(ValueError, match="pair"):
        fastgru.GRU(3, 4, buffers=(b, np.zeros_like(b), np.zeros_like(b)))
    fastgru.GRU(3, 4, buffers=(wide[: b.size], wide[b.size :]))  # side by side in one array: fine


# ---- the configuration and state objects the compiled steps take --------------------------------


def test_config_and_state_are_the_objects_every_step_takes(rng):
    """fastgru.Adam holds an AdamConfig and an AdamState; the layer-level step and the compiled
    training step read and count the same ones, and a changed lr applies from the next step on."""
    model = fastgru.GRUModel(3, 4, 2, seed=0)
    opt = fastgru.Adam(model, lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)
    config, state = opt.config, opt.state
    assert (config.lr, config.beta1, config.beta2, config.eps, config.weight_decay) == (1e-2, 0.8, 0.95, 1e-8, 0.1)
    assert config.decoupled_weight_decay and config.amsgrad
    assert opt.exp_avg is state.exp_avg and opt.max_exp_avg_sq is state.max_exp_avg_sq
    x, y = rng.standard_normal((2, 5, 3)).astype(np.float32), rng.standard_normal((2, 5, 2)).astype(np.float32)
    assert model.train_step(x, y, opt).applied
    assert state.step == opt.step_count == 1 and state.exp_avg.any()
    ref = ReferenceAdam(
        model.params.copy(),
        lr=0.5,
        betas=(0.8, 0.95),
        eps=1e-8,
        weight_decay=0.1,
        decoupled_weight_decay=True,
        amsgrad=True,
    )
    ref.m[...], ref.v[...], ref.vmax[...], ref.step_count = state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq, 1
    opt.lr = 0.5
    assert opt.config.lr == 0.5 and opt.config.amsgrad and opt.state is state
    grad = random_grad(rng, model.params.size, np.float32)
    model.grad[...] = grad
    opt.step()
    ref.step(grad)
    assert state.step == 2
    assert_close(model.params, ref.params, RTOL["float32"], "params after an lr change")
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert opt.config.lr == 0.5


def test_config_and_state_pickle_and_deep_copy():
    import copy
    import pickle

    config = fastgru._core.AdamConfig(
        lr=0.1, beta1=0.5, beta2=0.75, eps=1e-6, weight_decay=0.25, decoupled_weight_decay=True, amsgrad=True
    )
    moments = [np.arange(4, dtype=np.float64) * k for k in (1, 2, 3)]
    state = fastgru._core.AdamState(*moments, step=7)
    fields = ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled_weight_decay", "amsgrad")
    for copied in (pickle.loads(pickle.dumps(config)), copy.deepcopy(config)):
        assert [getattr(copied, f) for f in fields] == [0.1, 0.5, 0.75, 1e-6, 0.25, True, True]
    for copied in (pickle.loads(pickle.dumps(state)), copy.deepcopy(state)):
        assert copied.step == 7
        for name, original in zip(("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), moments):
            moment = getattr(copied, name)
            assert moment is not original and np.array_equal(moment, original) and moment.flags.writeable
    plain = pickle.loads(pickle.dumps(fastgru._core.AdamState(np.zeros(2, np.float32), np.zeros(2, np.float32))))
    assert plain.max_exp_avg_sq is None and plain.step == 0 and plain.exp_avg.dtype == np.float32


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(lr=-1.0), ValueError, "lr"),
        (dict(lr=float("inf")), ValueError, "lr"),
        (dict(eps=float("nan")), ValueError, "eps"),
        (dict(weight_decay=-0.5), ValueError, "weight_decay"),
        (dict(beta1=1.0), ValueError, "beta1"),
        (dict(beta2=-0.1), ValueError, "beta2"),
        (dict(lr="x"), TypeError, "incompatible"),
    ],
)
def test_config_refuses_bad_values(options, error, match):
    with pytest.raises(error, match=match):
        fastgru._core.AdamConfig(**options)


@pytest.mark.parametrize(
    "moments, step, error, match",
    [
        ((np.zeros(3), np.zeros(4)), 0, ValueError, "exp_avg_sq"),
        ((np.zeros(3), np.zeros(3, np.float32)), 0, ValueError, "exp_avg_sq"),
        ((np.zeros(3), np.zeros(3), np.zeros(2)), 0, ValueError, "max_exp_avg_sq"),
        ((np.zeros(3, np.int64), np.zeros(3)), 0, TypeError, "exp_avg"),
        ((np.zeros((3, 1)), np.zeros((3, 1))), 0, ValueError, "1-D"),
        ((np.zeros(6)[::2], np.zeros(3)), 0, ValueError, "contiguous"),
        ((np.zeros(3), np.zeros(3)), -1, ValueError, "step"),
    ],
)
def test_state_refuses_bad_moments(moments, step, error, match):
    with pytest.raises(error, match=match):
        fastgru._core.AdamState(*moments, step=step)


def test_state_moments_must_be_writable_and_fit_the_step():
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        fastgru._core.AdamState(frozen, np.zeros(3))
    params, grad = np.ones(3), np.ones(3)
    small = fastgru._core.AdamState(np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="exp_avg"):
        fastgru._core.adam_step_float64(fastgru._core.AdamConfig(), small, params, grad)
    plain = fastgru._core.AdamState(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="max_exp_avg_sq: required with amsgrad"):
        fastgru._core.adam_step_float64(fastgru._core.AdamConfig(amsgrad=True), plain, params, grad)
    assert plain.step == 0 and np.array_equal(params, np.ones(3))
    with pytest.raises(ValueError, match="step"):
        plain.step = -2
