"""fastgru.torch.GRU against torch.nn.GRU (outputs, gradients, Adam training, error types,
state_dicts), finite differences (gradcheck), the NumPy reference (reset_after=False) and
PyTorch's own operator checks (opcheck, torch.compile, torch.export, fake tensors)."""

import copy
import itertools
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence  # noqa: E402

import fastgru  # noqa: E402
import fastgru.torch as ft  # noqa: E402

RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_close(actual, expected, what, rtol):
    """max |actual - expected| <= rtol * max(1, max |expected|): the values here are O(1)."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    diff = (actual.detach() - expected.detach()).abs().max().item() if actual.numel() else 0.0
    scale = max(1.0, expected.detach().abs().max().item() if expected.numel() else 0.0)
    assert diff <= rtol * scale, f"{what}: max abs error {diff:.3g} > {rtol:g} * {scale:.3g}"


def twin_grus(seed=0, **options):
    """The same GRU twice, as torch.nn.GRU and as fastgru.torch.GRU (the same seed draws the
    same initial weights)."""
    torch.manual_seed(seed)
    ref = nn.GRU(**options)
    torch.manual_seed(seed)
    ours = ft.GRU(**options)
    return ref, ours


def run_and_differentiate(gru, input, hx, weights):
    """Forward, then backward of a fixed random linear function of every output. Returns
    (outputs, gradients) as dicts of tensors (output data for a PackedSequence)."""
    for p in gru.parameters():
        p.grad = None
    for t in (input.data if isinstance(input, PackedSequence) else input, hx):
        if t is not None:
            t.grad = None
    output, h_n = gru(input, hx)
    y = output.data if isinstance(output, PackedSequence) else output
    loss = (y * weights["y"]).sum() + (h_n * weights["h_n"]).sum()
    loss.backward()
    outputs = {"output": y, "h_n": h_n}
    if isinstance(output, PackedSequence):
        outputs.update(
            batch_sizes=output.batch_sizes,
            sorted_indices=output.sorted_indices,
            unsorted_indices=output.unsorted_indices,
        )
    grads = {name: p.grad for name, p in gru.named_parameters()}
    grads["input"] = (input.data if isinstance(input, PackedSequence) else input).grad
    if hx is not None:
        grads["hx"] = hx.grad
    return outputs, grads


def make_input(kind, T, B, I, batch_first, dtype, gen):
    """(input for both GRUs, B as the GRU sees it). kind: padded, unbatched, packed_sorted, packed_unsorted."""
    if kind == "unbatched":
        return torch.randn(T, I, dtype=dtype, generator=gen, requires_grad=True), None
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype, generator=gen)
    if kind == "padded":
        return x.requires_grad_(), B
    lengths = torch.tensor([T, 2, T - 1, 1, 3][:B])
    if kind == "packed_sorted":
        lengths = lengths.sort(descending=True).values
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=kind == "packed_sorted")
    packed.data.requires_grad_()
    return packed, B


# ---- parity with torch.nn.GRU ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["padded", "unbatched", "packed_sorted", "packed_unsorted"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (2, False), (2, True)])
def test_forward_and_gradients_match_nn_gru(dtype, kind, num_layers, bidirectional):
    T, B, I, H = 6, 4, 3, 5
    for batch_first, bias, with_hx in itertools.product([False, True], repeat=3):
        what = f"batch_first={batch_first} bias={bias} hx={with_hx}"
        ref, ours = twin_grus(
            input_size=I,
            hidden_size=H,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            bidirectional=bidirectional,
            dtype=dtype,
        )
        gen = torch.Generator().manual_seed(1)
        input, batch = make_input(kind, T, B, I, batch_first, dtype, gen)
        LD = num_layers * (2 if bidirectional else 1)
        hx = None
        if with_hx:
            hx = torch.randn(
                (LD, H) if batch is None else (LD, batch, H), dtype=dtype, generator=gen, requires_grad=True
            )
        with torch.no_grad():
            output, h_n = ref(input, hx)
        weights = {
            "y": torch.randn((output.data if kind.startswith("packed") else output).shape, dtype=dtype, generator=gen),
            "h_n": torch.randn(h_n.shape, dtype=dtype, generator=gen),
        }
        ref_out, ref_grads = run_and_differentiate(ref, input, hx, weights)
        ref_grads = {name: g.clone() for name, g in ref_grads.items()}
        our_out, our_grads = run_and_differentiate(ours, input, hx, weights)
        for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
            if name in ref_out:
                assert (our_out[name] is None) == (ref_out[name] is None), f"{what}: {name}"
                if ref_out[name] is not None:
                    assert torch.equal(our_out[name], ref_out[name]), f"{what}: {name}"
        for name in ("output", "h_n"):
            assert_close(our_out[name], ref_out[name], f"{what}: {name}", RTOL[dtype])
        assert our_grads.keys() == ref_grads.keys()
        for name, g in ref_grads.items():
            assert_close(our_grads[name], g, f"{what}: grad of {name}", RTOL[dtype])


def test_adam_training_matches_nn_gru():
    """30 steps of torch.optim.Adam on the same data give the same parameters (float64)."""
    options = dict(input_size=3, hidden_size=6, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    models = []
    for gru in twin_grus(**options):
        torch.manual_seed(2)
        models.append(nn.ModuleDict({"gru": gru, "head": nn.Linear(12, 1, dtype=torch.float64)}))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 7, 3, dtype=torch.float64, generator=gen)
    target = torch.randn(5, 7, 1, dtype=torch.float64, generator=gen)
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in models]
    for _ in range(30):
        for model, opt in zip(models, optimizers):
            y, _ = model["gru"](x)
            loss = nn.functional.mse_loss(model["head"](y), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, ref), ours in zip(models[0].named_parameters(), models[1].parameters()):
        assert_close(ours, ref, name, 1e-10)


# ---- finite differences, PyTorch's operator checks ------------------------------------------


def test_gradcheck_float64():
    torch.manual_seed(4)
    gru = ft.GRU(2, 3, num_layers=2, bidirectional=True, dtype=torch.float64)
    names = [name for name, _ in gru.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    hx = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])

    def padded(x, hx, *weights):
        return torch.func.functional_call(gru, dict(zip(names, weights)), (x, hx))

    def packed(x, hx, *weights):
        out, h_n = torch.func.functional_call(gru, dict(zip(names, weights)), (pack_padded_sequence(x, lengths), hx))
        return out.data, h_n

    inputs = (x, hx, *(p.detach().clone().requires_grad_() for p in gru.parameters()))
    assert torch.autograd.gradcheck(padded, inputs)
    assert torch.autograd.gradcheck(packed, inputs)


def test_gradcheck_with_dropout_masks_from_torch_seed():
    torch.manual_seed(5)
    gru = ft.GRU(2, 3, num_layers=3, dropout=0.5, dtype=torch.float64)
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(x):
        torch.manual_seed(6)  # the same masks at every evaluation
        return gru(x)

    assert torch.autograd.gradcheck(f, (x,))


def forward_args(keep_workspace, *, lengths=True, dropout=True):
    """Arguments of fastgru::gru_forward for a 2-layer bidirectional float64 GRU, T=4, B=3."""
    torch.manual_seed(7)
    T, B, I, H, L = 4, 3, 2, 3, 2
    params = torch.cat([p.reshape(-1) for p in ft.GRU(I, H, L, bidirectional=True, dtype=torch.float64).parameters()])
    return (
        torch.randn(T, B, I, dtype=torch.float64, requires_grad=True),
        torch.randn(2 * L, B, H, dtype=torch.float64, requires_grad=True),
        params.detach().requires_grad_(),
        torch.tensor([4, 1, 3]) if lengths else None,
        (torch.rand(L - 1, T, B, 2 * H, dtype=torch.float64) < 0.5) * 2.0 if dropout else None,
        H,
        L,
        True,
        True,
        True,
        "float32",
        keep_workspace,
    )


# From torch 2.14 opcheck's test_aot_dispatch_dynamic runs on clones of the inputs: those of the
# inputs that require grad are non-leaf tensors, whose .grad torch's fake-tensor converter
# (torch._subclasses.meta_utils.safe_grad) reads, hiding this warning by replacing
# warnings.showwarning, which an "error" filter raises before reaching. Torch's access, not fastgru's.
NON_LEAF_GRAD_IN_OPCHECK = pytest.mark.filterwarnings(
    "ignore:The .grad attribute of a Tensor that is not a leaf Tensor is being accessed"
    ":UserWarning:torch._subclasses.meta_utils"
)


@pytest.mark.parametrize("keep_workspace", [pytest.param(True, marks=NON_LEAF_GRAD_IN_OPCHECK), False])
def test_opcheck_forward(keep_workspace):
    args = forward_args(keep_workspace)
    if not keep_workspace:
        args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
    torch.library.opcheck(torch.ops.fastgru.gru_forward.default, args)


def test_opcheck_backward():
    args = forward_args(True)
    x, _, params, lengths, dropout, H, L, bidirectional, bias, reset_after, compute_dtype, _ = args
    y, h_n, workspace = torch.ops.fastgru.gru_forward(*args)
    gen = torch.Generator().manual_seed(8)
    dy = torch.randn(y.shape, dtype=y.dtype, generator=gen)
    dh_n = torch.randn(h_n.shape, dtype=y.dtype, generator=gen)
    torch.library.opcheck(
        torch.ops.fastgru.gru_backward.default,
        (
            dy,
            dh_n,
            params.detach(),
            workspace,
            lengths,
            dropout,
            x.shape[2],
            H,
            L,
            bidirectional,
            bias,
            reset_after,
            compute_dtype,
        ),
    )


class Tagger(nn.Module):
    """A model holding the GRU: per-step linear head plus a term of h_n."""

    def __init__(self):
        super().__init__()
        self.gru = ft.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        y, h_n = self.gru(x)
        return self.head(y).squeeze(-1) + h_n.sum(0).sum(-1, keepdim=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # inside inductor
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_forward_and_backward(backend):
    torch.manual_seed(10)
    model = Tagger()
    x = torch.randn(2, 5, 3)
    expected = model(x)
    expected.square().sum().backward()
    expected_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    out = compiled(x)
    out.square().sum().backward()
    assert_close(out, expected, "output", RTOL[torch.float32])
    for name, p in model.named_parameters():
        assert_close(p.grad, expected_grads[name], f"grad of {name}", RTOL[torch.float32])


def test_torch_compile_with_dynamic_shapes():
    """One compiled graph serves every (T, B), as PyTorch users vary sequence lengths per batch."""
    torch.manual_seed(17)
    gru = ft.GRU(3, 4, num_layers=2, bidirectional=True)

    def loss(x):
        y, h_n = gru(x)
        return y.square().sum() + h_n.sum()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True, dynamic=True)
    for T, B in [(5, 2), (7, 3)]:
        x = torch.randn(T, B, 3, requires_grad=True)
        compiled(x).backward()
        dx = x.grad
        x.grad = None
        expected = loss(x)
        expected.backward()
        assert_close(dx, x.grad, f"dx at T={T}, B={B}", RTOL[torch.float32])


def test_torch_export():
    torch.manual_seed(11)
    model = Tagger().eval()
    x = torch.randn(2, 5, 3)
    exported = torch.export.export(model, (x,))
    assert "fastgru.gru_forward" in str(exported.graph)
    assert_close(exported.module()(x), model(x), "output", RTOL[torch.float32])


def test_torch_export_records_whether_the_forward_keeps_the_workspace():
    """As the README says: the flag follows grad mode at export time (no_grad: an inference
    program that keeps nothing)."""
    gru, x = ft.GRU(3, 4).eval(), torch.randn(5, 2, 3)
    for grad_mode, keeps in ((torch.no_grad, False), (torch.enable_grad, True)):
        with grad_mode():
            exported = torch.export.export(gru, (x,))
        (node,) = [n for n in exported.graph.nodes if n.op == "call_function" and "gru_forward" in str(n.target)]
        assert node.args[-1] is keeps


def test_fake_and_meta_tensors_give_the_right_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        gru = ft.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        y, h_n = gru(torch.randn(5, 7, 3, requires_grad=True))
        assert y.shape == (5, 7, 8) and h_n.shape == (4, 5, 4)
        y.sum().backward()
        assert gru.weight_ih_l0.grad.shape == (12, 3)
    gru = ft.GRU(3, 4, device="meta")
    y, h_n = gru(torch.randn(7, 3, device="meta"))
    assert y.shape == (7, 4) and h_n.shape == (1, 4) and y.device.type == "meta"


# ---- behaviour --------------------------------------------------------------------------------


def raised(call):
    try:
        call()
    except Exception as exc:  # the type is what is compared
        return type(exc)
    return None


@pytest.mark.parametrize(
    "case",
    [
        "feature_size",
        "hx_shape",
        "hx_batch",
        "int_input",
        "int_hx",
        "float64_input",
        "4d_input",
        "1d_input",
        "2d_hx_batched",
        "3d_hx_unbatched",
        "unbatched_hx_shape",
        "packed_feature_size",
        "packed_hx_shape",
        "empty_steps",
    ],
)
def test_bad_input_raises_what_nn_gru_raises(case):
    ref, ours = twin_grus(input_size=3, hidden_size=4, num_layers=2)
    x = torch.randn(5, 2, 3)
    packed = pack_padded_sequence(torch.randn(5, 2, 4), torch.tensor([5, 3]))
    args = {
        "feature_size": (torch.randn(5, 2, 4),),
        "hx_shape": (x, torch.randn(2, 2, 5)),
        "hx_batch": (x, torch.randn(2, 3, 4)),
        "int_input": (torch.ones(5, 2, 3, dtype=torch.int64),),
        "int_hx": (x, torch.ones(2, 2, 4, dtype=torch.int64)),
        "float64_input": (x.double(),),
        "4d_input": (torch.randn(5, 2, 3, 1),),
        "1d_input": (torch.randn(3),),
        "2d_hx_batched": (x, torch.randn(2, 4)),
        "3d_hx_unbatched": (torch.randn(5, 3), torch.randn(2, 1, 4)),
        "unbatched_hx_shape": (torch.randn(5, 3), torch.randn(2, 5)),
        "packed_feature_size": (packed,),
        "packed_hx_shape": (pack_padded_sequence(x, torch.tensor([5, 3])), torch.randn(2, 3, 4)),
        "empty_steps": (torch.randn(0, 2, 3),),
    }[case]
    expected = raised(lambda: ref(*args))
    assert expected is not None
    assert raised(lambda: ours(*args)) is expected


@pytest.mark.parametrize("with_hx", [False, True])
def test_empty_batch_like_nn_gru(with_hx):
    """Shapes, and a backward through the empty outputs: zero gradients of every shape, as nn.GRU's."""
    ref, ours = twin_grus(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    grads = []
    for gru in (ref, ours):
        x = torch.randn(5, 0, 3, requires_grad=True)
        hx = torch.randn(4, 0, 4, requires_grad=True) if with_hx else None
        y, h_n = gru(x, hx)
        (y.sum() + h_n.sum()).backward()
        grads.append([y.shape, h_n.shape, x.grad, None if hx is None else hx.grad] + [p.grad for p in gru.parameters()])
    for a, b in zip(*grads):
        assert (a is None and b is None) or (a.shape == b.shape if isinstance(a, torch.Tensor) else a == b)
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)


# torch.jit.trace (and trace_method, which it calls for a module) is deprecated, not gone: a
# DeprecationWarning up to torch 2.13, a FutureWarning from 2.14.
@pytest.mark.filterwarnings("ignore:`torch.jit.trace(_method)?` is deprecated:DeprecationWarning:torch.jit._trace")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace(_method)?` is deprecated:FutureWarning:torch.jit._trace")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the shape checks become constants
def test_torch_jit_trace_runs_and_trains():
    """The traced graph must not depend on grad mode (the trace check runs it without): a trace
    made under no_grad still trains, with nn.GRU's gradients."""
    ref, ours = twin_grus(input_size=3, hidden_size=4, num_layers=2)
    x = torch.randn(5, 2, 3)
    traced = torch.jit.trace(ours, (x,))  # checks the trace by running it again
    assert_close(traced(x)[0], ref(x)[0], "traced y", RTOL[torch.float32])
    with torch.no_grad():
        traced = torch.jit.trace(ours, (x,), check_trace=False)
    traced(x)[0].sum().backward()
    ref(x)[0].sum().backward()
    for (name, a), b in zip(ref.named_parameters(), ours.parameters()):
        assert_close(b.grad, a.grad, f"d {name}", RTOL[torch.float32])


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_cpu_autocast_bfloat16_runs_the_bfloat16_path(input_dtype):
    """Under CPU autocast to bfloat16: nn.GRU's output dtypes, the NumPy reference's bfloat16
    products (fastgru.GRU(compute_dtype="bfloat16", backend="numpy")), float32 gradients."""
    torch.manual_seed(0)
    ref, ours = twin_grus(input_size=3, hidden_size=5, num_layers=2)
    x = torch.randn(6, 2, 3).to(input_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want_y, want_h = ref(x)
        y, h_n = ours(x)
    assert (y.dtype, h_n.dtype) == (want_y.dtype, want_h.dtype) == (input_dtype, input_dtype)
    spec = fastgru.GRU(3, 5, 2, compute_dtype="bfloat16", backend="numpy")
    spec.load_state_dict(ours.state_dict())
    spec_y, _ = spec(x.float().numpy())
    # bfloat16 outputs are the float32 results rounded: within one bfloat16 step of |y| < 1.
    np.testing.assert_allclose(
        y.float().detach().numpy(), spec_y, rtol=0, atol=1e-5 if input_dtype == torch.float32 else 2**-8
    )
    y.float().sum().backward()
    assert ours.weight_hh_l0.grad.dtype == torch.float32 and torch.isfinite(ours.weight_hh_l0.grad).all()


def test_cpu_autocast_leaves_float64_and_other_dtypes_exact():
    torch.manual_seed(0)
    linear, gru = nn.Linear(3, 3), ft.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.float16):  # no float16 path: products stay float32
        z = linear(x)
        y, h_n = gru(z)
    assert z.dtype == torch.float16 and y.dtype == h_n.dtype == torch.float16
    expected_y, expected_h = gru(z.float())
    assert torch.equal(y, expected_y.half()) and torch.equal(h_n, expected_h.half())
    gru64 = ft.GRU(3, 4, dtype=torch.float64)
    x64 = torch.randn(5, 2, 3, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y64, _ = gru64(x64)
    assert y64.dtype == torch.float64 and torch.equal(y64, gru64(x64)[0])


def test_unsupported_device_and_dtype_are_clear_errors():
    with pytest.raises(ValueError, match="device"):
        ft.GRU(3, 4, device="cuda")
    with pytest.raises(ValueError, match="dtype"):
        ft.GRU(3, 4, dtype=torch.float16)
    gru = ft.GRU(3, 4).to(torch.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        gru(torch.randn(5, 2, 3, dtype=torch.float16))


def test_constructor_and_attributes_are_nn_grus():
    for options in [
        dict(input_size=3, hidden_size=4),
        dict(
            input_size=3,
            hidden_size=4,
            num_layers=3,
            bias=False,
            batch_first=True,
            dropout=0.25,
            bidirectional=True,
            dtype=torch.float64,
        ),
    ]:
        ref, ours = twin_grus(**options)
        assert not isinstance(ours, nn.RNNBase)
        for attr in (
            "mode",
            "input_size",
            "hidden_size",
            "num_layers",
            "bias",
            "batch_first",
            "dropout",
            "bidirectional",
            "proj_size",
            "_flat_weights_names",
            "_all_weights",
        ):
            assert getattr(ours, attr) == getattr(ref, attr), attr
        assert repr(ours) == repr(ref)[:-1] + ", backend=fastgru)"
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
        for (name, a), b in zip(ref.named_parameters(), ours.parameters()):  # the same initial draws
            assert a.dtype == b.dtype and torch.equal(a, b), name
        assert [[w.shape for w in ws] for ws in ours.all_weights] == [[w.shape for w in ws] for ws in ref.all_weights]
    with pytest.warns(UserWarning, match="dropout"):
        ft.GRU(3, 4, dropout=0.5)
    for bad, error in [
        (dict(dropout=1.5), ValueError),
        (dict(bias=1), TypeError),
        (dict(hidden_size=0), ValueError),
        (dict(input_size=2.0), TypeError),
        (dict(num_layers=0), ValueError),
        (dict(proj_size=0), ValueError),
        (dict(proj_size=2), ValueError),
        (dict(nonsense=1), TypeError),
    ]:
        options = {"input_size": 3, "hidden_size": 4, **bad}
        assert raised(lambda: nn.GRU(**options)) is error
        assert raised(lambda: ft.GRU(**options)) is error


def test_state_dict_round_trips_bit_identically():
    for dtype in (torch.float32, torch.float64):
        ref = nn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=dtype)
        ours = ft.GRU(3, 4, num_layers=2, bidirectional=True, dtype=dtype)
        ours.load_state_dict(ref.state_dict())
        back = nn.GRU(3, 4, num_layers=2, bidirectional=True, dtype=dtype)
        back.load_state_dict(ours.state_dict())
        for sd in (ours.state_dict(), back.state_dict()):
            assert list(sd) == list(ref.state_dict())
            for name, value in ref.state_dict().items():
                assert sd[name].dtype == dtype and torch.equal(sd[name], value), name


def test_from_torch_to_torch_and_replace_gru():
    torch.manual_seed(12)
    shared = nn.GRU(3, 4, dtype=torch.float64).eval()
    frozen = nn.GRU(4, 2, num_layers=2, dropout=0.3, batch_first=True, dtype=torch.float64)
    frozen.weight_hh_l1.requires_grad_(False)
    model = nn.ModuleDict(
        {
            "encoder": nn.Sequential(nn.Identity(), nn.ModuleList([shared])),
            "again": shared,
            "inner": nn.ModuleDict({"deep": nn.Sequential(frozen)}),
        }
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert fastgru.torch.replace_gru(model) is model
    assert "GRU(3, 4, backend=fastgru)" in str(model)  # print(model) shows the swap
    assert not any(isinstance(m, nn.GRU) for m in model.modules())
    new_shared, new_frozen = model["encoder"][1][0], model["inner"]["deep"][0]
    assert isinstance(new_shared, ft.GRU) and model["again"] is new_shared
    assert not new_shared.training and new_frozen.training
    assert new_frozen.dropout == 0.3 and new_frozen.batch_first and new_frozen.num_layers == 2
    assert not new_frozen.weight_hh_l1.requires_grad and new_frozen.weight_hh_l0.requires_grad
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name].dtype == torch.float64 and torch.equal(after[name], value), name

    x = torch.randn(6, 2, 3, dtype=torch.float64)
    for a, b in zip(shared(x), new_shared(x)):
        assert_close(b, a, "from_torch output", 1e-10)
    back = new_shared.to_torch()
    assert type(back) is nn.GRU and not back.training
    for a, b in zip(back(x), shared(x)):
        assert torch.equal(a, b)
    assert isinstance(fastgru.torch.replace_gru(nn.GRU(3, 4)), ft.GRU)
    with pytest.raises(ValueError, match="reset_after"):
        ft.GRU(3, 4, reset_after=False).to_torch()
    with pytest.raises(TypeError):
        ft.GRU.from_torch(nn.LSTM(3, 4))


def test_reset_before_variant_matches_the_numpy_reference():
    torch.manual_seed(13)
    ours = ft.GRU(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, reset_after=False)
    ref = fastgru.GRU(3, 4, num_layers=2, bidirectional=True, dtype="float64", reset_after=False, backend="numpy")
    ref.load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(5, 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    hx = torch.randn(4, 2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    dy = torch.randn(5, 2, 8, dtype=torch.float64, generator=gen)
    dh_n = torch.randn(4, 2, 4, dtype=torch.float64, generator=gen)
    y, h_n = ours(x, hx)
    ((y * dy).sum() + (h_n * dh_n).sum()).backward()
    y_ref, h_n_ref = ref(x.detach().numpy(), hx.detach().numpy())
    dx_ref, dh0_ref = ref.backward(dy.numpy(), dh_n.numpy())
    expected = {
        "y": y_ref,
        "h_n": h_n_ref,
        "dx": dx_ref,
        "dh0": dh0_ref,
        **{f"grad {name}": g for name, g in ref.grads().items()},
    }
    actual = {
        "y": y,
        "h_n": h_n,
        "dx": x.grad,
        "dh0": hx.grad,
        **{f"grad {name}": p.grad for name, p in ours.named_parameters()},
    }
    for name, value in expected.items():
        assert_close(actual[name], torch.from_numpy(np.asarray(value)), name, 1e-10)


def test_dropout_between_layers_in_training_only():
    ref, ours = twin_grus(input_size=3, hidden_size=4, num_layers=2, dropout=1.0, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    # All of layer 0's output dropped: layer 1 sees zeros, in both implementations.
    for a, b in zip(ref(x), ours(x)):
        assert_close(b, a, "dropout=1 training", 1e-10)
    ours.dropout = ref.dropout = 0.5
    torch.manual_seed(15)
    first = ours(x)[0]
    torch.manual_seed(15)
    assert torch.equal(ours(x)[0], first)  # torch.manual_seed governs the masks
    assert not torch.equal(ours(x)[0], first)  # and they change from call to call
    ref.eval(), ours.eval()
    for a, b in zip(ref(x), ours(x)):
        assert_close(b, a, "eval", 1e-10)


def test_core_threads_follow_torch(restore_threads):
    gru = ft.GRU(3, 4)
    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            gru(torch.randn(5, 2, 3))
            assert fastgru.get_num_threads() == n
    finally:
        torch.set_num_threads(before)


def test_inference_keeps_no_workspace_and_eval_mode_still_differentiates():
    torch.manual_seed(16)
    ref, ours = twin_grus(input_size=3, hidden_size=4)
    ref.eval(), ours.eval()
    x = torch.randn(5, 2, 3)
    with torch.inference_mode():
        assert_close(ours(x)[0], ref(x)[0], "inference_mode", RTOL[torch.float32])
    xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref(xr)[1].sum().backward()
    ours(xo)[1].sum().backward()  # only h_n used: output's gradient is None
    assert_close(xo.grad, xr.grad, "dx in eval mode", RTOL[torch.float32])


def test_import_fastgru_does_not_import_torch():
    code = "import sys, fastgru; assert 'torch' not in sys.modules; import fastgru.torch; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_workspace_memory_is_reused_only_once_no_tensor_holds_it():
    args = [a.detach() if isinstance(a, torch.Tensor) else a for a in forward_args(True)]
    first = torch.ops.fastgru.gru_forward(*args)[2]
    second = torch.ops.fastgru.gru_forward(*args)[2]
    assert first.data_ptr() != second.data_ptr()
    address, first = first.data_ptr(), None
    assert torch.ops.fastgru.gru_forward(*args)[2].data_ptr() == address
    # Two forwards differentiated together: each keeps its own workspace until backward.
    ref, ours = twin_grus(input_size=3, hidden_size=4)
    x = torch.randn(5, 2, 3)
    grads = []
    for gru in (ref, ours):
        (gru(x)[0].sum() + gru(2 * x)[0].square().sum()).backward()
        grads.append([p.grad for p in gru.parameters()])
    for a, b in zip(*grads):
        assert_close(b, a, "two graphs", RTOL[torch.float32])


# From torch 2.14 vmap warns whenever it falls back to a loop over the vmapped dimension for an
# operator without a batching rule, as fastgru::gru_forward is (torch 2.13 loops silently). The loop
# is correct, a call of the operator per item; a batching rule folding the vmapped dimension into
# the batch is possible (sequences are independent) but is a change of the operator, not of a test.
VMAP_FALLBACK = pytest.mark.filterwarnings(
    "ignore:There is a performance drop because we have not yet implemented the batching "
    "rule for fastgru:UserWarning:torch._ops"
)


@VMAP_FALLBACK
def test_vmap_over_independent_inputs_equals_a_loop():
    torch.manual_seed(0)
    gru = ft.GRU(3, 4)
    xs = torch.randn(3, 5, 2, 3)
    batched = torch.vmap(lambda x: gru(x)[0])(xs)
    for i in range(3):
        assert_close(batched[i], gru(xs[i])[0], f"vmap item {i}", RTOL[torch.float32])


def test_regions_run_on_torchs_openmp_threads_with_the_same_results(rng, restore_threads):
    """After a fastgru.torch call the core's regions run on torch's OpenMP threads (one team of
    threads on the cores, not two); results equal fastgru's own pool's bit for bit, in every
    kind of region (batch slices, units split into parts, the GEMMs)."""
    from fastgru import _core

    torch.set_num_threads(2)
    gru = ft.GRU(3, 8)
    gru(torch.randn(4, 2, 3))
    if not _core.uses_openmp_threads():
        pytest.skip("this torch build has no OpenMP runtime loaded (libgomp / libomp)")
    layer = fastgru.GRU(24, 48, 2, bidirectional=True, reset_after=False, seed=0)
    results = {}
    try:
        for openmp in (True, False):
            _core.use_openmp_threads(openmp)
            fastgru.set_num_threads(2)
            for batch in (3, 40):  # units split into parts; batch slices
                x = rng.standard_normal((30, batch, 24)).astype(np.float32) if openmp else results[batch][0]
                layer.zero_grad()
                y, _ = layer(x)
                dx, _ = layer.backward(np.cos(y))
                got = (x, y, dx, layer.grad.copy())
                if openmp:
                    results[batch] = got
                else:
                    for want, have in zip(results[batch][1:], got[1:]):
                        np.testing.assert_array_equal(have, want)
    finally:
        _core.use_openmp_threads(True)


def test_a_smaller_openmp_team_falls_back_to_the_own_pool():
    """OMP_THREAD_LIMIT=1 gives a team of one where two were asked: the region must run on
    fastgru's own pool (a team of one would wait forever at a barrier of two)."""
    code = (
        "import numpy as np, torch, fastgru, fastgru.torch as ft\n"
        "from fastgru import _core\n"
        "torch.set_num_threads(2); ft.GRU(3, 4)(torch.randn(2, 1, 3))\n"
        "layer = fastgru.GRU(8, 64, seed=0); fastgru.set_num_threads(2)\n"
        "x = np.random.default_rng(0).standard_normal((20, 3, 8)).astype(np.float32)\n"
        "a = layer(x)[0]; _core.use_openmp_threads(False); b = layer(x)[0]\n"
        "print(_core.get_num_threads(), np.array_equal(a, b))\n"
    )
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2", "True"]


def test_import_without_torch_says_what_to_install():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "try:\n    import fastgru.torch\nexcept ImportError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install ".[torch]"' in result.stdout and "CPU" in result.stdout


# torch's own deprecation of torch.ao.quantization (a DeprecationWarning from torch 2.9 on).
@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
def test_torch_dynamic_quantization_warns_that_it_leaves_the_gru_in_float():
    torch.manual_seed(0)
    model = nn.Sequential(ft.GRU(3, 4))
    with pytest.warns(UserWarning, match="leaves fastgru.torch.GRU in float.*fastgru.quantize"):
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.GRU, nn.Linear}, dtype=torch.qint8)
    assert isinstance(quantized[0], ft.GRU)
    y, _ = quantized[0](torch.randn(5, 2, 3))
    assert y.shape == (5, 2, 4)


@pytest.mark.parametrize("policy, shared", [("PASSIVE", "False"), ("active", "True")])
def test_torch_threads_are_shared_unless_their_workers_sleep_at_once(policy, shared):
    """OMP_WAIT_POLICY=passive: torch's workers sleep right after each region and fastgru keeps
    its own pool (it was faster there); otherwise fastgru's regions run on torch's threads."""
    code = (
        "import torch, fastgru.torch as ft\nfrom fastgru import _core\n"
        "ft.GRU(3, 4)(torch.randn(2, 1, 3)); print(_core.uses_openmp_threads())\n"
    )
    env = dict(os.environ, OMP_WAIT_POLICY=policy)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    if shared == "True" and result.stdout.strip() == "False":
        pytest.skip("this torch build has no OpenMP runtime loaded")
    assert result.stdout.strip() == shared


def test_eager_calls_skip_the_operators_and_give_their_results_bit_for_bit():
    """Plain eager calls run the operators' bodies through an autograd.Function (the operators'
    dispatch costs about 0.1 ms a call); the operators themselves give the same bits."""
    args = forward_args(True)
    x, hx, params, lengths, dropout = args[:5]
    config = args[5:11]
    y_op, h_op, _ = torch.ops.fastgru.gru_forward(*args)
    gen = torch.Generator().manual_seed(9)
    dy, dh_n = torch.randn(y_op.shape, dtype=y_op.dtype, generator=gen), torch.randn(h_op.shape, dtype=y_op.dtype)
    op_grads = torch.autograd.grad((y_op, h_op), (x, hx, params), (dy, dh_n))
    # The parameters as one weight: concatenated in the Function, or handed over as its flat buffer.
    for flat in (None, params.detach()):
        y, h = ft._EagerGru.apply(x, hx, flat, lengths, dropout, config, params)
        eager_grads = torch.autograd.grad((y, h), (x, hx, params), (dy, dh_n))
        assert torch.equal(y, y_op) and torch.equal(h, h_op)
        for got, want in zip(eager_grads, op_grads):
            assert torch.equal(got, want)
    gru = ft.GRU(2, 3)
    with torch.profiler.profile() as prof:
        gru(torch.randn(5, 2, 2))[0].sum().backward()
    names = {event.name for event in prof.events()}
    assert not any("fastgru::" in name for name in names), names


@VMAP_FALLBACK
def test_batched_gradients_equal_one_gradient_at_a_time():
    """autograd.grad(is_grads_batched=True), which gradcheck uses: the eager backward hands batched
    gradients to the operator (torch loops over them)."""
    torch.manual_seed(10)
    gru = ft.GRU(2, 3, num_layers=2, dtype=torch.float64)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    y, _ = gru(x)
    grad_outputs = torch.randn(3, *y.shape, dtype=torch.float64)
    (batched,) = torch.autograd.grad(y, x, grad_outputs, is_grads_batched=True, retain_graph=True)
    for i in range(3):
        (one,) = torch.autograd.grad(y, x, grad_outputs[i], retain_graph=True)
        torch.testing.assert_close(batched[i], one, rtol=1e-12, atol=1e-12)


def parameters_are_one_buffer(gru):
    """Whether the forward hands the core the module's flat buffer as it is (no concatenation)."""
    return gru._flat_parameters(gru._flat_weights) is not None


def test_parameters_are_views_of_one_buffer_that_conversions_and_copies_keep():
    """The parameters live in one contiguous buffer, in the core's order (so the forward passes it
    without a copy); dtype conversions, deepcopy, pickling and share_memory() keep it so, and
    load_state_dict copies into it."""
    gru = ft.GRU(3, 4, num_layers=2, bidirectional=True)
    assert parameters_are_one_buffer(gru)
    flat = gru._flat_buffer
    assert flat.numel() == sum(p.numel() for p in gru.parameters())
    assert torch.equal(flat, torch.cat([p.detach().reshape(-1) for p in gru._flat_weights]))
    ref = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    gru.load_state_dict(ref.state_dict())
    assert parameters_are_one_buffer(gru) and torch.equal(gru.weight_hh_l1_reverse, ref.weight_hh_l1_reverse)
    for copy_ in (copy.deepcopy(gru), pickle.loads(pickle.dumps(gru))):
        assert parameters_are_one_buffer(copy_) and copy_._flat_buffer.data_ptr() != flat.data_ptr()
        assert all(torch.equal(a, b) for a, b in zip(copy_.parameters(), gru.parameters()))
    gru.share_memory()
    assert parameters_are_one_buffer(gru) and all(p.is_shared() for p in gru.parameters())
    gru.double()
    assert parameters_are_one_buffer(gru) and gru._flat_buffer.dtype == torch.float64
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(gru(x)[0], ref.double()(x)[0], rtol=1e-10, atol=1e-10)


def test_a_parameter_replaced_after_construction_still_gets_nn_grus_results_and_gradients():
    """A parameter that is no longer a view of the buffer (assigned anew, its .data replaced): the
    forward concatenates the parameters instead, and gradients still reach every parameter."""
    ref, ours = twin_grus(input_size=3, hidden_size=4, num_layers=2)
    for replace in ("assign", "data"):
        new = torch.randn(12, 4)
        for gru in (ref, ours):
            if replace == "assign":
                gru.weight_hh_l1 = nn.Parameter(new.clone())
            else:
                gru.weight_hh_l0.data = new.clone()
        assert not parameters_are_one_buffer(ours)
        x = torch.randn(5, 2, 3, requires_grad=True)
        weights = {"y": torch.randn(5, 2, 4), "h_n": torch.randn(2, 2, 4)}
        ref_out, ref_grads = run_and_differentiate(ref, x, None, weights)
        ref_grads = {name: g.clone() for name, g in ref_grads.items()}
        our_out, our_grads = run_and_differentiate(ours, x, None, weights)
        assert_close(our_out["output"], ref_out["output"], f"{replace}: output", RTOL[torch.float32])
        assert our_grads.keys() == ref_grads.keys()
        for name, g in ref_grads.items():
            assert_close(our_grads[name], g, f"{replace}: grad of {name}", RTOL[torch.float32])
        ours.flatten_parameters()  # as nn.GRU's: packs them again
        assert parameters_are_one_buffer(ours)


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_input_that_needs_no_gradient_skips_its_product_with_the_same_parameter_gradients(num_layers, bidirectional):
    """x without requires_grad (a first layer fed with data): the core's backward skips dx; the
    parameter and hx gradients are those with dx computed, bit for bit, and nn.GRU's."""
    ref, ours = twin_grus(input_size=3, hidden_size=4, num_layers=num_layers, bidirectional=bidirectional)
    gen = torch.Generator().manual_seed(3)
    D = 2 if bidirectional else 1
    x = torch.randn(6, 2, 3, generator=gen)
    hx = torch.randn(num_layers * D, 2, 4, generator=gen, requires_grad=True)
    weights = {"y": torch.randn(6, 2, D * 4, generator=gen), "h_n": torch.randn(num_layers * D, 2, 4, generator=gen)}
    grads = {}
    for needs_dx in (True, False):
        _, g = run_and_differentiate(ours, x.clone().requires_grad_(needs_dx), hx, weights)
        grads[needs_dx] = {name: None if t is None else t.clone() for name, t in g.items()}
    assert grads[False].pop("input") is None and grads[True].pop("input") is not None
    _, want = run_and_differentiate(ref, x, hx, weights)
    for name, g in grads[False].items():
        assert torch.equal(g, grads[True][name]), name
        assert_close(g, want[name], f"grad of {name}", RTOL[torch.float32])


@pytest.mark.parametrize("modified", ["input", "parameter"])
@pytest.mark.parametrize("create_graph", [False, True])
def test_backward_refuses_what_was_modified_in_place_after_the_forward_as_nn_gru_does(modified, create_graph):
    """A parameter changed in place after the forward: refused by the Function's own version check
    (the flat buffer's views do not share its version counter); the input changed: the core's first-order backward reads its copy in the workspace, and a
    backward that builds a graph (which recomputes the forward from the input) refuses, as
    nn.GRU's does in both cases."""
    ref, ours = twin_grus(input_size=3, hidden_size=4, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    errors = {}
    for name, gru in (("nn.GRU", ref), ("fastgru", ours)):
        inner = x * 1  # a non-leaf, which may change in place
        y, _ = gru(inner)
        with torch.no_grad():
            (gru.weight_hh_l0 if modified == "parameter" else inner).mul_(2)
        try:
            torch.autograd.grad(y.sum(), (x, gru.weight_ih_l0), create_graph=create_graph)
            errors[name] = None
        except RuntimeError as error:
            errors[name] = str(error)
    assert errors["nn.GRU"] is not None and "inplace" in errors["nn.GRU"]
    if modified == "input" and not create_graph:
        assert errors["fastgru"] is None  # the gradients of the forward that ran: nothing to refuse
    else:
        assert errors["fastgru"] is not None and "inplace" in errors["fastgru"], errors["fastgru"]
