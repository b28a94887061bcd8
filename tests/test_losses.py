"""The losses and gradient clipping: the reference against the torch losses and central finite
differences, the compiled kernels against the reference, determinism, stability, bad inputs."""

import numpy as np
import pytest

import fastgru
from fastgru import losses
from fastgru._flat import clip_grad_norm
from fastgru.reference import heads

TOL = {"float64": 1e-12, "float32": 2e-6}


def make_case(rng, name, rows_shape, O, dtype=np.float64, masked=True):
    logits = rng.standard_normal(rows_shape + (O,)).astype(dtype) * 2
    if name == "cross_entropy":
        target = rng.integers(0, O, rows_shape)
    elif name == "binary_crossentropy":
        target = rng.uniform(0, 1, rows_shape + (O,)).astype(dtype)  # soft labels work too
    else:
        target = rng.standard_normal(rows_shape + (O,)).astype(dtype)
    mask = rng.uniform(size=rows_shape) < 0.7 if masked else None
    if masked:
        mask.flat[0] = True
    return logits, target, mask


def torch_loss(torch, name, logits, target, mask):
    """The torch loss with reduction='mean' on the valid rows: the definition we promise."""
    x = torch.from_numpy(logits).requires_grad_()
    rows = x if mask is None else x[torch.from_numpy(mask)]
    t = torch.from_numpy(np.asarray(target))
    t = t if mask is None else t[torch.from_numpy(mask)]
    fn = {
        "mse": torch.nn.functional.mse_loss,
        "mae": torch.nn.functional.l1_loss,
        "binary_crossentropy": torch.nn.functional.binary_cross_entropy_with_logits,
        "cross_entropy": lambda a, b: torch.nn.functional.cross_entropy(a.reshape(-1, a.shape[-1]), b.reshape(-1)),
    }
    value = fn[name](rows, t)
    value.backward()
    return value.item(), x.grad.numpy()


@pytest.mark.parametrize("name", losses.LOSSES)
@pytest.mark.parametrize("masked", [False, True])
def test_reference_matches_torch(rng, torch, name, masked):
    logits, target, mask = make_case(rng, name, (5, 4), 3, masked=masked)
    value, grad = heads.LOSSES[name](logits, target, mask)
    expected_value, expected_grad = torch_loss(torch, name, logits, target, mask)
    assert value == pytest.approx(expected_value, rel=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", losses.LOSSES)
def test_reference_gradient_matches_finite_differences(rng, name):
    logits, target, mask = make_case(rng, name, (3, 4), 3)
    _, grad = heads.LOSSES[name](logits, target, mask)
    eps, numeric = 1e-6, np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (heads.LOSSES[name](up, target, mask)[0] - heads.LOSSES[name](down, target, mask)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", losses.LOSSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("masked", [False, True])
def test_cpp_matches_reference(rng, name, dtype, masked):
    logits, target, mask = make_case(rng, name, (37, 5), 4, dtype, masked)  # > one 64-row block
    value, grad = losses.compute(name, logits, target, mask)
    expected_value, expected_grad = losses.compute(name, logits, target, mask, backend="numpy")
    assert grad.dtype == np.dtype(dtype) and grad.shape == logits.shape
    assert value == pytest.approx(expected_value, rel=TOL[dtype])
    np.testing.assert_allclose(grad, expected_grad, rtol=TOL[dtype], atol=TOL[dtype] / logits[..., 0].size)
    if masked:
        assert not grad[~mask].any()


@pytest.mark.parametrize("name", losses.LOSSES)
def test_cpp_loss_is_identical_across_thread_counts(rng, restore_threads, name):
    logits, target, mask = make_case(rng, name, (100, 33), 3)
    results = []
    for threads in (1, 2, 3):
        fastgru.set_num_threads(threads)
        results.append(losses.compute(name, logits, target, mask))
    for value, grad in results[1:]:
        assert value == results[0][0] and np.array_equal(grad, results[0][1])


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_logit_losses_are_stable_for_extreme_logits(backend):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 50.0]])
    value, grad = losses.compute(
        "binary_crossentropy", logits, np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), backend=backend
    )
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx((np.log(2) + 2000 + 50) / 6)
    value, grad = losses.compute("cross_entropy", logits, np.array([1, 0]), backend=backend)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(2000.0)


def test_all_rows_masked_gives_zero_loss_and_gradient(rng):
    logits, target, _ = make_case(rng, "mse", (4,), 2)
    value, grad = losses.compute("mse", logits, target, np.zeros(4, bool))
    assert value == 0.0 and not grad.any()


def test_mae_gradient_is_zero_at_ties():
    _, grad = losses.compute("mae", np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]]))
    assert grad.tolist() == [[0.0, 0.5]]


def test_bad_inputs_raise_clear_errors():
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match="loss: expected one of"):
        losses.compute("hinge", logits, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        losses.compute("cross_entropy", logits, np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        losses.compute("cross_entropy", logits, np.array([0, 1, -1, 0]))
    # Labels at masked rows are never read, so padding may hold anything.
    losses.compute("cross_entropy", logits, np.array([0, 1, -1, 0]), np.array([True, True, False, True]))
    with pytest.raises(TypeError, match="integer labels"):
        losses.compute("cross_entropy", logits, np.array([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="target: expected shape"):
        losses.compute("mse", logits, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="mask"):
        losses.compute("mse", logits, logits, np.ones(3, bool))
    with pytest.raises(TypeError, match="logits"):
        losses.compute("mse", [[True]], [[0.0]])
    with pytest.raises(ValueError, match=r"logits: expected shape \(..., O\) with O >= 1"):
        losses.compute("cross_entropy", np.zeros((2, 0)), [0, 0], np.zeros(2, bool))


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_logits_of_any_real_array_like(backend):
    """As every other argument: lists, either byte order, integers (computed in float64);
    the compiled loss keeps float32 logits in float32."""
    logits = np.array([[0.5, -1.0], [2.0, 0.25]])
    expected = losses.compute("mse", logits, np.zeros((2, 2)), backend=backend)
    for same in (logits.tolist(), logits.astype(">f8")):
        value, grad = losses.compute("mse", same, np.zeros((2, 2)), backend=backend)
        assert value == expected[0] and np.array_equal(grad, expected[1]) and grad.dtype == np.float64
    value, grad = losses.compute("mse", logits.astype(">f4"), np.zeros((2, 2)), backend=backend)
    assert grad.dtype == (np.float32 if backend == "cpp" else np.float64)  # the reference works in float64
    value, grad = losses.compute("mse", np.array([[1, 2]]), np.zeros((1, 2)), backend=backend)
    assert value == 2.5 and grad.dtype == np.float64


def test_core_loss_checks_labels_itself():
    from fastgru import _core

    with pytest.raises(ValueError, match="labels"):
        _core.loss_float64("cross_entropy", np.zeros((2, 3)), np.array([0, 7]), None)
    with pytest.raises(ValueError, match="loss"):
        _core.loss_float64("nope", np.zeros((2, 3)), np.zeros((2, 3)), None)


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(rng, torch, max_norm):
    parts = [rng.standard_normal(s) for s in ((3, 4), (5,), (2, 2))]
    flat = np.concatenate([p.ravel() for p in parts])
    tensors = [torch.nn.Parameter(torch.zeros(p.shape, dtype=torch.float64)) for p in parts]
    for t, p in zip(tensors, parts):
        t.grad = torch.from_numpy(p.copy())
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    norm = clip_grad_norm(flat, max_norm)
    assert norm == pytest.approx(expected_norm, rel=1e-14)
    np.testing.assert_allclose(flat, np.concatenate([t.grad.numpy().ravel() for t in tensors]), rtol=1e-14)
