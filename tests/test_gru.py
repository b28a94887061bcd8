"""fastgru.GRU against independent truths: the NumPy reference backend, central finite
differences and torch.nn.GRU; bit-identity across thread counts and batch compositions;
the contract's details and its bad-input errors."""

import numpy as np
import pytest
from helpers import gru_param_shapes, numeric_grad
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fastgru

RTOL = {"float64": 1e-10, "float32": 1e-5}  # cpp vs numpy backend (contract)
TORCH_RTOL = {"float64": 1e-9, "float32": 2e-4}  # vs torch.nn.GRU (contract)


# ---- helpers ---------------------------------------------------------------------------------


def assert_close(actual, expected, rtol, what):
    """max |actual - expected| <= rtol * the larger max magnitude of the two. In float32 that
    magnitude is floored at 1e-2 (inputs and output gradients here are O(1)): a gradient that
    cancels down to 1e-4 keeps the rounding errors of the O(1e-2) terms it was summed from."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0)
    scale = max(np.abs(expected).max(initial=0.0), np.abs(actual).max(initial=0.0))
    if np.float32 in (actual.dtype, expected.dtype):
        scale = max(scale, 1e-2)
    assert diff <= rtol * scale, f"{what}: max abs error {diff:.3g} > {rtol:g} * max magnitude {scale:.3g}"


def assert_all_close(actual, expected, rtol):
    assert actual.keys() == expected.keys()
    for key in expected:
        assert_close(actual[key], expected[key], rtol, key)


def assert_all_equal(actual, expected, what):
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key].dtype == expected[key].dtype, f"{what}: {key} dtype"
        assert np.array_equal(actual[key], expected[key]), (
            f"{what}: {key} differs, max abs diff {np.abs(actual[key] - expected[key]).max():.3g}"
        )


def make_layers(I, H, num_layers=1, *, seed=0, **opts):
    """The same layer twice, once per backend; the same seed gives the same weights and dropout masks."""
    cpp = fastgru.GRU(I, H, num_layers, backend="cpp", seed=seed, **opts)
    ref = fastgru.GRU(I, H, num_layers, backend="numpy", seed=seed, **opts)
    assert np.array_equal(cpp.params, ref.params)
    return cpp, ref


def make_case(rng, layer, T, B, *, h0=True, lengths=None, dh_n=True):
    """Random float64 inputs for one forward/backward of layer. dy is nonzero at padded steps too."""
    D, L, H = layer.num_directions, layer.num_layers, layer.hidden_size
    bt = (B, T) if layer.batch_first else (T, B)
    return {
        "x": rng.standard_normal(bt + (layer.input_size,)),
        "h0": rng.standard_normal((L * D, B, H)) if h0 else None,
        "lengths": None if lengths is None else np.asarray(lengths),
        "dy": rng.standard_normal(bt + (D * H,)),
        "dh_n": rng.standard_normal((L * D, B, H)) if dh_n else None,
    }


def run(layer, case):
    """Forward and backward from zeroed gradients; every output and gradient, copied."""
    layer.zero_grad()
    y, h_n = layer(case["x"], case["h0"], case["lengths"])
    dx, dh0 = layer.backward(case["dy"], case["dh_n"])
    out = {"y": y, "h_n": h_n, "dx": dx, "dh0": dh0}
    out.update({f"grad {name}": g.copy() for name, g in layer.grads().items()})
    return out


# ---- C++ backend vs NumPy reference over the full option grid ----------------------------------


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
def test_input_projection_in_chunks(rng, restore_threads, reset_after, dtype, threads):
    """The core computes the input projection a few megabytes of steps at a time (2 MiB:
    21 float64 or 42 float32 steps here), just before the recurrence needs them: a sequence
    of several chunks, in both directions, with ragged lengths, matches the reference. With
    2 threads each sweeps its own half of the batch, projecting its own rows chunk by chunk."""
    fastgru.set_num_threads(threads)
    T, B, I, H = 50, 64, 3, 64
    cpp, ref = make_layers(I, H, 2, bidirectional=True, reset_after=reset_after, dtype=dtype, dropout=0.2)
    case = make_case(rng, cpp, T, B, lengths=rng.integers(1, T + 1, B))
    assert_all_close(run(cpp, case), run(ref, case), RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scratch_memory_reused_across_shapes(rng, dtype):
    """Temporaries live in a per-thread arena kept between calls: calls of growing and shrinking
    shapes (3 layers use both of the stack's between-layer buffers), with the arena released in
    between, each match the reference, so nothing of an earlier call leaks into a later one."""
    shapes = [(3, 9, 2, 4, 6), (1, 3, 4, 3, 20), (3, 2, 1, 2, 3), (2, 7, 5, 4, 9), (3, 9, 2, 4, 6)]
    for i, (num_layers, T, B, I, H) in enumerate(shapes):
        cpp, ref = make_layers(
            I, H, num_layers, seed=i, bidirectional=i % 2 == 0, dropout=0.25, reset_after=i % 3 != 1, dtype=dtype
        )
        case = make_case(rng, cpp, T, B, lengths=rng.integers(1, T + 1, B))
        assert_all_close(run(cpp, case), run(ref, case), RTOL[dtype])
        if i == 2:
            fastgru.release_memory()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batch_slices_with_memory_released_in_between(rng, restore_threads, dtype):
    """With 2 threads and at least 8 rows each, every thread sweeps its own slice of the batch
    with temporaries from its own arena: calls of changing shapes, with release_memory() (which
    frees the pool threads' arenas too) after each, match the reference."""
    fastgru.set_num_threads(2)
    for i, (T, B, I, H) in enumerate([(6, 16, 3, 40), (9, 40, 2, 33), (4, 17, 5, 8), (6, 16, 3, 40)]):
        cpp, ref = make_layers(I, H, 2, seed=i, bidirectional=i % 2 == 0, reset_after=i % 3 != 1, dtype=dtype)
        case = make_case(rng, cpp, T, B, lengths=rng.integers(1, T + 1, B))
        assert_all_close(run(cpp, case), run(ref, case), RTOL[dtype])
        fastgru.release_memory()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("with_h0", [False, True], ids=["h0none", "h0"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
def test_cpp_matches_numpy_option_grid(
    rng, reset_after, bidirectional, num_layers, bias, batch_first, with_h0, with_lengths, dropout, dtype
):
    T, B, I, H = 4, 3, 3, 5
    lengths = [2, 4, 1] if with_lengths else None
    cpp, ref = make_layers(
        I,
        H,
        num_layers,
        reset_after=reset_after,
        bidirectional=bidirectional,
        bias=bias,
        batch_first=batch_first,
        dropout=dropout,
        dtype=dtype,
    )
    case = make_case(rng, cpp, T, B, h0=with_h0, lengths=lengths, dh_n=with_h0)
    got, want = run(cpp, case), run(ref, case)
    assert_all_close(got, want, RTOL[dtype])
    for key, value in got.items():
        assert value.dtype == np.dtype(dtype), key
    if with_lengths:  # padded steps output exactly 0
        y = got["y"] if not batch_first else got["y"].transpose(1, 0, 2)
        for b, n in enumerate(lengths):
            assert not y[n:, b].any()


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng, batch_first, backend):
    """input_grad=False: dx is None (its product skipped in the core); dh0 and the parameter
    gradients are those of the full backward, bit for bit."""
    layer = fastgru.GRU(3, 5, 2, bidirectional=True, batch_first=batch_first, backend=backend, seed=1)
    case = make_case(rng, layer, 4, 3, lengths=[2, 4, 1])
    full = run(layer, case)
    layer.zero_grad()
    layer(case["x"], case["h0"], case["lengths"])
    dx, dh0 = layer.backward(case["dy"], case["dh_n"], input_grad=False)
    assert dx is None and np.array_equal(dh0, full["dh0"])
    for name, g in layer.grads().items():
        assert np.array_equal(g, full[f"grad {name}"]), name


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_dropout_only_in_training_mode(rng, reset_after, dtype):
    T, B, I, H = 5, 3, 4, 6
    dropped, _ = make_layers(I, H, 3, dropout=0.5, reset_after=reset_after, dtype=dtype, seed=7)
    _, plain = make_layers(I, H, 3, dropout=0.0, reset_after=reset_after, dtype=dtype, seed=7)
    case = make_case(rng, dropped, T, B)
    y_train, _ = dropped(case["x"], case["h0"])
    y_plain, _ = plain(case["x"], case["h0"])
    assert np.abs(y_train - y_plain).max() > 1e-3  # masks were applied in training mode
    y_eval, h_eval = dropped.eval()(case["x"], case["h0"])
    y_ref, h_ref = plain.eval()(case["x"], case["h0"])
    assert_close(y_eval, y_ref, RTOL[dtype], "y")
    assert_close(h_eval, h_ref, RTOL[dtype], "h_n")


# ---- odd sizes: tile edges of the GEMM and gate kernels ---------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
@pytest.mark.parametrize("T", [1, 2])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("I", [1, 5])
@pytest.mark.parametrize("H", [1, 3, 17, 33, 257])
def test_cpp_matches_numpy_odd_sizes(rng, H, I, B, T, reset_after, dtype):
    cpp, ref = make_layers(I, H, bidirectional=True, reset_after=reset_after, dtype=dtype)
    lengths = [T, 1, T][:B] if B > 1 else None
    case = make_case(rng, cpp, T, B, lengths=lengths)
    assert_all_close(run(cpp, case), run(ref, case), RTOL[dtype])


# hypothesis' own failure report triggers this warning, which would turn a failure into an INTERNALERROR
@pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
@settings(max_examples=40, deadline=None, derandomize=True)  # the same examples on every run
@given(
    T=st.integers(1, 6),
    B=st.integers(1, 6),
    I=st.integers(1, 40),
    H=st.integers(1, 70),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    reset_after=st.booleans(),
    bias=st.booleans(),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**32 - 1),
)
@example(
    T=1, B=1, I=38, H=1, num_layers=1, bidirectional=False, reset_after=False, bias=False, dtype="float32", seed=41
)  # a float32 dh0 that cancels to 7e-4 (see assert_close)
def test_cpp_matches_numpy_random_shapes(T, B, I, H, num_layers, bidirectional, reset_after, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    cpp, ref = make_layers(
        I, H, num_layers, bidirectional=bidirectional, reset_after=reset_after, bias=bias, dtype=dtype, seed=seed
    )
    case = make_case(rng, cpp, T, B, lengths=rng.integers(1, T + 1, B))
    assert_all_close(run(cpp, case), run(ref, case), RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
def test_no_state_leaks_from_an_earlier_nan_call(rng, reset_after, bidirectional, dtype):
    """Scratch and cache memory freed by a call full of NaN is reused by the next call: every
    value that call reads must have been written by it (padded steps included)."""
    T, B, I, H = 5, 3, 4, 6
    cpp, ref = make_layers(I, H, 2, bidirectional=bidirectional, reset_after=reset_after, dtype=dtype)
    case = make_case(rng, cpp, T, B, lengths=[2, 5, 1])
    poison = {k: (np.full_like(v, np.nan, dtype=np.float64) if k != "lengths" else v) for k, v in case.items()}
    want = run(ref, case)
    for _ in range(2):
        run(cpp, poison)
        cpp.eval()(poison["x"], poison["h0"], poison["lengths"])  # eval() also drops the training cache
        cpp.train()
        assert_all_close(run(cpp, case), want, RTOL[dtype])
        y, h_n = cpp.eval()(case["x"], case["h0"], case["lengths"])
        cpp.train()
        assert_close(y, want["y"], RTOL[dtype], "eval y")
        assert_close(h_n, want["h_n"], RTOL[dtype], "eval h_n")


# ---- every instruction-set path ------------------------------------------------------------------

ISA_CONFIGS = [
    dict(H=40, I=7, num_layers=2, bidirectional=True, reset_after=True, bias=True, batch_first=False),
    dict(H=17, I=5, num_layers=1, bidirectional=False, reset_after=False, bias=True, batch_first=False),
    dict(H=65, I=33, num_layers=2, bidirectional=True, reset_after=False, bias=False, batch_first=True),
    dict(H=3, I=1, num_layers=1, bidirectional=True, reset_after=True, bias=False, batch_first=True),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", ISA_CONFIGS, ids=lambda c: f"H{c['H']}-L{c['num_layers']}-ra{int(c['reset_after'])}")
def test_cpp_matches_numpy_every_isa(rng, isa, config, dtype):
    config = dict(config)
    H, I, L = config.pop("H"), config.pop("I"), config.pop("num_layers")
    cpp, ref = make_layers(I, H, L, dtype=dtype, **config)
    case = make_case(rng, cpp, 6, 5, lengths=[6, 3, 1, 6, 2])
    assert_all_close(run(cpp, case), run(ref, case), RTOL[dtype])


# ---- bit-identical for any thread count --------------------------------------------------------


# Batch 5 splits the units over threads; batches 33 and 40 give each thread a slice of the
# batch (up to 4 and 2 threads: slices of at least 8 rows, 16 when W_hh outgrows 1 MiB).
@pytest.mark.parametrize(
    "size", [(6, 5, 7, 100), (9, 33, 50, 70), (4, 40, 6, 300)], ids=["T6B5H100", "T9B33H70", "T4B40H300"]
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_bit_identical_for_any_thread_count(rng, isa, restore_threads, bidirectional, reset_after, dtype, size):
    T, B, I, H = size
    layer = fastgru.GRU(I, H, 2, bidirectional=bidirectional, reset_after=reset_after, dtype=dtype, seed=1)
    case = make_case(rng, layer, T, B, lengths=rng.integers(1, T + 1, B))
    results = {}
    for n in (1, 2, 3, 7):
        fastgru.set_num_threads(n)
        assert fastgru.get_num_threads() == n
        results[n] = run(layer, case)
    for n in (2, 3, 7):
        assert_all_equal(results[n], results[1], f"{n} threads vs 1")


# ---- a sequence's result does not depend on the rest of its batch ------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_batch_invariance(rng, isa, bidirectional, reset_after, dtype):
    T, B, I, H = 7, 6, 9, 100
    layer = fastgru.GRU(I, H, 2, bidirectional=bidirectional, reset_after=reset_after, dtype=dtype, seed=2)
    lengths = np.array([7, 3, 5, 1, 7, 4])
    case = make_case(rng, layer, T, B, lengths=lengths)
    full = run(layer, case)
    for b in (0, 2, 3, 5):
        sub = {
            "x": case["x"][:, b : b + 1],
            "h0": case["h0"][:, b : b + 1],
            "lengths": lengths[b : b + 1],
            "dy": case["dy"][:, b : b + 1],
            "dh_n": case["dh_n"][:, b : b + 1],
        }
        alone = run(layer, sub)
        for key in ("y", "dx"):
            assert np.array_equal(alone[key], full[key][:, b : b + 1]), f"{key} of sequence {b}"
        for key in ("h_n", "dh0"):
            assert np.array_equal(alone[key], full[key][:, b : b + 1]), f"{key} of sequence {b}"
    # and inside a different batch: sequences 1 and 4 together, in swapped order
    idx = [4, 1]
    sub = {
        "x": case["x"][:, idx],
        "h0": case["h0"][:, idx],
        "lengths": lengths[idx],
        "dy": case["dy"][:, idx],
        "dh_n": case["dh_n"][:, idx],
    }
    pair = run(layer, sub)
    for key in ("y", "dx", "h_n", "dh0"):
        assert np.array_equal(pair[key], full[key][:, idx]), key


# ---- central finite differences (float64, cpp backend) -----------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
def test_finite_differences(rng, restore_threads, reset_after, bias):
    T, B, I, H, L = 3, 2, 2, 3, 2
    fastgru.set_num_threads(1)  # ~700 tiny forwards: thread hand-offs would dominate on a busy machine
    batch_first = not bias
    layer = fastgru.GRU(
        I,
        H,
        L,
        bidirectional=True,
        bias=bias,
        reset_after=reset_after,
        batch_first=batch_first,
        dtype="float64",
        seed=3,
    )
    case = make_case(rng, layer, T, B, lengths=[3, 2])
    x, h0, lengths, dy, dh_n = (case[k] for k in ("x", "h0", "lengths", "dy", "dh_n"))

    def loss():
        y, h_n = layer(x, h0, lengths)
        return np.sum(y * dy) + np.sum(h_n * dh_n)

    analytic = run(layer, case)
    layer.eval()
    values = {"dx": x, "dh0": h0, "params": layer.params}
    grads = {"dx": analytic["dx"], "dh0": analytic["dh0"], "params": layer.grad.copy()}
    for name, value in values.items():
        assert_close(grads[name], numeric_grad(loss, value), 1e-7, name)


# ---- parity with torch.nn.GRU -------------------------------------------------------------------


def torch_run(torch, layer, case, dtype):
    """The same forward/backward in torch.nn.GRU with our weights loaded; outputs as float64 arrays."""
    tdtype = getattr(torch, dtype)
    gru = torch.nn.GRU(
        layer.input_size,
        layer.hidden_size,
        layer.num_layers,
        bias=layer.bias,
        batch_first=layer.batch_first,
        bidirectional=layer.bidirectional,
        dtype=tdtype,
    )
    assert set(dict(gru.named_parameters())) == set(layer.state_dict())
    gru.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    x = torch.tensor(case["x"], dtype=tdtype, requires_grad=True)
    h0 = torch.tensor(case["h0"], dtype=tdtype, requires_grad=True)
    T = case["x"].shape[1 if layer.batch_first else 0]
    if case["lengths"] is None:
        y, h_n = gru(x, h0)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.tensor(case["lengths"]), batch_first=layer.batch_first, enforce_sorted=False
        )
        out, h_n = gru(packed, h0)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=layer.batch_first, total_length=T)
    loss = (y * torch.tensor(case["dy"], dtype=tdtype)).sum() + (h_n * torch.tensor(case["dh_n"], dtype=tdtype)).sum()
    loss.backward()
    result = {"y": y.detach().numpy(), "h_n": h_n.detach().numpy(), "dx": x.grad.numpy(), "dh0": h0.grad.numpy()}
    result.update({f"grad {name}": p.grad.numpy() for name, p in gru.named_parameters()})
    return result


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tbi", "bti"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
def test_matches_torch(rng, torch, num_layers, bidirectional, bias, batch_first, with_lengths, dtype):
    T, B, I, H = 5, 4, 3, 6
    layer = fastgru.GRU(
        I, H, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype, seed=4
    )
    case = make_case(rng, layer, T, B, lengths=[3, 5, 1, 4] if with_lengths else None)
    assert_all_close(run(layer, case), torch_run(torch, layer, case, dtype), TORCH_RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_weights_from_torch(rng, torch, dtype):
    torch.manual_seed(0)
    T, B, I, H = 6, 3, 4, 5
    gru = torch.nn.GRU(I, H, 2, bidirectional=True, dtype=getattr(torch, dtype))
    layer = fastgru.GRU(I, H, 2, bidirectional=True, dtype=dtype, seed=9)
    layer.load_state_dict({k: v.detach().numpy() for k, v in gru.state_dict().items()})
    for name, value in gru.state_dict().items():
        assert np.array_equal(layer.state_dict()[name], value.numpy()), name
    case = make_case(rng, layer, T, B, lengths=[6, 2, 4])
    assert_all_close(run(layer, case), torch_run(torch, layer, case, dtype), TORCH_RTOL[dtype])
    # float32 torch weights into a float64 layer are converted
    wide = fastgru.GRU(I, H, 2, bidirectional=True, dtype="float64", seed=9)
    wide.load_state_dict({k: v.detach().float().numpy() for k, v in gru.state_dict().items()})
    for name, value in gru.state_dict().items():
        assert np.array_equal(wide.state_dict()[name], value.float().numpy().astype(np.float64)), name


# ---- contract details ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize(
    "layer_dtype,input_dtype",
    [
        ("float32", np.int32),
        ("float32", np.float16),
        ("float32", np.float64),
        ("float32", np.uint8),
        ("float64", np.float32),
        ("float64", np.int64),
    ],
)
def test_outputs_have_the_layer_dtype(rng, backend, layer_dtype, input_dtype):
    T, B, I, H = 4, 2, 3, 5
    layer = fastgru.GRU(I, H, bidirectional=True, dtype=layer_dtype, backend=backend, seed=0)
    ref = fastgru.GRU(I, H, bidirectional=True, dtype=layer_dtype, backend="numpy", seed=0)
    case = {
        k: (rng.integers(0, 3, v.shape).astype(input_dtype) if isinstance(v, np.ndarray) else v)
        for k, v in make_case(rng, layer, T, B).items()
    }
    got = run(layer, case)
    for key, value in got.items():
        assert value.dtype == np.dtype(layer_dtype), key
    assert layer.params.dtype == layer.grad.dtype == np.dtype(layer_dtype)
    wide = {k: (v.astype(layer_dtype) if isinstance(v, np.ndarray) else v) for k, v in case.items()}
    assert_all_close(got, run(ref, wide), RTOL[layer_dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_non_contiguous_inputs(rng, dtype, batch_first):
    T, B, I, H = 5, 3, 4, 6
    cpp, ref = make_layers(I, H, 2, bidirectional=True, batch_first=batch_first, dtype=dtype)
    case = make_case(rng, cpp, T, B, lengths=[5, 2, 3])
    strided = {}
    for key, value in case.items():
        if key == "lengths":
            big = np.zeros(2 * B, np.int32)
            big[::2] = value
            strided[key] = big[::2]
        else:
            big = np.zeros(value.shape[:-1] + (2 * value.shape[-1],), np.float32 if key == "dy" else np.float64)
            big[..., ::2] = value
            strided[key] = big[..., ::2]
        assert not strided[key].flags.c_contiguous
    want = run(ref, {k: (v.astype(np.float32) if k == "dy" else v) for k, v in case.items()})
    assert_all_close(run(cpp, strided), want, RTOL[dtype])
    # Fortran order, and a read-only broadcast view with zero strides
    fortran = dict(case, x=np.asfortranarray(case["x"]), h0=np.asfortranarray(case["h0"]))
    assert_all_close(run(cpp, fortran), run(ref, case), RTOL[dtype])
    row = case["x"][:1, :1]
    broadcast = dict(case, x=np.broadcast_to(row, case["x"].shape))
    dense = dict(case, x=np.array(broadcast["x"]))
    assert_all_close(run(cpp, broadcast), run(ref, dense), RTOL[dtype])


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_dh0_has_h0_shape_when_h0_is_none(rng, backend, bidirectional):
    T, B, I, H, L = 4, 3, 2, 5, 2
    layer = fastgru.GRU(I, H, L, bidirectional=bidirectional, dtype="float64", backend=backend, seed=0)
    ref = fastgru.GRU(I, H, L, bidirectional=bidirectional, dtype="float64", backend="numpy", seed=0)
    case = make_case(rng, layer, T, B, h0=False, dh_n=False)
    got = run(layer, case)
    D = 2 if bidirectional else 1
    assert got["h_n"].shape == got["dh0"].shape == (L * D, B, H)
    want = run(ref, dict(case, h0=np.zeros((L * D, B, H)), dh_n=np.zeros((L * D, B, H))))
    assert_all_close(got, want, 1e-10)
    assert np.abs(got["dh0"]).max() > 0


def test_lengths_all_shorter_than_T(rng):
    T, B, I, H = 5, 3, 2, 4
    cpp, ref = make_layers(I, H, bidirectional=True, dtype="float64")
    for lengths in ([1, 1, 1], [2, 4, 3], np.array([1, 4, 2], np.uint8), [np.int16(3)] * 3):
        case = make_case(rng, cpp, T, B, lengths=lengths)
        got = run(cpp, case)
        assert_all_close(got, run(ref, case), 1e-10)
        for b, n in enumerate(np.asarray(lengths)):
            assert not got["y"][n:, b].any()
            assert not got["dx"][n:, b].any()


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_bias_false_has_no_bias_keys(backend, bidirectional):
    layer = fastgru.GRU(3, 4, 2, bias=False, bidirectional=bidirectional, backend=backend, seed=0)
    assert set(layer.state_dict()) == set(gru_param_shapes(3, 4, 2, bidirectional, False))
    assert set(layer.grads()) == set(gru_param_shapes(3, 4, 2, bidirectional, False))
    D = 2 if bidirectional else 1
    assert layer.params.size == D * (3 * 4 * 3 + 3 * 4 * 4) + D * (3 * 4 * 4 * D + 3 * 4 * 4)
    with_bias = fastgru.GRU(3, 4, 2, bias=True, bidirectional=bidirectional, backend=backend, seed=0)
    assert set(with_bias.state_dict()) == set(gru_param_shapes(3, 4, 2, bidirectional, True))
    assert with_bias.params.size == layer.params.size + 2 * D * 2 * 3 * 4


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_state_dict_and_grads_are_views(rng, dtype):
    I, H, L = 3, 4, 2
    layer = fastgru.GRU(I, H, L, bidirectional=True, dtype=dtype, seed=0)
    for views, flat in ((layer.state_dict(), layer.params), (layer.grads(), layer.grad)):
        assert flat.ndim == 1 and flat.flags.c_contiguous
        assert sum(v.size for v in views.values()) == flat.size
        for name, view in views.items():
            assert np.shares_memory(view, flat), name
        for i, view in enumerate(views.values()):  # the views tile the whole buffer, without overlap
            view[...] = i + 1
        counts = np.unique(flat, return_counts=True)
        sizes = {i + 1.0: v.size for i, v in enumerate(views.values())}
        assert dict(zip(counts[0].tolist(), counts[1].tolist())) == sizes
    for name, shape in {
        "weight_ih_l0": (3 * H, I),
        "weight_ih_l1_reverse": (3 * H, 2 * H),
        "weight_hh_l1": (3 * H, H),
        "bias_hh_l0_reverse": (3 * H,),
    }.items():
        assert layer.state_dict()[name].shape == layer.grads()[name].shape == shape
    # writing through a view changes what forward computes
    layer.load_state_dict({k: rng.uniform(-0.5, 0.5, v.shape) for k, v in layer.state_dict().items()})
    layer.state_dict()["weight_hh_l0"][2, 1] = 3.0
    ref = fastgru.GRU(I, H, L, bidirectional=True, dtype=dtype, backend="numpy", seed=1)
    ref.load_state_dict(layer.state_dict())
    assert np.array_equal(ref.params, layer.params) and ref.state_dict()["weight_hh_l0"][2, 1] == 3.0
    x = rng.standard_normal((4, 2, I))
    assert_close(layer.eval()(x)[0], ref.eval()(x)[0], RTOL[dtype], "y")


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_grads_accumulate(rng, backend, reset_after):
    T, B, I, H = 4, 3, 2, 5
    layer = fastgru.GRU(I, H, 2, bidirectional=True, reset_after=reset_after, dtype="float64", backend=backend, seed=0)
    ref = fastgru.GRU(I, H, 2, bidirectional=True, reset_after=reset_after, dtype="float64", backend="numpy", seed=0)
    first, second = make_case(rng, layer, T, B, lengths=[4, 1, 3]), make_case(rng, layer, T, B)
    g1, g2 = run(ref, first), run(ref, second)
    # two forward/backward pairs
    layer.zero_grad()
    for case in (first, second):
        layer(case["x"], case["h0"], case["lengths"])
        layer.backward(case["dy"], case["dh_n"])
    for name, g in layer.grads().items():
        assert_close(g, g1[f"grad {name}"] + g2[f"grad {name}"], 1e-10, name)
    # two backward calls through one forward
    layer.zero_grad()
    layer(first["x"], first["h0"], first["lengths"])
    layer.backward(first["dy"], first["dh_n"])
    dx, dh0 = layer.backward(2 * first["dy"], 2 * first["dh_n"])
    assert_close(dx, 2 * g1["dx"], 1e-10, "dx")
    assert_close(dh0, 2 * g1["dh0"], 1e-10, "dh0")
    for name, g in layer.grads().items():
        assert_close(g, 3 * g1[f"grad {name}"], 1e-10, name)
    # zero_grad clears everything; the next backward starts from zero
    layer.zero_grad()
    assert not layer.grad.any()
    layer(second["x"], second["h0"], second["lengths"])
    layer.backward(second["dy"], second["dh_n"])
    for name, g in layer.grads().items():
        assert_close(g, g2[f"grad {name}"], 1e-10, name)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_backward_needs_a_training_forward(rng, backend):
    layer = fastgru.GRU(2, 3, backend=backend, seed=0)
    x, dy = rng.standard_normal((4, 2, 2)), rng.standard_normal((4, 2, 3))
    assert layer.training
    with pytest.raises(RuntimeError):
        layer.backward(dy)
    layer.eval()
    layer(x)
    with pytest.raises(RuntimeError):
        layer.backward(dy)
    layer.train()
    layer(x)
    layer.backward(dy)
    layer(x)
    layer.eval()
    with pytest.raises(RuntimeError):  # switching to eval drops the cache
        layer.backward(dy)
    layer.train()
    layer(x)
    layer.eval()(x)
    with pytest.raises(RuntimeError):  # the last forward was an eval forward
        layer.backward(dy)
    assert not np.isnan(layer.grad).any()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_initial_weights(dtype, backend):
    H = 16
    layer = fastgru.GRU(5, H, 2, bidirectional=True, dtype=dtype, backend=backend, seed=123)
    bound = 1 / np.sqrt(H)
    assert layer.params.dtype == np.dtype(dtype)
    assert np.abs(layer.params).max() <= bound
    assert layer.params.min() < -0.95 * bound and layer.params.max() > 0.95 * bound
    assert abs(layer.params.mean()) < 0.05 * bound
    for name, value in layer.state_dict().items():
        assert np.unique(value).size > value.size // 2, name
    assert not layer.grad.any()
    same = fastgru.GRU(5, H, 2, bidirectional=True, dtype=dtype, backend=backend, seed=123)
    assert np.array_equal(same.params, layer.params)
    other = fastgru.GRU(5, H, 2, bidirectional=True, dtype=dtype, backend=backend, seed=124)
    assert not np.array_equal(other.params, layer.params)
    a, b = (fastgru.GRU(5, H, dtype=dtype, backend=backend) for _ in range(2))
    assert not np.array_equal(a.params, b.params)


def test_load_state_dict_accepts_lists_and_other_dtypes(rng):
    layer = fastgru.GRU(2, 3, dtype="float64", seed=0)
    new = {k: rng.standard_normal(v.shape) for k, v in layer.state_dict().items()}
    layer.load_state_dict({k: v.tolist() for k, v in new.items()})
    for k, v in new.items():
        assert np.array_equal(layer.state_dict()[k], v)
    layer.load_state_dict({k: v.astype(np.float32)[::-1][::-1] for k, v in new.items()})
    for k, v in new.items():
        assert np.array_equal(layer.state_dict()[k], v.astype(np.float32).astype(np.float64))


# ---- bad input ----------------------------------------------------------------------------------

T0, B0, I0, H0 = 4, 3, 2, 5
SHAPE_LD = "(2, 3, 5)"  # expected (L*D, B, H) of the bidirectional layer below


def bad_forward_calls():
    x = np.zeros((T0, B0, I0))
    h0 = np.zeros((2, B0, H0))
    return {
        "x rank 2": (dict(x=x[0]), ValueError, "x"),
        "x rank 4": (dict(x=x[None]), ValueError, "x"),
        "x wrong I": (dict(x=np.zeros((T0, B0, I0 + 1))), ValueError, "x"),
        "x T=0": (dict(x=np.zeros((0, B0, I0))), ValueError, "x"),
        "x B=0": (dict(x=np.zeros((T0, 0, I0))), ValueError, "x"),
        "x complex": (dict(x=x.astype(complex)), TypeError, "x"),
        "x str": (dict(x="hello"), TypeError, "x"),
        "x str array": (dict(x=np.full((T0, B0, I0), "a")), TypeError, "x"),
        "x object": (dict(x=np.array([None] * 3)), TypeError, "x"),
        "x ragged": (dict(x=[[[1.0, 2.0]], [[1.0]]]), TypeError, "x"),
        "x None": (dict(x=None), TypeError, "x"),
        "h0 wrong L*D": (dict(x=x, h0=np.zeros((1, B0, H0))), ValueError, "h0"),
        "h0 wrong B": (dict(x=x, h0=np.zeros((2, B0 + 1, H0))), ValueError, "h0"),
        "h0 wrong H": (dict(x=x, h0=np.zeros((2, B0, H0 - 1))), ValueError, "h0"),
        "h0 rank 2": (dict(x=x, h0=h0[0]), ValueError, "h0"),
        "h0 complex": (dict(x=x, h0=h0.astype(complex)), TypeError, "h0"),
        "lengths float": (dict(x=x, lengths=np.array([1.0, 2.0, 3.0])), TypeError, "lengths"),
        "lengths float list": (dict(x=x, lengths=[1.5, 2, 3]), TypeError, "lengths"),
        "lengths bool": (dict(x=x, lengths=np.array([True, True, True])), TypeError, "lengths"),
        "lengths 0": (dict(x=x, lengths=[0, 2, 3]), ValueError, "lengths"),
        "lengths negative": (dict(x=x, lengths=[-1, 2, 3]), ValueError, "lengths"),
        "lengths > T": (dict(x=x, lengths=[1, T0 + 1, 3]), ValueError, "lengths"),
        "lengths huge": (dict(x=x, lengths=np.array([1, 2**40, 3])), ValueError, "lengths"),
        "lengths short": (dict(x=x, lengths=[1, 2]), ValueError, "lengths"),
        "lengths long": (dict(x=x, lengths=[1, 2, 3, 4]), ValueError, "lengths"),
        "lengths 2-D": (dict(x=x, lengths=[[1, 2, 3]]), ValueError, "lengths"),
        "lengths scalar": (dict(x=x, lengths=3), ValueError, "lengths"),
        "lengths str": (dict(x=x, lengths=["a", "b", "c"]), TypeError, "lengths"),
    }


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("case", list(bad_forward_calls()))
def test_bad_forward_input(case, backend):
    kwargs, error, name = bad_forward_calls()[case]
    layer = fastgru.GRU(I0, H0, bidirectional=True, backend=backend, seed=0)
    with pytest.raises(error, match=rf"\b{name}\b") as info:
        layer(**kwargs)
    if name == "h0" and error is ValueError:
        assert SHAPE_LD in str(info.value)
    if case == "x wrong I":
        assert str(I0) in str(info.value)
    y, _ = layer(np.ones((T0, B0, I0)))  # the layer is still usable after the error
    assert y.shape == (T0, B0, 2 * H0)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_bad_backward_input(backend, batch_first):
    layer = fastgru.GRU(I0, H0, bidirectional=True, batch_first=batch_first, backend=backend, seed=0)
    x = np.ones((B0, T0, I0) if batch_first else (T0, B0, I0))
    y, h_n = layer(x)
    dy_swapped = np.zeros((T0, B0, 2 * H0) if batch_first else (B0, T0, 2 * H0))
    bad = [
        (dict(dy=y[..., :H0]), ValueError, "dy"),
        (dict(dy=y[:1]), ValueError, "dy"),
        (dict(dy=y[0]), ValueError, "dy"),
        (dict(dy=dy_swapped), ValueError, "dy"),
        (dict(dy=y.astype(complex)), TypeError, "dy"),
        (dict(dy="y"), TypeError, "dy"),
        (dict(dy=y, dh_n=h_n[:1]), ValueError, "dh_n"),
        (dict(dy=y, dh_n=h_n[:, :, 1:]), ValueError, "dh_n"),
        (dict(dy=y, dh_n=h_n[0]), ValueError, "dh_n"),
        (dict(dy=y, dh_n=h_n.astype(complex)), TypeError, "dh_n"),
    ]
    for kwargs, error, name in bad:
        with pytest.raises(error, match=rf"\b{name}\b") as info:
            layer.backward(**kwargs)
        if error is ValueError and name == "dh_n":
            assert SHAPE_LD in str(info.value)
    assert not layer.grad.any()  # nothing was accumulated by the failed calls
    dx, dh0 = layer.backward(y, h_n)  # and the cache survived them
    assert dx.shape == x.shape and dh0.shape == h_n.shape


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_bad_load_state_dict_leaves_weights_unchanged(rng, backend):
    layer = fastgru.GRU(I0, H0, 2, bidirectional=True, backend=backend, seed=0)
    before = layer.params.copy()
    good = {k: rng.standard_normal(v.shape) for k, v in layer.state_dict().items()}
    missing = dict(good)
    del missing["bias_hh_l1_reverse"]
    extra = dict(good, weight_ih_l2=np.zeros((3 * H0, 2 * H0)))
    wrong_shape = dict(good, weight_hh_l1=np.zeros((3 * H0, H0 + 1)))
    transposed = dict(good, weight_ih_l0=good["weight_ih_l0"].T)
    wrong_type = dict(good, bias_ih_l0=np.full(3 * H0, "a"))
    cases = [
        (missing, ValueError, "bias_hh_l1_reverse"),
        (extra, ValueError, "weight_ih_l2"),
        (wrong_shape, ValueError, "weight_hh_l1"),
        (transposed, ValueError, "weight_ih_l0"),
        (wrong_type, TypeError, "bias_ih_l0"),
    ]
    for mapping, error, name in cases:
        with pytest.raises(error, match=name) as info:
            layer.load_state_dict(mapping)
        if mapping is wrong_shape:
            assert str((3 * H0, H0)) in str(info.value)
        assert np.array_equal(layer.params, before), name
    layer.load_state_dict(good)
    assert not np.array_equal(layer.params, before)


@pytest.mark.parametrize(
    "kwargs,error,name",
    [
        (dict(hidden_size=0), ValueError, "hidden_size"),
        (dict(hidden_size=-3), ValueError, "hidden_size"),
        (dict(hidden_size=2.5), TypeError, "hidden_size"),
        (dict(input_size=0), ValueError, "input_size"),
        (dict(input_size="3"), TypeError, "input_size"),
        (dict(num_layers=0), ValueError, "num_layers"),
        (dict(dropout=1.5), ValueError, "dropout"),
        (dict(dropout=1.0), ValueError, "dropout"),
        (dict(dropout=-0.1), ValueError, "dropout"),
        (dict(dropout=float("nan")), ValueError, "dropout"),
        (dict(dropout="0.1"), ValueError, "dropout"),
        (dict(dtype="int8"), ValueError, "dtype"),
        (dict(dtype="float16"), ValueError, "dtype"),
        (dict(dtype="bogus"), ValueError, "dtype"),
        (dict(backend="cuda"), ValueError, "backend"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_bad_constructor_arguments(kwargs, error, name):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(error, match=rf"\b{name}\b"):
        fastgru.GRU(args.pop("input_size"), args.pop("hidden_size"), **args)


@pytest.mark.parametrize("n", [0, -1])
def test_bad_thread_count(restore_threads, n):
    with pytest.raises(ValueError):
        fastgru.set_num_threads(n)
    assert fastgru.get_num_threads() >= 1


def test_bad_isa(restore_isa):
    before = fastgru.active_isa()
    with pytest.raises((ValueError, TypeError)):
        fastgru.set_isa("sse1")
    assert fastgru.active_isa() == before


def test_workspace_size_is_steps_times_batch_times_one_row():
    """fastgru.torch sizes the workspace for symbolic shapes from the size of one (step, sequence)."""
    from fastgru import _core

    for options in [(3, 5, 1, False, True, True), (4, 33, 2, True, False, False), (1, 64, 3, True, True, True)]:
        config = _core.GruConfig(*options)
        for steps, batch in [(1, 1), (7, 3), (50, 32)]:
            assert _core.gru_workspace_size(config, steps, batch) == steps * batch * _core.gru_workspace_size(
                config, 1, 1
            )


def test_training_forward_reuses_the_previous_workspace():
    """Only the last training forward is differentiated, so its workspace serves the next forward
    of the same shape (a fresh large buffer would cost page faults every step); backward through
    the reused one still equals the reference."""
    layer = fastgru.GRU(3, 5, num_layers=2, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    layer(x)
    first = layer._cache[0][0]
    layer(x * 2)
    assert layer._cache[0][0] is first
    dx, _ = layer.backward(np.ones((4, 2, 5)))
    ref = fastgru.GRU(3, 5, num_layers=2, dtype="float64", backend="numpy", seed=0)
    ref.load_state_dict(layer.state_dict())
    ref(x * 2)
    want, _ = ref.backward(np.ones((4, 2, 5)))
    np.testing.assert_allclose(dx, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fastgru.GRU(3, 5, 2, bidirectional=True, reset_after=False, seed=1),
        lambda: fastgru.GRU(3, 5, compute_dtype="bfloat16", seed=1),
        lambda: fastgru.quantize(fastgru.GRU(3, 5, seed=1)),
        lambda: fastgru.Dense(3, 5, seed=1),
    ],
)
def test_layers_pickle_and_deep_copy(make, rng):
    """A best-weights snapshot in a custom loop, or a layer sent to a multiprocessing worker:
    the copy computes the same, owns its buffers, and keeps what it was (int8, read-only)."""
    import copy
    import pickle

    layer = make().eval()
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    want = layer(x)
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        got = twin(x)
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(twin.params, layer.params)
        assert twin.quantization == layer.quantization
        assert twin.params.flags.writeable == layer.params.flags.writeable
    config = layer.config if isinstance(layer, fastgru.GRU) else None
    if config is not None:
        again = pickle.loads(pickle.dumps(config))
        assert (again.hidden_size, again.reset_after, again.compute_dtype) == (
            config.hidden_size,
            config.reset_after,
            config.compute_dtype,
        )
