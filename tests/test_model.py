"""fastgru.GRUModel: one flat buffer for GRU + head; training steps (GRU + Linear + loss + Adam)
equal to the same model built in PyTorch in float64; finite differences; backends agree."""

import math
import pickle

import numpy as np
import pytest

import fastgru
from fastgru import losses

T, B, F, H, O = 6, 4, 3, 5, 3
LENGTHS = np.array([6, 2, 5, 1])


def make_target(rng, name, return_sequences, outputs=O):
    rows = (B, T) if return_sequences else (B,)
    if name == "cross_entropy":
        return rng.integers(0, outputs, rows)
    if name == "binary_crossentropy":
        return (rng.uniform(size=rows + (outputs,)) < 0.5).astype(np.float64)
    return rng.standard_normal(rows + (outputs,))


def step_mask(return_sequences):
    return (np.arange(T)[None, :] < LENGTHS[:, None]) if return_sequences else None


def torch_model(torch, model):
    """The same network in torch (float64, batch_first), with model's weights."""
    g = model.gru
    gru = torch.nn.GRU(
        g.input_size, g.hidden_size, g.num_layers, bidirectional=g.bidirectional, batch_first=True, dtype=torch.float64
    )
    head = torch.nn.Linear(g.num_directions * g.hidden_size, model.head.out_features, dtype=torch.float64)
    modules = {"gru": gru, "head": head}
    with torch.no_grad():
        for name, value in model.state_dict().items():
            prefix, key = name.split(".", 1)
            getattr(modules[prefix], key).copy_(torch.from_numpy(value.copy()))
    return gru, head


def torch_forward(torch, gru, head, x, return_sequences):
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False
    )
    out, h_n = gru(packed)
    if return_sequences:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        return head(y)
    features = torch.cat([h_n[-2], h_n[-1]], 1) if gru.bidirectional else h_n[-1]
    return head(features)


def torch_loss(torch, name, logits, target, mask):
    t = torch.from_numpy(target)
    if mask is not None:
        m = torch.from_numpy(mask)
        logits, t = logits[m], t[m]
    fn = {
        "mse": torch.nn.functional.mse_loss,
        "mae": torch.nn.functional.l1_loss,
        "binary_crossentropy": torch.nn.functional.binary_cross_entropy_with_logits,
        "cross_entropy": lambda a, b: torch.nn.functional.cross_entropy(a.reshape(-1, a.shape[-1]), b.reshape(-1)),
    }
    return fn[name](logits, t)


CASES = [(name, rs, False, 1, None) for name in losses.LOSSES for rs in (True, False)] + [
    ("cross_entropy", True, True, 2, None),
    ("mse", False, True, 2, None),
    ("mse", True, False, 1, 0.05),
]


@pytest.mark.parametrize("name, return_sequences, bidirectional, num_layers, clip", CASES)
def test_training_steps_match_torch(rng, torch, name, return_sequences, bidirectional, num_layers, clip):
    """Three steps of GRU + Linear + loss (+ clipping) + Adam from the same weights: same losses,
    gradients and parameters as torch to float64 precision, with unequal lengths."""
    model = fastgru.GRUModel(
        F,
        H,
        O,
        num_layers=num_layers,
        bidirectional=bidirectional,
        return_sequences=return_sequences,
        dtype="float64",
        seed=3,
    )
    gru, head = torch_model(torch, model)
    torch_params = list(gru.parameters()) + list(head.parameters())
    opt = fastgru.Adam(model, lr=0.01)
    topt = torch.optim.Adam(torch_params, lr=0.01)
    x = rng.standard_normal((B, T, F))
    target, mask = make_target(rng, name, return_sequences), step_mask(return_sequences)
    for step in range(3):
        model.zero_grad()
        out = model(x, LENGTHS)
        value, dout = losses.compute(name, out, target, mask)
        model.backward(dout)
        topt.zero_grad()
        expected = torch_loss(torch, name, torch_forward(torch, gru, head, x, return_sequences), target, mask)
        expected.backward()
        if clip is not None:
            model.clip_grad_norm(clip)
            torch.nn.utils.clip_grad_norm_(torch_params, clip)
        assert value == pytest.approx(expected.item(), rel=1e-12), f"loss at step {step}"
        expected_grad = np.concatenate([p.grad.numpy().ravel() for p in torch_params])
        np.testing.assert_allclose(model.grad, expected_grad, rtol=1e-9, atol=1e-12)
        opt.step()
        topt.step()
    expected_params = np.concatenate([p.detach().numpy().ravel() for p in torch_params])
    np.testing.assert_allclose(model.params, expected_params, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_gradients_match_finite_differences(rng, return_sequences):
    model = fastgru.GRUModel(
        F,
        H,
        O,
        num_layers=2,
        bidirectional=True,
        return_sequences=return_sequences,
        dtype="float64",
        backend="numpy",
        seed=0,
    )
    x, target = rng.standard_normal((B, T, F)), make_target(rng, "mse", return_sequences)
    mask = step_mask(return_sequences)

    def loss():
        return losses.compute("mse", model(x, LENGTHS), target, mask, backend="numpy")[0]

    model.zero_grad()
    model.backward(losses.compute("mse", model(x, LENGTHS), target, mask, backend="numpy")[1])
    eps = 1e-6
    for i in rng.choice(model.params.size, 25, replace=False):
        old = model.params[i]
        model.params[i] = old + eps
        up = loss()
        model.params[i] = old - eps
        down = loss()
        model.params[i] = old
        assert model.grad[i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backends_agree_with_dropout(rng, dtype):
    """The same seed gives the same weights and dropout masks on both backends."""
    opts = dict(num_layers=2, return_sequences=True, dropout=0.3, dtype=dtype, seed=7)
    cpp, ref = fastgru.GRUModel(F, H, O, **opts), fastgru.GRUModel(F, H, O, backend="numpy", **opts)
    assert np.array_equal(cpp.params, ref.params)
    x, dout = rng.standard_normal((B, T, F)), rng.standard_normal((B, T, O))
    tol = 1e-10 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(cpp(x, LENGTHS), ref(x, LENGTHS), rtol=tol, atol=tol)
    cpp.backward(dout)
    ref.backward(dout)
    np.testing.assert_allclose(cpp.grad, ref.grad, rtol=tol, atol=tol)


def test_one_flat_buffer_and_names():
    model = fastgru.GRUModel(F, H, O, num_layers=2, bidirectional=True, seed=0)
    sd, grads = model.state_dict(), model.grads()
    assert list(sd)[:4] == ["gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0"]
    assert list(sd)[-2:] == ["head.weight", "head.bias"] and sd["head.weight"].shape == (O, 2 * H)
    assert sum(v.size for v in sd.values()) == model.params.size
    assert all(np.shares_memory(v, model.params) for v in sd.values())
    assert all(np.shares_memory(v, model.grad) for v in grads.values())
    before = model.params.copy()
    model.grad[:] = 1.0
    fastgru.Adam(model, lr=0.1).step()  # one fused step moves every parameter
    assert np.all(model.params < before)


def test_last_state_is_the_last_valid_state(rng):
    model = fastgru.GRUModel(F, H, O, bidirectional=True, return_sequences=False, seed=0).eval()
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    out = model(x, LENGTHS)
    _, h_n = model.gru(x.transpose(1, 0, 2), lengths=LENGTHS)
    w, b = model.head.state_dict().values()
    np.testing.assert_allclose(out, np.concatenate([h_n[0], h_n[1]], 1) @ w.T + b, rtol=1e-5, atol=1e-6)
    # Padding after a sequence's end changes nothing.
    x2 = x.copy()
    x2[1, LENGTHS[1] :] = 100.0
    assert np.array_equal(model(x2, LENGTHS), out)
    assert np.array_equal(model(x.transpose(1, 0, 2), LENGTHS, time_major=True), out)


def test_dropout_only_in_training(rng):
    model = fastgru.GRUModel(F, H, O, dropout=0.5, seed=0)
    x = rng.standard_normal((B, T, F))
    assert not np.array_equal(model(x), model(x))
    model.eval()
    assert np.array_equal(model(x), model(x))
    with pytest.raises(RuntimeError, match="training-mode forward"):
        model.backward(np.zeros((B, T, O)))


def test_pickle_round_trip(rng):
    model = fastgru.GRUModel(F, H, O, num_layers=2, return_sequences=False, seed=0).eval()
    x = rng.standard_normal((B, T, F))
    copy = pickle.loads(pickle.dumps(model))
    assert copy.config == model.config and np.array_equal(copy(x), model(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="output_size"):
        fastgru.GRUModel(F, H, 0)
    with pytest.raises(ValueError, match="backend"):
        fastgru.GRUModel(F, H, O, backend="jax")
    model = fastgru.GRUModel(F, H, O)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, T, F\) with F = 3"):
        model(np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="lengths"):
        model(np.zeros((2, 4, 3)), lengths=[5, 1])
    before = model.params.copy()
    with pytest.raises(ValueError, match="missing keys"):
        model.load_state_dict({"head.weight": np.zeros((O, H))})
    assert np.array_equal(model.params, before)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_bad_masks_and_output_gradients_name_their_argument(rng, backend):
    model = fastgru.GRUModel(F, H, O, num_layers=2, dropout=0.3, return_sequences=True, backend=backend)
    x, target = rng.standard_normal((2, 4, F)), rng.standard_normal((2, 4, O))
    with pytest.raises(ValueError, match="head_dropout: expected shape"):
        model.compute_gradients(x, target, dropout_masks=(None, np.ones(1, np.float32)))
    with pytest.raises(ValueError, match="head_dropout: expected shape"):
        model.forward(x, dropout_masks=(None, np.ones(1, np.float32)))
    with pytest.raises(ValueError, match=r"mask: expected shape \(B, T\) = \(2, 4\)"):
        model.train_step(x, target, fastgru.Adam(model), mask=np.ones(7, bool))
    model(x)
    with pytest.raises(ValueError, match="dout: expected shape"):
        model.backward(np.zeros(2))


def test_numpy_backend_differentiates_the_forward_it_saw(rng):
    """Changing the caller's x or h0 between forward and backward must not change the gradient
    (the compiled backend keeps what it needs; the reference kept the caller's arrays)."""
    grads, data = {}, rng.standard_normal((5, 2, 3)).astype(np.float32)
    for backend in ("cpp", "numpy"):
        layer = fastgru.GRU(3, 4, seed=0, backend=backend)
        x, h0 = data.copy(), np.zeros((1, 2, 4), np.float32)
        original = x.copy(), h0.copy()
        layer(x, h0)
        x[:], h0[:] = 100, 5
        layer.backward(np.ones((5, 2, 4), np.float32))
        grads[backend] = layer.grad.copy()
        layer.zero_grad()
        layer(*original)
        layer.backward(np.ones((5, 2, 4), np.float32))
        np.testing.assert_array_equal(grads[backend], layer.grad)
    np.testing.assert_allclose(grads["numpy"], grads["cpp"], rtol=1e-4, atol=1e-5)


# ---- GRUModel.train_step: the whole step in one compiled call -------------------------------------

STEP_CASES = [(name, rs, False, 1, None, 0.0) for name in losses.LOSSES for rs in (True, False)] + [
    ("cross_entropy", True, True, 2, None, 0.0),
    ("mse", False, True, 2, 0.05, 0.0),
    ("mae", True, True, 2, 0.01, 0.0),
    ("mse", True, False, 1, 0.05, 0.0),
    ("binary_crossentropy", False, True, 2, None, 0.0),
]


@pytest.mark.parametrize("name, return_sequences, bidirectional, num_layers, clip, _", STEP_CASES)
def test_train_step_matches_torch(rng, torch, name, return_sequences, bidirectional, num_layers, clip, _):
    """Three train_step calls (forward, loss, backward, clipping, Adam in one compiled call) from
    the same weights: the same losses and parameters as torch in float64, with unequal lengths."""
    model = fastgru.GRUModel(
        F,
        H,
        O,
        num_layers=num_layers,
        bidirectional=bidirectional,
        return_sequences=return_sequences,
        dtype="float64",
        seed=3,
    )
    gru, head = torch_model(torch, model)
    torch_params = list(gru.parameters()) + list(head.parameters())
    opt = fastgru.Adam(model, lr=0.01)
    topt = torch.optim.Adam(torch_params, lr=0.01)
    x = rng.standard_normal((B, T, F))
    target, mask = make_target(rng, name, return_sequences), step_mask(return_sequences)
    for step in range(3):
        report = model.train_step(x, target, opt, loss=name, lengths=LENGTHS, clip_grad_norm=clip)
        topt.zero_grad()
        expected = torch_loss(torch, name, torch_forward(torch, gru, head, x, return_sequences), target, mask)
        expected.backward()
        norm = torch.nn.utils.clip_grad_norm_(torch_params, math.inf if clip is None else clip).item()
        topt.step()
        assert report.applied and report.loss == pytest.approx(expected.item(), rel=1e-12), f"loss at step {step}"
        assert report.grad_norm == pytest.approx(norm, rel=1e-10)
    expected_params = np.concatenate([p.detach().numpy().ravel() for p in torch_params])
    np.testing.assert_allclose(model.params, expected_params, rtol=1e-10, atol=1e-12)
    assert not model.grad.any() and opt.step_count == 3


@pytest.mark.parametrize(
    "name, return_sequences, bidirectional, num_layers, clip, dropout",
    STEP_CASES + [("mse", True, True, 2, 0.05, 0.3), ("cross_entropy", False, False, 3, None, 0.5)],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_step_matches_the_reference_composition(
    rng, name, return_sequences, bidirectional, num_layers, clip, dropout, dtype
):
    """backend="cpp" train_step against the same steps composed from the NumPy reference layers
    (backend="numpy": forward, loss, backward, norm, clipping, Adam), dropout included."""
    opts = dict(
        num_layers=num_layers,
        bidirectional=bidirectional,
        return_sequences=return_sequences,
        dropout=dropout,
        dtype=dtype,
        seed=11,
    )
    cpp, ref = fastgru.GRUModel(F, H, O, **opts), fastgru.GRUModel(F, H, O, backend="numpy", **opts)
    cpp_opt, ref_opt = fastgru.Adam(cpp, lr=0.02, weight_decay=0.01), fastgru.Adam(ref, lr=0.02, weight_decay=0.01)
    x, target = rng.standard_normal((B, T, F)), make_target(rng, name, return_sequences)
    tol = 1e-10 if dtype == "float64" else 2e-5
    for _ in range(3):
        a = cpp.train_step(x, target, cpp_opt, loss=name, lengths=LENGTHS, clip_grad_norm=clip)
        b = ref.train_step(x, target, ref_opt, loss=name, lengths=LENGTHS, clip_grad_norm=clip)
        assert a.applied and b.applied
        assert a.loss == pytest.approx(b.loss, rel=tol) and a.grad_norm == pytest.approx(b.grad_norm, rel=tol)
    np.testing.assert_allclose(cpp.params, ref.params, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        cpp_opt.exp_avg_sq, ref_opt.exp_avg_sq, rtol=1e-6 if dtype == "float32" else 1e-9, atol=1e-12
    )


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("name, return_sequences", [("mse", True), ("cross_entropy", False), ("mae", False)])
def test_gradients_of_parts_sum_to_the_whole_batch(rng, backend, name, return_sequences):
    """compute_gradients on two parts of a batch, each normalized by the whole batch's count, adds up
    to the whole batch's gradient, and the loss sums to its mean times the count (what a
    data-parallel loop relies on); apply_gradients then takes the same step as train_step."""
    opts = dict(
        num_layers=2, bidirectional=True, return_sequences=return_sequences, dtype="float64", seed=2, backend=backend
    )
    whole, split = fastgru.GRUModel(F, H, O, **opts), fastgru.GRUModel(F, H, O, **opts)
    x, target = rng.standard_normal((B, T, F)), make_target(rng, name, return_sequences)
    loss_sum, count = whole.compute_gradients(x, target, loss=name, lengths=LENGTHS)
    mean = losses.compute(name, whole.eval()(x, LENGTHS), target, step_mask(return_sequences))[0]
    assert loss_sum == pytest.approx(mean * count, rel=1e-12)
    parts = [np.arange(0, 1), np.arange(1, B)]
    sums = [
        split.compute_gradients(x[p], target[p], loss=name, lengths=LENGTHS[p], loss_normalizer=count) for p in parts
    ]
    assert sum(c for _, c in sums) == count and sum(s for s, _ in sums) == pytest.approx(loss_sum, rel=1e-12)
    np.testing.assert_allclose(split.grad, whole.grad, rtol=1e-10, atol=1e-14)
    a, b = fastgru.Adam(whole), fastgru.Adam(split)
    assert whole.apply_gradients(a, mean, clip_grad_norm=0.1).applied
    assert split.apply_gradients(b, sum(s for s, _ in sums) / count, clip_grad_norm=0.1).applied
    np.testing.assert_allclose(split.params, whole.params, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_train_step_with_a_non_finite_loss_changes_nothing(rng, backend):
    model = fastgru.GRUModel(F, H, O, return_sequences=False, seed=0, backend=backend)
    opt = fastgru.Adam(model)
    x, target = rng.standard_normal((B, T, F)), rng.standard_normal((B, O))
    target[1, 0] = np.inf
    before = model.params.copy()
    report = model.train_step(x, target, opt, loss="mse")
    assert not report.applied and not np.isfinite(report.loss)
    assert np.array_equal(model.params, before) and opt.step_count == 0 and not opt.exp_avg.any()
    target[1, 0] = 1e30  # finite, but its square overflows float32
    report = model.train_step(x, target, opt, loss="mse")
    assert not report.applied and np.array_equal(model.params, before)


def test_train_step_checks_its_arguments(rng):
    model = fastgru.GRUModel(F, H, O, return_sequences=True, seed=0)
    opt = fastgru.Adam(model)
    x = rng.standard_normal((B, T, F))
    with pytest.raises(ValueError, match="optimizer"):
        model.train_step(x, np.zeros((B, T, O)), fastgru.Adam(fastgru.GRUModel(F, H, O)))
    with pytest.raises(ValueError, match=r"target: expected shape \(6, 4, 3\)"):
        model.train_step(x, np.zeros((B, O)), opt)
    with pytest.raises(ValueError, match="labels must be in"):
        model.train_step(x, np.full((B, T), O), opt, loss="cross_entropy")
    with pytest.raises(ValueError, match="clip_grad_norm"):
        model.train_step(x, np.zeros((B, T, O)), opt, clip_grad_norm=0)
    with pytest.raises(ValueError, match="lengths"):
        model.train_step(x, np.zeros((B, T, O)), opt, lengths=[7, 1, 1, 1])
    with pytest.raises(ValueError, match="loss"):
        model.train_step(x, np.zeros((B, T, O)), opt, loss="hinge")
    with pytest.raises(ValueError, match="loss_normalizer"):
        model.compute_gradients(x, np.zeros((B, T, O)), loss_normalizer=0)


def test_core_model_checks_its_buffers():
    from fastgru import _core

    core = _core.Model_float32(_core.GruConfig(F, H), O, True, "mse")
    params, grad = np.zeros(core.param_count, np.float32), np.zeros(core.param_count, np.float32)
    x, target = np.zeros((T, B, F), np.float32), np.zeros((T, B, O), np.float32)
    with pytest.raises(ValueError, match="grad"):
        core.compute_gradients(params, grad.astype(np.float64), x, None, target, None, None, None)
    with pytest.raises(ValueError, match="x"):
        core.compute_gradients(params, grad, x[:, :, :2], None, target, None, None, None)
    with pytest.raises(ValueError, match="target"):
        core.compute_gradients(params, grad, x, None, target[:, :, :2], None, None, None)
    with pytest.raises(ValueError, match="head_dropout"):
        core.compute_gradients(params, grad, x, None, target, None, None, np.ones((T, B, 2), np.float32))
    with pytest.raises(ValueError, match="gru_dropout"):
        core.compute_gradients(params, grad, x, None, target, None, np.ones((1, T, B, H), np.float32), None)
    with pytest.raises(ValueError, match="mask"):
        core.compute_gradients(params, grad, x, None, target, np.ones(3, bool), None, None)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_train_step_in_eval_mode_has_no_dropout(rng, backend):
    """In eval mode a step sees no dropout and draws no masks: the same step as a model without dropout."""
    opts = dict(num_layers=2, return_sequences=True, dtype="float64", seed=4, backend=backend)
    with_dropout, without = fastgru.GRUModel(F, H, O, dropout=0.5, **opts).eval(), fastgru.GRUModel(F, H, O, **opts)
    x, target = rng.standard_normal((B, T, F)), rng.standard_normal((B, T, O))
    a = with_dropout.train_step(x, target, fastgru.Adam(with_dropout), lengths=LENGTHS)
    b = without.train_step(x, target, fastgru.Adam(without), lengths=LENGTHS)
    assert a.loss == pytest.approx(b.loss, rel=1e-12) and not with_dropout.training
    np.testing.assert_allclose(with_dropout.params, without.params, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_train_step_is_bit_identical_for_any_thread_count(rng, restore_threads, return_sequences):
    """The gradient norm, the loss and every kernel sum in a fixed order: 1, 2 and 3 threads give the
    same bits (sizes large enough for the work to be split)."""
    x = rng.standard_normal((64, 30, 40)).astype(np.float32)
    target = rng.standard_normal((64, 30, 2) if return_sequences else (64, 2)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        fastgru.set_num_threads(threads)
        model = fastgru.GRUModel(
            40, 96, 2, num_layers=2, bidirectional=True, return_sequences=return_sequences, dropout=0.1, seed=1
        )
        opt = fastgru.Adam(model)
        reports = [model.train_step(x, target, opt, clip_grad_norm=0.5) for _ in range(2)]
        results.append((reports, model.params.copy()))
    for reports, params in results[1:]:
        assert reports == results[0][0] and np.array_equal(params, results[0][1])
