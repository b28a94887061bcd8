"""fastgru.torch.GRU beyond first-order backward: double backward (create_graph=True,
gradgradcheck), torch.func transforms (grad, jacrev, jacfwd, jvp, hessian, vmap, vmap over grad),
forward-mode AD and per-sample gradients with expanded weights. The truth is torch.nn.GRU (with
the same parameter tensors), finite differences, or the NumPy reference for reset_after=False."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_torch import assert_close, twin_grus  # noqa: E402
from torch import nn  # noqa: E402
from torch.autograd import forward_ad  # noqa: E402
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vmap  # noqa: E402
from torch.nn.utils._per_sample_grad import call_for_per_sample_grads  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import fastgru  # noqa: E402
import fastgru.torch as ft  # noqa: E402

F64 = torch.float64
FIRST, SECOND = 1e-10, 1e-9  # relative tolerances of first- and second-order results (float64)
# Forward-mode AD loads torch's jvp decompositions on first use, which calls torch.jit.script.


def jit_script_deprecated(test):
    """torch's forward-mode decompositions call torch.jit.script, which is deprecated: a
    DeprecationWarning up to torch 2.14, a FutureWarning from 2.15. That warning alone is accepted."""
    for category in ("DeprecationWarning", "FutureWarning"):
        test = pytest.mark.filterwarnings(f"ignore:`torch.jit.script` is deprecated:{category}")(test)
    return test


class Case:
    """A GRU configuration and its inputs: x is padded (T, B, I), or (B, T, I) when batch_first,
    or (T, I) unbatched; lengths packs it into a PackedSequence inside the call, so that every
    gradient is taken with respect to x."""

    def __init__(self, T=4, B=3, I=2, H=3, kind="padded", with_hx=True, seed=0, **options):
        self.options = dict(input_size=I, hidden_size=H, dtype=F64, **options)
        self.kind, self.batch_first = kind, options.get("batch_first", False)
        L = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
        gen = torch.Generator().manual_seed(seed)
        if kind == "unbatched":
            self.x = torch.randn(T, I, dtype=F64, generator=gen)
            self.hx = torch.randn(L, H, dtype=F64, generator=gen) if with_hx else None
        else:
            self.x = torch.randn((B, T, I) if self.batch_first else (T, B, I), dtype=F64, generator=gen)
            self.hx = torch.randn(L, B, H, dtype=F64, generator=gen) if with_hx else None
        self.lengths = None
        if kind.startswith("packed"):
            self.lengths = torch.tensor([T, 1, T - 1, 2][:B])
            if kind == "packed_sorted":
                self.lengths = self.lengths.sort(descending=True).values

    def leaves(self, gru):
        """Fresh leaf tensors (x, hx, *parameters) requiring grad."""
        tensors = [self.x, self.hx, *gru.parameters()]
        return [None if t is None else t.detach().clone().requires_grad_() for t in tensors]

    def input(self, x):
        """x, or x packed when the case has lengths."""
        if self.lengths is None:
            return x
        return pack_padded_sequence(
            x, self.lengths, batch_first=self.batch_first, enforce_sorted=self.kind == "packed_sorted"
        )

    def call(self, gru, x, hx, *params):
        """(output data, h_n) of gru with params in place of its parameters."""
        output, h_n = functional_call(gru, dict(zip(dict(gru.named_parameters()), params)), (self.input(x), hx))
        return (output.data if self.lengths is not None else output), h_n


def first_and_second_order(case, gru, leaves, seed=1):
    """Gradients of a fixed random linear function of the outputs w.r.t. leaves, taken with
    create_graph=True, then gradients of a fixed random linear function of those (a
    Hessian-vector product through the GRU)."""
    gen = torch.Generator().manual_seed(seed)
    y, h_n = case.call(gru, *leaves)
    loss = (y * torch.randn(y.shape, dtype=F64, generator=gen)).sum() + (
        h_n * torch.randn(h_n.shape, dtype=F64, generator=gen)
    ).sum()
    used = [t for t in leaves if t is not None]
    first = torch.autograd.grad(loss, used, create_graph=True)
    second = torch.autograd.grad(sum((g * torch.randn(g.shape, dtype=F64, generator=gen)).sum() for g in first), used)
    return first, second


# ---- double backward ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["padded", "unbatched", "packed_sorted", "packed_unsorted"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (1, True), (2, False), (2, True)])
def test_double_backward_matches_nn_gru(kind, num_layers, bidirectional):
    for batch_first, bias, with_hx in itertools.product([False, True], repeat=3):
        what = f"batch_first={batch_first} bias={bias} hx={with_hx}"
        case = Case(
            kind=kind,
            with_hx=with_hx,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            bias=bias,
        )
        ref, ours = twin_grus(**case.options)
        expected = first_and_second_order(case, ref, case.leaves(ref))
        actual = first_and_second_order(case, ours, case.leaves(ours))
        for order, tol, want, got in zip(("first", "second"), (FIRST, SECOND), expected, actual):
            for i, (a, b) in enumerate(zip(got, want)):
                assert_close(a, b, f"{what}: {order}-order gradient of leaf {i}", tol)


def nn_gru_layers_with_masks(gru, masks, x, hx, *params):
    """gru's computation as one single-layer torch.nn.GRU per layer, with the given dropout
    multipliers (L-1, T, B, D*H) applied to the input of every layer after the first.
    x time-major, params: gru's parameters in order."""
    D = 2 if gru.bidirectional else 1
    per_layer = len(params) // gru.num_layers
    layer_input, h_n = x, []
    for k in range(gru.num_layers):
        if k > 0:
            layer_input = layer_input * masks[k - 1]
        layer = nn.GRU(
            layer_input.shape[-1], gru.hidden_size, bias=gru.bias, bidirectional=gru.bidirectional, dtype=F64
        )
        names = [name.replace(f"_l{k}", "_l0") for name, _ in gru.named_parameters() if f"_l{k}" in name]
        layer_input, h = functional_call(
            layer,
            dict(zip(names, params[k * per_layer : (k + 1) * per_layer])),
            (layer_input, None if hx is None else hx[k * D : (k + 1) * D]),
        )
        h_n.append(h)
    return layer_input, torch.cat(h_n)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_double_backward_with_dropout_matches_nn_gru_layers_with_the_same_masks(monkeypatch, bidirectional):
    """Training mode, dropout between 3 layers: the masks the forward drew (recorded as they reach
    the operator) applied between single-layer nn.GRUs give the same first and second order."""
    torch.manual_seed(3)
    ours = ft.GRU(2, 3, num_layers=3, dropout=0.5, bidirectional=bidirectional, dtype=F64)
    masks, forward = [], ft._gru_forward_impl
    monkeypatch.setattr(ft, "_gru_forward_impl", lambda *args: masks.append(args[4]) or forward(*args))
    case = Case(I=2, H=3, num_layers=3, bidirectional=bidirectional)
    torch.manual_seed(4)
    actual = first_and_second_order(case, ours, case.leaves(ours))
    assert len(masks) == 1 and masks[0].shape == (2, 4, 3, 6 if bidirectional else 3)
    assert (masks[0] == 0).any() and (masks[0] == 2).any()
    reference = Case(I=2, H=3, num_layers=3, bidirectional=bidirectional)
    reference.call = lambda gru, *leaves: nn_gru_layers_with_masks(ours, masks[0], *leaves)
    expected = first_and_second_order(reference, ours, reference.leaves(ours))
    for order, tol, want, got in zip(("first", "second"), (FIRST, SECOND), expected, actual):
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{order}-order gradient of leaf {i}", tol)


@pytest.mark.parametrize(
    "options",
    [
        dict(num_layers=2, bidirectional=True),
        dict(num_layers=2, bidirectional=True, kind="packed_unsorted"),
        dict(batch_first=True, kind="packed_sorted", with_hx=False),
        dict(kind="unbatched", bias=False),
        dict(num_layers=2, bidirectional=True, reset_after=False),
        dict(reset_after=False, kind="packed_unsorted", batch_first=True, bias=False),
        dict(num_layers=2, dropout=0.5, bidirectional=True),
        dict(num_layers=3, dropout=0.5, reset_after=False),
    ],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()),
)
def test_gradgradcheck(options):
    """Finite differences of the (differentiable) gradients, for both variants; dropout: the same
    masks at every evaluation (torch.manual_seed before each)."""
    case = Case(T=3, B=2, I=2, H=2, **options)
    torch.manual_seed(5)
    gru = ft.GRU(**case.options)
    assert gru.training

    x, hx, *params = case.leaves(gru)

    def f(x, *rest):  # rest: hx (when the case has one) and the parameters
        torch.manual_seed(6)
        return case.call(gru, x, *(rest if hx is not None else (None, *rest)))

    leaves = (x, *([hx] if hx is not None else []), *params)
    assert torch.autograd.gradcheck(f, leaves)
    assert torch.autograd.gradgradcheck(f, leaves)


def reference_gradients(gru, x, hx, dy, dh_n):
    """(y, h_n, dx, dhx, {name: gradient}) of fastgru's NumPy reference with gru's weights:
    x (T, B, I) time-major, hx (L*D, B, H)."""
    ref = fastgru.GRU(
        gru.input_size,
        gru.hidden_size,
        num_layers=gru.num_layers,
        bidirectional=gru.bidirectional,
        bias=gru.bias,
        dtype="float64",
        reset_after=gru.reset_after,
        backend="numpy",
    )
    ref.load_state_dict({name: p.detach().numpy() for name, p in gru.named_parameters()})
    y, h_n = ref(x.detach().numpy(), hx.detach().numpy())
    dx, dhx = ref.backward(dy.numpy(), dh_n.numpy())
    return y, h_n, dx, dhx, ref.grads()


def test_reset_before_create_graph_gradients_match_the_numpy_reference():
    """reset_after=False has no nn.GRU: with create_graph=True (the torch-ops backward) its
    first-order gradients are the reference's."""
    torch.manual_seed(7)
    gru = ft.GRU(2, 3, num_layers=2, bidirectional=True, reset_after=False, dtype=F64)
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(4, 3, 2, dtype=F64, generator=gen, requires_grad=True)
    hx = torch.randn(4, 3, 3, dtype=F64, generator=gen, requires_grad=True)
    dy, dh_n = torch.randn(4, 3, 6, dtype=F64, generator=gen), torch.randn(4, 3, 3, dtype=F64, generator=gen)
    y, h_n = gru(x, hx)
    grads = torch.autograd.grad((y * dy).sum() + (h_n * dh_n).sum(), [x, hx, *gru.parameters()], create_graph=True)
    assert all(g.requires_grad for g in grads)
    _, _, dx, dhx, dparams = reference_gradients(gru, x, hx, dy, dh_n)
    expected = [dx, dhx, *(dparams[name] for name, _ in gru.named_parameters())]
    for i, (got, want) in enumerate(zip(grads, expected)):
        assert_close(got, torch.from_numpy(np.asarray(want)), f"gradient {i}", FIRST)


def test_double_backward_under_bfloat16_autocast_is_a_clear_error():
    gru = ft.GRU(3, 4)
    x = torch.randn(5, 2, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = gru(x)
    (dx,) = torch.autograd.grad(y.sum(), x)  # first order: the bfloat16 products
    assert torch.isfinite(dx).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = gru(x)
    with pytest.raises(RuntimeError, match="compute_dtype='bfloat16'"):
        torch.autograd.grad(y.sum(), x, create_graph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError, match="bfloat16 autocast"):
        grad(lambda x: gru(x)[0].sum())(x)


# ---- torch.func, forward-mode AD ------------------------------------------------------------

FUNC_OPTIONS = [
    dict(),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(kind="unbatched", bias=False),
    dict(num_layers=2, with_hx=False),
]
FUNC_IDS = ["plain", "layers_bidirectional_batch_first", "unbatched_no_bias", "no_hx"]


def func_pair(options):
    case = Case(**options)
    ref, ours = twin_grus(**case.options)
    return case, ref, ours


@pytest.mark.parametrize(
    "options",
    FUNC_OPTIONS + [dict(num_layers=2, bidirectional=True, kind="packed_unsorted")],
    ids=FUNC_IDS + ["packed"],
)
def test_func_grad_matches_nn_gru(options):
    """torch.func.grad of a functional_call w.r.t. parameters, hx and input (not packed input:
    pack_padded_sequence's own backward has no functorch support). The truth is nn.GRU's ordinary
    autograd (its torch.func.grad fails on packed input)."""
    case, ref, ours = func_pair(options)

    def loss(params, hx, x, gru):
        y, h_n = case.call(gru, x, hx, *params)
        return y.sin().sum() + h_n.square().sum()

    x, hx, *params = case.leaves(ours)
    wrt = [params, hx, x][: 2 if case.lengths is not None else 3]
    argnums = tuple(i for i, t in enumerate(wrt) if t is not None)
    actual = grad(loss, argnums=argnums)(params, hx, x, ours)
    expected = torch.autograd.grad(loss(params, hx, x, ref), [*params] + [wrt[i] for i in argnums[1:]])
    actual = [*actual[0], *actual[1:]]
    assert len(actual) == len(expected)
    for i, (got, want) in enumerate(zip(actual, expected)):
        assert_close(got, want, f"gradient {i}", FIRST)


@jit_script_deprecated
@pytest.mark.parametrize("options", FUNC_OPTIONS, ids=FUNC_IDS)
def test_func_jacobians_jvp_and_hessian_match_nn_gru(options):
    """jacrev and jacfwd (w.r.t. input and parameters), jvp and hessian equal nn.GRU's own."""
    case, ref, ours = func_pair(options)
    x, hx, *params = case.leaves(ours)
    params = [p.detach() for p in params]
    gen = torch.Generator().manual_seed(9)
    tangent = torch.randn(x.shape, dtype=F64, generator=gen)

    def transforms(gru):
        out = lambda x, params: torch.cat([t.reshape(-1) for t in case.call(gru, x, hx, *params)])  # noqa: E731
        return {
            "jacrev x": jacrev(out)(x.detach(), params),
            "jacrev params": jacrev(out, argnums=1)(x.detach(), params),
            "jacfwd x": jacfwd(out)(x.detach(), params),
            "jacfwd params": jacfwd(out, argnums=1)(x.detach(), params),
            "jvp": jvp(lambda x: out(x, params), (x.detach(),), (tangent,)),
            "hessian x": hessian(lambda x: out(x, params).sin().sum())(x.detach()),
        }

    expected, actual = transforms(ref), transforms(ours)
    for name, want in expected.items():
        want, got = torch.utils._pytree.tree_leaves(want), torch.utils._pytree.tree_leaves(actual[name])
        assert len(got) == len(want)
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{name} [{i}]", SECOND if name.startswith("hessian") else FIRST)


@jit_script_deprecated
def test_forward_mode_ad_with_dual_tensors_matches_nn_gru():
    """Dual tensors (torch.autograd.forward_ad) as the data of a PackedSequence and as hx."""
    case, ref, ours = func_pair(dict(num_layers=2, bidirectional=True, kind="packed_unsorted"))
    packed = case.input(case.x)
    gen = torch.Generator().manual_seed(10)
    tangents = [torch.randn(t.shape, dtype=F64, generator=gen) for t in (packed.data, case.hx)]
    results = []
    for gru in (ref, ours):
        with forward_ad.dual_level():
            data, hx = (forward_ad.make_dual(t, d) for t, d in zip((packed.data, case.hx), tangents))
            y, h_n = gru(packed._replace(data=data), hx)
            results.append([forward_ad.unpack_dual(t).tangent for t in (y.data, h_n)])
    for name, got, want in zip(("dy", "dh_n"), *reversed(results)):
        assert_close(got, want, name, FIRST)


def test_vmap_of_grad_gives_per_sample_gradients():
    """vmap over grad (nn.GRU's fails on it) equals nn.GRU's gradients sample by sample, with an
    initial state per sample and the reset-before variant against the NumPy reference."""
    torch.manual_seed(11)
    ref, ours = twin_grus(input_size=2, hidden_size=3, num_layers=2, bidirectional=True, batch_first=True, dtype=F64)
    gen = torch.Generator().manual_seed(12)
    xs, hxs = torch.randn(5, 4, 2, dtype=F64, generator=gen), torch.randn(5, 4, 3, dtype=F64, generator=gen)
    params = {name: p.detach() for name, p in ours.named_parameters()}

    def loss(params, x, hx, gru):  # one sample: x (T, I), hx (L*D, H)
        y, h_n = functional_call(gru, params, (x.unsqueeze(0), hx.unsqueeze(1)))
        return y.sin().sum() + h_n.square().sum()

    per_sample = vmap(grad(loss, argnums=(0, 1)), in_dims=(None, 0, 0, None))(params, xs, hxs, ours)
    for b in range(5):
        x = xs[b].clone().requires_grad_()
        ref.zero_grad()
        loss(dict(ref.named_parameters()), x, hxs[b], ref).backward()
        for name, p in ref.named_parameters():
            assert_close(per_sample[0][name][b], p.grad, f"sample {b}: {name}", FIRST)
        assert_close(per_sample[1][b], x.grad, f"sample {b}: x", FIRST)

    torch.manual_seed(13)
    before = ft.GRU(2, 3, reset_after=False, dtype=F64)
    params = {name: p.detach() for name, p in before.named_parameters()}
    dy = torch.randn(4, 1, 3, dtype=F64, generator=gen)

    def linear(params, x):
        y, _ = functional_call(before, params, (x.unsqueeze(1),))
        return (y * dy).sum()

    per_sample = vmap(grad(linear), in_dims=(None, 1))(params, xs.transpose(0, 1))
    for b in range(5):
        *_, expected = reference_gradients(
            before, xs[b].unsqueeze(1), torch.zeros(1, 1, 3, dtype=F64), dy, torch.zeros(1, 1, 3, dtype=F64)
        )
        for name, value in expected.items():
            assert_close(per_sample[name][b], torch.from_numpy(np.asarray(value)), f"sample {b}: {name}", FIRST)


def test_vmap_over_stacked_parameters_is_an_ensemble():
    """vmap of a functional_call over stacked parameters (model ensembling, torch.func.stack_module_state)
    runs each member, as nn.GRU would one by one (nn.GRU has no batching rule)."""
    members = [nn.GRU(3, 4, num_layers=2, dtype=F64) for _ in range(3)]
    params, _ = torch.func.stack_module_state([ft.GRU.from_torch(m) for m in members])
    x = torch.randn(5, 2, 3, dtype=F64)
    shell = ft.GRU(3, 4, num_layers=2, dtype=F64, device="meta")
    y, h_n = vmap(lambda p: functional_call(shell, p, (x,)))(params)
    for i, member in enumerate(members):
        want_y, want_h = member(x)
        assert_close(y[i], want_y, f"member {i}: y", FIRST)
        assert_close(h_n[i], want_h, f"member {i}: h_n", FIRST)


def test_ordinary_training_and_inference_never_leave_the_compiled_operators(monkeypatch):
    """The torch-ops implementation only serves what the operators cannot: first-order training
    (dropout, packed input, hx) and inference keep their speed."""

    def refuse(*args):
        raise AssertionError("the torch-ops GRU ran")

    monkeypatch.setattr(ft, "_torch_gru", refuse)
    case = Case(num_layers=2, bidirectional=True, kind="packed_unsorted")
    gru = ft.GRU(**case.options, dropout=0.3)
    x, hx, *params = case.leaves(gru)
    y, h_n = case.call(gru, x, hx, *params)
    torch.autograd.grad(y.sum() + h_n.sum(), [x, hx, *params])
    with torch.no_grad():
        gru(case.x)
    with pytest.raises(AssertionError, match="torch-ops"):
        grad(lambda x: gru(x)[0].sum())(case.x)


# ---- per-sample gradients with expanded weights --------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(num_layers=2, bidirectional=True),
        dict(batch_first=True, num_layers=2),
        dict(kind="packed_unsorted", bidirectional=True),
        dict(bias=False, with_hx=False),
    ],
    ids=["plain", "layers_bidirectional", "batch_first", "packed", "no_bias_no_hx"],
)
@pytest.mark.parametrize("loss_reduction", ["sum", "mean"])
def test_expanded_weights_give_per_sample_gradients(options, loss_reduction):
    """call_for_per_sample_grads: grad_sample equals nn.GRU's gradient of each sample alone (and
    nn.GRU's own grad_sample, where it has one: time-major input)."""
    case, ref, ours = func_pair(options)
    B = 3

    def loss(y, h_n):  # a sum of one term per sample
        return y.sin().sum() + h_n.square().sum()

    def grad_samples(gru):
        y, h_n = call_for_per_sample_grads(gru, batch_size=B, loss_reduction=loss_reduction)(
            case.input(case.x), case.hx
        )
        (loss(y.data if case.lengths is not None else y, h_n) / (B if loss_reduction == "mean" else 1)).backward()
        grads = {name: p.grad_sample for name, p in gru.named_parameters()}
        for p in gru.parameters():
            p.grad_sample = None
        return grads

    actual = grad_samples(ours)
    # As nn.GRU's: grad_sample's rows follow the batch the GRU computes, a PackedSequence's sorted order.
    order = range(B) if case.lengths is None else case.input(case.x).sorted_indices.tolist()
    for row, b in enumerate(order):
        sample = Case(**options)
        sample.x = case.x[b : b + 1] if case.batch_first else case.x[:, b : b + 1]
        sample.hx = None if case.hx is None else case.hx[:, b : b + 1]
        if case.lengths is not None:
            sample.lengths = case.lengths[b : b + 1]
        expected = torch.autograd.grad(
            loss(*sample.call(ref, sample.x, sample.hx, *ref.parameters())), list(ref.parameters())
        )
        for (name, _), want in zip(ref.named_parameters(), expected):
            assert_close(actual[name][row], want, f"sample {b}: {name}", FIRST)
    if not case.batch_first:  # nn.GRU's expanded weights fail on batch-first input
        for name, want in grad_samples(ref).items():
            assert_close(actual[name], want, f"nn.GRU's grad_sample of {name}", FIRST)
