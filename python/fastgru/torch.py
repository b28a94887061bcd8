"""fastgru.torch: a drop-in torch.nn.GRU whose forward and backward run in fastgru's core.

    import fastgru.torch
    model = fastgru.torch.replace_gru(model)     # every nn.GRU inside becomes fastgru.torch.GRU

`GRU` has torch.nn.GRU's constructor, attributes, parameter names, shapes, order and
initialisation, so state_dicts move both ways unchanged. It is a plain nn.Module (not an
nn.RNNBase, which torch.compile refuses to trace): its computation is two operators registered
with torch.library.custom_op, `fastgru::gru_forward` and `fastgru::gru_backward`, with fake
(shape) implementations and an autograd formula, so torch.compile, torch.export and
torch.library.opcheck see through it.

The training-mode forward keeps what backward needs in one workspace tensor (as cuDNN's
"reserve space"), an output of the forward operator that the backward operator reads. It is
uint8 so that autograd never builds a gradient for it.

What the operators cannot do (double backward, torch.func transforms, forward-mode AD, expanded
weights for per-sample gradients) runs through _torch_gru, the same computation in differentiable
torch operators; ordinary training and inference never take that path.

Threads: the operators run the core on torch.get_num_threads() threads (they call
fastgru.set_num_threads when the two differ), so torch.set_num_threads(n) governs both, and
from the first operator call on, fastgru's parallel regions run on the threads of torch's
OpenMP runtime instead of fastgru's own pool (fastgru._core.use_openmp_threads): after each
torch op its idle workers spin on the cores, and a second team would fight them.
"""

import functools
import math
import numbers
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Optional, TypeVar

import numpy as np
import numpy.typing as npt

try:
    import torch
except ImportError as exc:
    raise ImportError(
        'fastgru.torch needs PyTorch 2.4 or newer: pip install ".[torch]" in a clone of fastgru '
        '("fastgru[torch]" once it is on the package index), or pip install torch; for the CPU-only '
        "build, use PyTorch's CPU wheel index (see pytorch.org)"
    ) from exc
from torch import Tensor, nn
from torch.autograd import forward_ad
from torch.nn import functional as F
from torch.nn.utils._expanded_weights import ExpandedWeight
from torch.nn.utils.rnn import PackedSequence

from . import _core
from ._checks import core_entry

if not hasattr(torch.library, "custom_op"):
    raise ImportError(
        f'fastgru.torch needs torch >= 2.4 (pip install ".[torch]" in a clone of fastgru), '
        f"found torch {torch.__version__}"
    )

__all__ = ["GRU", "replace_gru", "share_torch_threads"]

_Module = TypeVar("_Module", bound=nn.Module)

_CORE_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


@functools.cache
def _config(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
    compute_dtype: str,
) -> _core.GruConfig:
    return _core.GruConfig(input_size, hidden_size, num_layers, bidirectional, bias, reset_after, compute_dtype)


def _workspace_bytes(config: _core.GruConfig, steps: Any, batch: Any, dtype: torch.dtype) -> Any:
    """Bytes of the core's training workspace; steps and batch may be symbolic (SymInt): the
    core's size is steps * batch * its size for one step of one sequence."""
    return steps * batch * _core.gru_workspace_size(config, 1, 1) * dtype.itemsize


class _WorkspacePool:
    """Training workspaces whose tensors have died, kept for the next forward. A workspace is
    tens of megabytes at typical sizes: allocated afresh, every 4 KiB page faults on first touch
    (on a virtual machine that can cost as much as the GRU's arithmetic), and the C allocator
    hands such blocks back to the OS at every free. A workspace tensor is made with
    torch.from_numpy over a pooled array, so the array's reference count tells whether any
    tensor (or autograd's saved copy) still uses it."""

    def __init__(self, capacity: int = 4) -> None:
        self._arrays: list[npt.NDArray[np.uint8]] = []
        self._capacity = capacity
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> Tensor:
        """A uint8 tensor of nbytes whose memory no other live tensor uses."""
        with self._lock:
            arrays, fit = self._arrays, -1
            for i in range(len(arrays)):  # the smallest free array that fits
                smaller = fit < 0 or arrays[i].nbytes < arrays[fit].nbytes
                if arrays[i].nbytes >= nbytes and smaller and _references(arrays, i) <= _UNSHARED:
                    fit = i
            if fit >= 0:
                return torch.from_numpy(arrays[fit][:nbytes])
            array = np.empty(nbytes, np.uint8)
            free = [i for i in range(len(arrays)) if _references(arrays, i) <= _UNSHARED]
            if len(arrays) >= self._capacity and free:
                del arrays[min(free, key=lambda i: arrays[i].nbytes)]
            if len(arrays) < self._capacity:
                arrays.append(array)
            return torch.from_numpy(array)


def _references(arrays: list[npt.NDArray[np.uint8]], i: int) -> int:
    return sys.getrefcount(arrays[i])


# What _references gives for an array that only its list holds (measured, not assumed: how
# many temporary references an interpreter counts may differ between Python versions).
_UNSHARED = _references([np.empty(0, np.uint8)], 0)
_workspaces = _WorkspacePool()


# With OMP_WAIT_POLICY=passive torch's workers sleep at once after each region, so every one of
# fastgru's many short regions would wake them from sleep: there the own pool (which spins a
# little first) was faster (a long training step at 2 threads: 67.7 against 79.9 ms), and there
# are no spinning workers to fight.
_share_threads = {"wanted": os.environ.get("OMP_WAIT_POLICY", "").strip().lower() != "passive", "done": False}


def share_torch_threads(share: bool = True) -> bool:
    """share=True (the default from the first operator call on, unless OMP_WAIT_POLICY=passive):
    fastgru's parallel regions run on the threads of torch's OpenMP runtime; False: on fastgru's
    own pool. Results are the same either way; beside torch, whose idle workers spin after each
    op, sharing avoids two teams fighting for the cores. Returns whether regions now run on
    torch's threads."""
    _share_threads.update(wanted=bool(share), done=True)
    return _core.use_openmp_threads(bool(share))


def _use_torch_threads() -> None:
    """torch.get_num_threads() threads, torch's own unless share_torch_threads(False) said otherwise."""
    if not _share_threads["done"]:
        share_torch_threads(_share_threads["wanted"])
    threads = torch.get_num_threads()
    if _core.get_num_threads() != threads:
        _core.set_num_threads(threads)


def _array(tensor: Tensor | None) -> npt.NDArray[Any] | None:
    """A NumPy view of a contiguous CPU tensor (no copy); None stays None."""
    if tensor is None:
        return None
    return tensor.detach().numpy() if tensor.requires_grad else tensor.numpy()


# -- the operators ---------------------------------------------------------------------------
def _gru_forward_impl(
    x: Tensor,
    hx: Optional[Tensor],
    params: Tensor,
    lengths: Optional[Tensor],
    dropout: Optional[Tensor],
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
    compute_dtype: str,
    keep_workspace: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """x (T, B, I) time-major; hx (L*D, B, H) or None for zeros; params: every parameter
    flattened and concatenated in torch.nn.GRU's order; lengths (B,) int64 in 1..T or None;
    dropout (L-1, T, B, D*H) multipliers for the inputs of layers 1.. or None; compute_dtype
    "float32" or "bfloat16" (the products' operands, float32 tensors only: fastgru.GRU).
    Returns y (T, B, D*H), h_n (L*D, B, H) and the training workspace (uint8; empty unless
    keep_workspace)."""
    _use_torch_threads()
    config = _config(x.shape[2], hidden_size, num_layers, bidirectional, bias, reset_after, compute_dtype)
    dtype = _CORE_DTYPES[x.dtype]
    workspace = (
        _workspaces.take(_workspace_bytes(config, x.shape[0], x.shape[1], x.dtype))
        if keep_workspace
        else torch.empty(0, dtype=torch.uint8)
    )
    y, h_n = core_entry("gru_forward", dtype)(
        config,
        _array(params),
        _array(x),
        _array(hx),
        _array(lengths),
        _array(dropout),
        workspace.numpy().view(dtype) if keep_workspace else None,
    )
    return torch.from_numpy(y), torch.from_numpy(h_n), workspace


gru_forward = torch.library.custom_op("fastgru::gru_forward", mutates_args=(), device_types="cpu")(_gru_forward_impl)


@gru_forward.register_fake
def _(
    x: Tensor,
    hx: Tensor | None,
    params: Tensor,
    lengths: Tensor | None,
    dropout: Tensor | None,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
    compute_dtype: str,
    keep_workspace: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    T, B, I = x.shape
    D = 2 if bidirectional else 1
    config = _config(int(I), hidden_size, num_layers, bidirectional, bias, reset_after, compute_dtype)
    size = _workspace_bytes(config, T, B, x.dtype) if keep_workspace else 0
    return (
        x.new_empty((T, B, D * hidden_size)),
        x.new_empty((num_layers * D, B, hidden_size)),
        x.new_empty((size,), dtype=torch.uint8),
    )


def _gru_backward_impl(
    dy: Tensor,
    dh_n: Optional[Tensor],
    params: Tensor,
    workspace: Tensor,
    lengths: Optional[Tensor],
    dropout: Optional[Tensor],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
    compute_dtype: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """Backward of the gru_forward that returned workspace (with the same params, lengths and
    dropout): dy (T, B, D*H), dh_n (L*D, B, H) or None for zeros. Returns dx (T, B, I),
    dh0 (L*D, B, H) and the gradient of params."""
    dx, dh0, dparams = _core_backward(
        dy,
        dh_n,
        params,
        workspace,
        lengths,
        dropout,
        input_size,
        hidden_size,
        num_layers,
        bidirectional,
        bias,
        reset_after,
        compute_dtype,
    )
    assert dx is not None
    return dx, dh0, dparams


def _core_backward(
    dy: Tensor,
    dh_n: Tensor | None,
    params: Tensor,
    workspace: Tensor,
    lengths: Tensor | None,
    dropout: Tensor | None,
    input_size: int,
    *config: Any,
    input_grad: bool = True,
) -> tuple[Tensor | None, Tensor, Tensor]:
    """_gru_backward_impl's body; input_grad=False: dx is None, and the core skips its product."""
    _use_torch_threads()
    dtype = _CORE_DTYPES[dy.dtype]
    # Written, not added to, by the core: no zero fill first.
    dparams = np.empty(params.shape[0], dtype)
    dx, dh0 = core_entry("gru_backward", dtype)(
        _config(input_size, *config),
        _array(params),
        workspace.numpy().view(dtype),
        _array(dy),
        dparams,
        _array(dh_n),
        _array(lengths),
        _array(dropout),
        input_grad,
        False,
    )
    return None if dx is None else torch.from_numpy(dx), torch.from_numpy(dh0), torch.from_numpy(dparams)


def _core_backward_without_input_grad(*args: Any) -> tuple[Tensor | None, Tensor, Tensor]:
    return _core_backward(*args, input_grad=False)


gru_backward = torch.library.custom_op("fastgru::gru_backward", mutates_args=(), device_types="cpu")(_gru_backward_impl)


@gru_backward.register_fake
def _(
    dy: Tensor,
    dh_n: Tensor | None,
    params: Tensor,
    workspace: Tensor,
    lengths: Tensor | None,
    dropout: Tensor | None,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
    compute_dtype: str,
) -> tuple[Tensor, Tensor, Tensor]:
    T, B, _ = dy.shape
    D = 2 if bidirectional else 1
    return (dy.new_empty((T, B, input_size)), dy.new_empty((num_layers * D, B, hidden_size)), torch.empty_like(params))


def _forward_setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor, Tensor]) -> None:
    x, hx, params, lengths, dropout, *config, keep_workspace = inputs
    if not keep_workspace:
        raise RuntimeError("fastgru::gru_forward: gradients need the workspace; call it with keep_workspace=True")
    # x and hx only for a backward that builds a graph (create_graph=True): it recomputes the forward.
    ctx.save_for_backward(x, hx, params, output[2], lengths, dropout)
    ctx.config = config
    # Gradients of unused outputs stay None: never a zero-filled tensor of the workspace's size.
    ctx.set_materialize_grads(False)


def _forward_backward(
    ctx: Any, dy: Tensor | None, dh_n: Tensor | None, _workspace_grad: Tensor | None
) -> tuple[Tensor | None, ...]:
    return _gradients(ctx, dy, dh_n, gru_backward) + (None,) * 9


def _gradients(
    ctx: Any, dy: Tensor | None, dh_n: Tensor | None, backward: Callable[..., tuple[Tensor, Tensor, Tensor]]
) -> tuple[Tensor | None, ...]:
    """(dx, dhx, dparams) through the gru_forward operator, whose ctx saved (x, hx, params,
    workspace, lengths, dropout) and its config; `backward`: the backward operator or its body."""
    x, hx, params, workspace, lengths, dropout = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: the gradients must be differentiable themselves
        wrt = [t if need else None for t, need in zip((x, hx, params), ctx.needs_input_grad[:3])]
        return _differentiable_backward(
            ctx.config, x, hx, _split_like(params, _param_shapes(ctx.config, x)), lengths, dropout, dy, dh_n, wrt
        )
    return _first_order_gradients(ctx, x, hx, params, workspace, lengths, dropout, dy, dh_n, backward)


def _first_order_gradients(
    ctx: Any,
    x: Tensor,
    hx: Tensor | None,
    params: Tensor,
    workspace: Tensor,
    lengths: Tensor | None,
    dropout: Tensor | None,
    dy: Tensor | None,
    dh_n: Tensor | None,
    backward: Callable[..., tuple[Tensor | None, Tensor, Tensor]],
) -> tuple[Tensor | None, Tensor | None, Tensor]:
    """(dx, dhx, dparams) from the core's backward over the forward's workspace."""
    T, B, I = x.shape
    hidden_size, _, bidirectional = ctx.config[:3]
    if dy is None:  # only h_n was used
        dy = params.new_zeros((T, B, (2 if bidirectional else 1) * hidden_size))
    dx, dh0, dparams = backward(dy, dh_n, params, workspace, lengths, dropout, I, *ctx.config)
    return (dx, dh0 if ctx.needs_input_grad[1] else None, dparams)


def _param_shapes(config: Sequence[Any], x: Tensor) -> list[tuple[int, ...]]:
    """The parameters' shapes, in order, for an operator config (hidden_size, num_layers,
    bidirectional, bias, reset_after, compute_dtype) and input x (T, B, I)."""
    return [shape for _, _, shape in _core.gru_param_layout(_config(x.shape[2], *config))]


def _numpy_views(flat: npt.NDArray[Any], shapes: Sequence[Sequence[int]]) -> list[Tensor]:
    """_split_like for a plain tensor's array, a few times faster than torch.split and view."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(torch.from_numpy(flat[offset : offset + size].reshape(shape)))
        offset += size
    return views


def _split_like(flat: Tensor, shapes: Sequence[Sequence[int]]) -> list[Tensor]:
    """Views of flat, in order, with the given shapes (differentiable, batched tensors too)."""
    parts = torch.split(flat, [math.prod(shape) for shape in shapes], dim=-1)
    return [part.view(*part.shape[:-1], *shape) for part, shape in zip(parts, shapes)]


def _versions(x: Tensor, hx: Tensor | None, weights: Sequence[Tensor]) -> list[int]:
    """The version counters of x, hx (-1 for None) and the weights, in that order."""
    return [x._version, -1 if hx is None else hx._version, *(w._version for w in weights)]


class _EagerGru(torch.autograd.Function):
    """fastgru::gru_forward and its backward without the operators' dispatch, which costs about
    0.1 ms a call (a fifth of a small training step). For plain tensors in eager mode only:
    tracing, torch.compile, fake tensors and torch.func take the operators (_run decides).

    The parameters come one by one (as autograd's inputs, so no concatenation and no split is
    in the graph), and beside them `flat`, all of them in one contiguous tensor in order (the
    module's flat buffer, whose views they are), or None to concatenate them here."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        hx: Tensor | None,
        flat: Tensor | None,
        lengths: Tensor | None,
        dropout: Tensor | None,
        config: tuple[int, int, bool, bool, bool, str],
        *weights: Tensor,
    ) -> tuple[Tensor, Tensor]:
        if flat is None:
            flat = torch.cat([w.reshape(-1) for w in weights])
        y, h_n, workspace = _gru_forward_impl(x, hx, flat, lengths, dropout, *config, True)
        # Saved tensors are only what the core's backward reads (the workspace holds a copy of
        # every layer's input): unpacking each costs time at every call. The inputs are kept as
        # they are, and their versions checked here as autograd checks saved tensors': the
        # parameters' at every backward (the flat buffer's views do not share its version
        # counter), x's and hx's for a backward that builds a graph (create_graph=True), which
        # recomputes the forward from them.
        ctx.save_for_backward(flat, workspace)
        ctx.inputs = (x, hx, lengths, dropout, weights)
        ctx.versions = _versions(x, hx, weights)
        ctx.config = config
        ctx.set_materialize_grads(False)
        return y, h_n

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dh_n: Tensor | None) -> tuple[Tensor | None, ...]:
        flat, workspace = ctx.saved_tensors
        x, hx, lengths, dropout, weights = ctx.inputs
        needs = ctx.needs_input_grad
        create_graph = torch.is_grad_enabled()
        versions = _versions(x, hx, weights)
        if versions[2:] != ctx.versions[2:] or (create_graph and versions[:2] != ctx.versions[:2]):
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace "
                "operation: a parameter of fastgru.torch.GRU (or, for create_graph=True, which recomputes "
                "the forward, its input or hx) changed after the forward"
            )
        if create_graph:  # the gradients must be differentiable themselves
            wrt: list[Tensor | None] = [x if needs[0] else None, hx if needs[1] else None]
            wrt += [w if need else None for w, need in zip(weights, needs[6:])]
            dx, dhx, *dweights = _differentiable_backward(ctx.config, x, hx, weights, lengths, dropout, dy, dh_n, wrt)
            return (dx, dhx, None, None, None, None, *dweights)
        # Batched gradients (autograd.grad(is_grads_batched=True), as gradcheck checks) or a
        # torch.func transform: the operator, which torch runs once per batch entry; its body
        # would see batched tensors.
        batched = any(t is not None and "Batched" in str(torch._C._dispatch_keys(t)) for t in (dy, dh_n))
        if batched or torch._C._are_functorch_transforms_active():
            backward: Callable[..., tuple[Tensor | None, Tensor, Tensor]] = gru_backward
        else:  # without dx when x needs no gradient (the usual first layer): its product is skipped
            backward = _gru_backward_impl if needs[0] else _core_backward_without_input_grad
        dx, dhx, dparams = _first_order_gradients(ctx, x, hx, flat, workspace, lengths, dropout, dy, dh_n, backward)
        shapes = [w.shape for w in weights]
        grads = _split_like(dparams, shapes) if backward is gru_backward else _numpy_views(dparams.numpy(), shapes)
        return (dx, dhx, None, None, None, None, *grads)


def _differentiable_backward(
    config: Sequence[Any],
    x: Tensor,
    hx: Tensor | None,
    weights: Sequence[Tensor],
    lengths: Tensor | None,
    dropout: Tensor | None,
    dy: Tensor | None,
    dh_n: Tensor | None,
    wrt: Sequence[Tensor | None],
) -> tuple[Tensor | None, ...]:
    """The gradients with respect to each tensor of wrt (None where not needed) of the forward
    (x, hx, weights) -> (y, h_n) against (dy, dh_n), as a graph of torch operators (for double
    backward): the forward recomputed by _torch_gru, differentiated with create_graph."""
    hidden_size, num_layers, bidirectional, bias, reset_after, compute_dtype = config
    if compute_dtype != "float32":
        raise RuntimeError(
            f"fastgru.torch.GRU: double backward (create_graph=True) computes with full-precision "
            f"products; compute_dtype={compute_dtype!r} (CPU bfloat16 autocast) is not supported"
        )
    y, h_n = _torch_gru(x, hx, weights, lengths, dropout, hidden_size, num_layers, bidirectional, bias, reset_after)
    inputs = [t for t in wrt if t is not None]
    pairs = [(out, grad) for out, grad in ((y, dy), (h_n, dh_n)) if grad is not None]
    grads = iter(
        torch.autograd.grad(
            [out for out, _ in pairs], inputs, [grad for _, grad in pairs], create_graph=True, allow_unused=True
        )
    )
    return tuple(None if t is None else next(grads) for t in wrt)


def _no_double_backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
    raise RuntimeError(
        "fastgru::gru_backward is not differentiable; differentiate fastgru::gru_forward instead "
        "(its backward builds a differentiable graph under create_graph=True)"
    )


gru_forward.register_autograd(_forward_backward, setup_context=_forward_setup_context)
gru_backward.register_autograd(_no_double_backward, setup_context=lambda ctx, inputs, output: None)


def _torch_gru(
    x: Tensor,
    hx: Tensor | None,
    weights: Sequence[Tensor],
    lengths: Tensor | None,
    dropout: Tensor | None,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
) -> tuple[Tensor, Tensor]:
    """gru_forward's (y, h_n) computed with torch operators, for what the compiled operators do not
    support: double backward, torch.func transforms, forward-mode AD and expanded weights (per-sample
    gradients). weights: the parameters in torch.nn.GRU's order. Only F.linear touches a weight,
    always with the batch first (what an ExpandedWeight handles), and reset_after=False computes the
    whole recurrent product of r * h rather than slicing W_hh. Steps past a sequence's length leave
    its state alone and output zeros, as the core's."""
    T, B = x.shape[:2]
    H, D = hidden_size, 2 if bidirectional else 1
    per_direction = 4 if bias else 2
    valid = None if lengths is None else (torch.arange(T).unsqueeze(1) < lengths).unsqueeze(2)  # (T, B, 1)
    layer_input = x
    h_n: list[Tensor] = []
    with torch.autocast("cpu", enabled=False):  # products in the weights' dtype, as the core's
        for layer in range(num_layers):
            if layer > 0 and dropout is not None:
                layer_input = layer_input * dropout[layer - 1]
            outputs: list[Tensor] = []
            for direction in range(D):
                k = layer * D + direction
                w_ih, w_hh, b_ih, b_hh = (*weights[k * per_direction : (k + 1) * per_direction], None, None)[:4]
                assert w_ih is not None and w_hh is not None
                gi = F.linear(layer_input.transpose(0, 1), w_ih, b_ih)  # (B, T, 3H)
                h = layer_input.new_zeros((B, H)) if hx is None else hx[k]
                ys: list[Tensor] = [h] * T  # every entry is set below
                for t in range(T - 1, -1, -1) if direction else range(T):
                    i_r, i_z, i_n = gi[:, t].chunk(3, 1)
                    h_r, h_z, h_n_gate = F.linear(h, w_hh, b_hh).chunk(3, 1)
                    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
                    if reset_after:
                        n = torch.tanh(i_n + r * h_n_gate)
                    else:
                        n = torch.tanh(i_n + F.linear(r * h, w_hh, b_hh)[:, 2 * H :])
                    new = (1 - z) * n + z * h
                    if valid is None:
                        ys[t] = h = new
                    else:
                        ys[t] = torch.where(valid[t], new, 0)
                        h = torch.where(valid[t], new, h)
                outputs.append(torch.stack(ys))
                h_n.append(h)
            layer_input = torch.cat(outputs, 2) if D == 2 else outputs[0]
    return layer_input, torch.stack(h_n)


def _tangent(tensor: Tensor) -> Tensor | None:
    """The forward-mode AD tangent that tensor carries, or None."""
    tangent: Tensor | None = forward_ad.unpack_dual(tensor).tangent  # type: ignore[no-untyped-call]  # torch: untyped
    return tangent


def _needs_torch_ops(tensors: Sequence[Tensor | None], weights: Sequence[Tensor]) -> bool:
    """Whether the compiled operators cannot serve this call, whose autograd formula is neither
    functorch's (a torch.func transform is active) nor forward-mode AD's (a tensor carries a
    tangent), and which need plain tensors (an ExpandedWeight parameter: per-sample gradients)."""
    return (
        torch._C._are_functorch_transforms_active()
        or (_dual_level_entered() and any(_tangent(t) is not None for t in (*tensors, *weights) if t is not None))
        or any(isinstance(w, ExpandedWeight) for w in weights)
    )


def _dual_level_entered() -> bool:
    """Whether tensors can carry tangents: only inside forward_ad.dual_level (the level is -1
    outside; a torch without that variable gets the full check)."""
    return getattr(forward_ad, "_current_level", 0) >= 0


# -- the module ------------------------------------------------------------------------------
class GRU(nn.Module):
    """torch.nn.GRU computed by fastgru's core: the same constructor, attributes, parameters
    (names, shapes, order, U(-1/sqrt(H), 1/sqrt(H)) initialisation) and forward semantics.

    output, h_n = gru(input, hx=None)
      input (T, B, I), (B, T, I) when batch_first, unbatched (T, I), or a PackedSequence;
      hx (L*D, B, H) ((L*D, H) for unbatched input) or None for zeros;
      output (T, B, D*H) (same layout as input; a PackedSequence for one), h_n (L*D, B, H).

    reset_after=False is the reset-before variant (n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)),
    which torch.nn.GRU does not have. float32 or float64, CPU tensors only.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | int | None = None,
        dtype: torch.dtype | None = None,
        *,
        reset_after: bool = True,
        **unsupported: object,
    ) -> None:
        super().__init__()
        if "proj_size" in unsupported:  # as torch.nn.GRU says it
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if unsupported:
            raise TypeError(f"GRU.__init__() got an unexpected keyword argument '{next(iter(unsupported))}'")
        # torch.nn.RNNBase's checks, with its error types and messages.
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                f"expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        for name, value, kind in (
            ("bias", bias, bool),
            ("batch_first", batch_first, bool),
            ("input_size", input_size, int),
            ("hidden_size", hidden_size, int),
            ("num_layers", num_layers, int),
        ):
            if not isinstance(value, kind):
                raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero")
        where = torch.device(device) if device is not None else torch.empty(0).device
        if where.type not in ("cpu", "meta"):
            raise ValueError(f"device: fastgru.torch.GRU runs on the CPU, got device {where}")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in _CORE_DTYPES:
            raise ValueError(f"dtype: fastgru.torch.GRU computes in torch.float32 or torch.float64, got {dtype}")

        self.mode = "GRU"
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        self.reset_after = bool(reset_after)

        # The core's layout, in order: the operators take the parameters flattened and concatenated.
        layout = _core.gru_param_layout(
            _config(input_size, hidden_size, num_layers, bidirectional, bias, True, "float32")
        )
        for name, _, shape in layout:
            setattr(self, name, nn.Parameter(torch.empty(shape, device=where, dtype=dtype)))
        self._flat_weights_names = [name for name, _, _ in layout]
        per_direction = 4 if bias else 2
        self._all_weights = [
            self._flat_weights_names[i : i + per_direction] for i in range(0, len(layout), per_direction)
        ]
        self.reset_parameters()
        self.flatten_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _flat_weights(self) -> list[nn.Parameter]:
        # _parameters first: nn.Module.__getattr__ costs 1-2 us a name, per forward. A name that
        # is not there (a parametrization or weight_norm replaced it) is an attribute.
        params = self._parameters
        return [params[name] if name in params else getattr(self, name) for name in self._flat_weights_names]  # type: ignore[misc]  # a name's entry is never None

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, in order (torch.nn.GRU's draws)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def __setattr__(self, name: str, value: Any) -> None:
        # torch.ao.quantization (quantize_dynamic, prepare) gives every submodule a qconfig, then
        # swaps the types it knows: this one it leaves in float, which must not pass in silence.
        if name == "qconfig":
            warnings.warn(
                "torch.ao.quantization leaves fastgru.torch.GRU in float: it knows only torch's own "
                "modules. For int8 weights use fastgru.quantize on a fastgru.GRU holding this module's "
                "state_dict (fastgru.GRU(...).load_state_dict(module.state_dict()))",
                UserWarning,
                stacklevel=2,
            )
        super().__setattr__(name, value)

    def flatten_parameters(self) -> None:
        """Puts the parameters in one contiguous buffer, in the core's order, each parameter a
        view of it (the parameter objects stay, so optimizers holding them still do): the forward
        then hands the core that buffer as it is, with no concatenation in the autograd graph and
        no split of the gradient (as torch.nn.GRU's flatten_parameters packs cuDNN's weights).
        The constructor, .to() and the like, and unpickling call it; while some parameter is no
        longer a view of the buffer (assigned anew, its .data replaced, a parametrization), each
        forward concatenates the parameters instead, with the same results."""
        weights = self._flat_weights
        if self._flat_parameters(weights) is not None:
            return  # already flat (share_memory() and no-op conversions keep the buffer)
        if not all(isinstance(w, nn.Parameter) for w in weights) or len({(w.dtype, w.device) for w in weights}) > 1:
            self._flat_buffer: Tensor | None = None
            return
        flat = torch.empty(sum(w.numel() for w in weights), dtype=weights[0].dtype, device=weights[0].device)
        offset = 0
        with torch.no_grad():
            for w in weights:
                view = flat[offset : offset + w.numel()].view_as(w)
                view.copy_(w)
                w.data = view
                offset += w.numel()
        self._flat_buffer = flat

    def _flat_parameters(self, weights: Sequence[Tensor]) -> Tensor | None:
        """The flat buffer when every weight is still its view, in order (see flatten_parameters)."""
        flat = self.__dict__.get("_flat_buffer")
        if flat is None:
            return None
        address, itemsize = flat.data_ptr(), flat.element_size()
        for w in weights:
            if type(w) is not nn.Parameter or w.data_ptr() != address or w.dtype != flat.dtype or not w.is_contiguous():
                return None
            address += w.numel() * itemsize
        return flat if address == flat.data_ptr() + flat.numel() * itemsize else None

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> "GRU":
        # .to(), .double(), .to_empty() and the like give the parameters new data: flatten again.
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]  # torch: untyped
        self.flatten_parameters()
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[no-untyped-call]  # torch: untyped
        state = dict(state)
        state.pop("_flat_buffer", None)  # unpickled parameters are separate tensors: flattened anew
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[no-untyped-call]  # torch: untyped
        self.flatten_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        if not self.reset_after:
            s += ", reset_after=False"
        return s + ", backend=fastgru"  # print(model) shows which GRUs replace_gru swapped

    # -- conversion -----------------------------------------------------------------------
    @classmethod
    def from_torch(cls, gru: nn.GRU) -> "GRU":
        """A fastgru.torch.GRU with a copy of gru's weights (and its training mode, dtype and
        requires_grad flags). gru: a torch.nn.GRU on the CPU."""
        if not isinstance(gru, nn.GRU):
            raise TypeError(f"from_torch: expected a torch.nn.GRU, got {type(gru).__name__}")
        return _convert(gru, cls)

    def to_torch(self) -> nn.GRU:
        """A torch.nn.GRU with a copy of the weights (and training mode, dtype and requires_grad
        flags). Only for reset_after=True: torch.nn.GRU has no reset-before variant."""
        if not self.reset_after:
            raise ValueError("to_torch: torch.nn.GRU computes reset_after=True only; this GRU has reset_after=False")
        return _convert(self, nn.GRU)

    # -- computation ----------------------------------------------------------------------
    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        weights = self._flat_weights
        flat = self._plain_call(input, hx, weights)
        if flat is not None:  # the usual call: straight to the core
            assert isinstance(input, Tensor)
            x = input.transpose(0, 1) if self.batch_first else input
            y, h_n = self._run_eager(
                x.contiguous(), None if hx is None else hx.contiguous(), None, None, weights, flat, "float32"
            )
            return (y.transpose(0, 1) if self.batch_first else y), h_n
        compute_dtype, output_dtype = "float32", None
        data = input.data if isinstance(input, PackedSequence) else input
        if _cpu_autocast() and data.is_floating_point():
            # As torch.nn.GRU under CPU autocast: with float32 weights and bfloat16 autocast the
            # products take bfloat16 operands (the core's bfloat16 path; states, gate math and
            # gradients stay float32), and the outputs have the input's dtype when it is a
            # reduced one. The inputs come to the weights' dtype.
            dtype = weights[0].dtype
            if dtype == torch.float32 and _cpu_autocast_dtype() == torch.bfloat16:
                compute_dtype = "bfloat16"
            if data.dtype in (torch.bfloat16, torch.float16):
                output_dtype = data.dtype
            input = input._replace(data=input.data.to(dtype)) if isinstance(input, PackedSequence) else input.to(dtype)
            hx = hx if hx is None else hx.to(dtype)
        output, h_n = self._forward(input, hx, weights, compute_dtype)
        if output_dtype is None:
            return output, h_n
        if isinstance(output, PackedSequence):
            return output._replace(data=output.data.to(output_dtype)), h_n.to(output_dtype)
        return output.to(output_dtype), h_n.to(output_dtype)

    def _forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None, weights: Sequence[Tensor], compute_dtype: str
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        L, H = self.num_layers, self.hidden_size
        LD = L * self.num_directions
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if hx is not None and sorted_indices is not None:
                hx = hx.index_select(1, sorted_indices)
            self._check_input(data, 2, weights)
            T, B = batch_sizes.shape[0], int(batch_sizes[0])
            self._check_hidden(hx, (LD, B, H), weights)
            # Packed rows are the (t, b) with b < batch_sizes[t], in time-major order.
            valid = torch.arange(B) < batch_sizes.unsqueeze(1)  # (T, B)
            rows = valid.reshape(-1).nonzero().squeeze(1)
            x = data.new_zeros((T * B, self.input_size)).index_copy(0, rows, data).view(T, B, -1)
            y, h_n = self._run(x, hx, valid.sum(0), weights, compute_dtype)
            output = PackedSequence(
                y.reshape(T * B, -1).index_select(0, rows), batch_sizes, sorted_indices, unsorted_indices
            )
            return output, h_n if unsorted_indices is None else h_n.index_select(1, unsorted_indices)

        if input.dim() not in (2, 3):
            raise ValueError(f"GRU: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            input = input.unsqueeze(batch_dim)
            if hx is not None:
                if hx.dim() != 2:
                    raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
                hx = hx.unsqueeze(1)
        elif hx is not None and hx.dim() != 3:
            raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        self._check_input(input, 3, weights)
        self._check_hidden(hx, (LD, input.size(batch_dim), H), weights)
        x = input.transpose(0, 1) if self.batch_first else input
        y, h_n = self._run(x.contiguous(), hx, None, weights, compute_dtype)
        if self.batch_first:
            y = y.transpose(0, 1)
        if not batched:
            y, h_n = y.squeeze(batch_dim), h_n.squeeze(1)
        return y, h_n

    def _check_input(self, input: Tensor, dim: int, weights: Sequence[Tensor]) -> None:
        """torch.nn.GRU's input checks and error types, then fastgru's own (dtype, device)."""
        dtype = weights[0].dtype
        if input.dtype != dtype:
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({dtype}). "
                f"Convert input: input.to({dtype}), or convert model: model.to({input.dtype})"
            )
        if input.dim() != dim:
            raise RuntimeError(f"input must have {dim} dimensions, got {input.dim()}")
        if input.size(-1) != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.size(-1)}"
            )
        if dtype not in _CORE_DTYPES or any(w.dtype != dtype for w in weights):
            raise TypeError(
                "fastgru.torch.GRU computes in float32 or float64 with every parameter of one dtype, "
                f"got parameters of dtypes {sorted({str(w.dtype) for w in weights})}"
            )
        for what, tensor in (("input", input), ("the parameters", weights[0])):
            if tensor.device.type not in ("cpu", "meta"):
                raise RuntimeError(f"fastgru.torch.GRU runs on the CPU only, but {what} are on {tensor.device}")

    @staticmethod
    def _check_hidden(hx: Tensor | None, expected: tuple[int, ...], weights: Sequence[Tensor]) -> None:
        if hx is None:
            return
        if hx.size() != expected:
            raise RuntimeError(f"Expected hidden size {expected}, got {list(hx.size())}")
        if hx.dtype != weights[0].dtype:
            raise RuntimeError(f"hx: expected dtype {weights[0].dtype} (the parameters'), got {hx.dtype}")
        if hx.device.type not in ("cpu", "meta"):
            raise RuntimeError(f"fastgru.torch.GRU runs on the CPU only, but hx is on {hx.device}")

    def _run(
        self, x: Tensor, hx: Tensor | None, lengths: Tensor | None, weights: Sequence[Tensor], compute_dtype: str
    ) -> tuple[Tensor, Tensor]:
        """x (T, B, I) contiguous, hx (L*D, B, H) or None, lengths (B,) int64 or None."""
        T, B, _ = x.shape
        L, H, D = self.num_layers, self.hidden_size, self.num_directions
        if T == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        if B == 0:
            # Nothing to compute, but the outputs stay in the autograd graph as torch.nn.GRU's do:
            # backward then gives zero gradients of the right shapes.
            anchor = sum(w.sum() for w in weights) * 0 + x.sum() * 0
            h_n = x.new_zeros((L * D, 0, H)) if hx is None else hx
            return x.new_zeros((T, 0, D * H)) + anchor, h_n + anchor
        dropout = None
        if self.training and self.dropout > 0 and L > 1:
            keep = 1.0 - self.dropout
            dropout = torch.empty((L - 1, T, B, D * H), dtype=x.dtype).bernoulli_(keep)
            if keep > 0:
                dropout.div_(keep)
        if _needs_torch_ops((x, hx), weights):
            if compute_dtype != "float32":
                raise RuntimeError(
                    "fastgru.torch.GRU: torch.func transforms, forward-mode AD and expanded weights "
                    "compute with full-precision products; CPU bfloat16 autocast is not supported there"
                )
            return _torch_gru(
                x, hx, weights, lengths, dropout, H, L, bool(self.bidirectional), bool(self.bias), self.reset_after
            )
        if hx is not None:
            hx = hx.contiguous()
        # A traced graph records this flag as a constant: keep the workspace there, so the trace
        # is the same with and without grad mode (its check re-runs it without) and can train.
        tracing: bool = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]  # torch: untyped
        if not tracing and _eager((x, hx, lengths, dropout, *weights)):
            return self._run_eager(x, hx, lengths, dropout, weights, self._flat_parameters(weights), compute_dtype)
        config = self._operator_config(compute_dtype)
        params = torch.cat([w.reshape(-1) for w in weights])
        keep_workspace = tracing or _needs_gradients(x, hx, weights)
        y, h_n, _ = gru_forward(x, hx, params, lengths, dropout, *config, keep_workspace)
        return y, h_n

    def _run_eager(
        self,
        x: Tensor,
        hx: Tensor | None,
        lengths: Tensor | None,
        dropout: Tensor | None,
        weights: Sequence[Tensor],
        flat: Tensor | None,
        compute_dtype: str,
    ) -> tuple[Tensor, Tensor]:
        """_run for plain CPU tensors outside tracing and compiling: the operators' bodies without
        their dispatch (_EagerGru); x and hx contiguous; flat: the flat buffer, or None when the
        parameters are no longer its views."""
        config = self._operator_config(compute_dtype)
        if _needs_gradients(x, hx, weights):
            y, h_n = _EagerGru.apply(x, hx, flat, lengths, dropout, config, *weights)  # type: ignore[no-untyped-call, unused-ignore]  # typed from torch 2.15 on
        else:
            params = torch.cat([w.detach().reshape(-1) for w in weights]) if flat is None else flat
            y, h_n, _ = _gru_forward_impl(x, hx, params, lengths, dropout, *config, False)
        return y, h_n

    def _operator_config(self, compute_dtype: str) -> tuple[int, int, bool, bool, bool, str]:
        """The operators' configuration arguments after params, lengths and dropout."""
        return (
            self.hidden_size,
            self.num_layers,
            bool(self.bidirectional),
            bool(self.bias),
            bool(self.reset_after),
            compute_dtype,
        )

    def _plain_call(self, input: Any, hx: Any, weights: Sequence[Tensor]) -> Tensor | None:
        """The flat buffer when this call needs nothing of the general path, checked in one
        pass (a tenth of a small training step goes to Python around the core): a padded 3-D CPU
        input of the parameters' dtype and input_size with T, B >= 1, hx None or of the expected
        shape and dtype, the parameters views of the flat buffer, no dropout masks to draw, no
        autocast, tracing, compiling, torch.func transform or dual level. Otherwise None: the
        general path checks (with torch.nn.GRU's errors) and handles everything."""
        if torch.compiler.is_compiling():  # first: torch.compile traces this function
            return None
        if type(input) is not Tensor or input.dim() != 3 or input.size(2) != self.input_size or not input.is_cpu:
            return None
        flat = self._flat_parameters(weights)
        if flat is None or input.dtype != flat.dtype or flat.dtype not in _CORE_DTYPES or input.numel() == 0:
            return None
        if hx is not None:
            LD = self.num_layers * self.num_directions
            shape = (LD, input.size(0 if self.batch_first else 1), self.hidden_size)
            if type(hx) is not Tensor or hx.shape != shape or hx.dtype != flat.dtype or not hx.is_cpu:
                return None
        if (self.training and self.dropout > 0 and self.num_layers > 1) or _cpu_autocast():
            return None
        tracing: bool = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]  # torch: untyped
        if tracing or torch._C._are_functorch_transforms_active():
            return None
        return None if _dual_level_entered() else flat


def _needs_gradients(x: Tensor, hx: Tensor | None, weights: Sequence[Tensor]) -> bool:
    """Whether a forward must keep its workspace: grad mode on and some input requires grad."""
    if not torch.is_grad_enabled():
        return False
    return x.requires_grad or (hx is not None and hx.requires_grad) or any(w.requires_grad for w in weights)


def _eager(tensors: Sequence[Tensor | None]) -> bool:
    """Whether a call can skip the custom operators (_EagerGru): plain CPU tensors, not under
    torch.compile or export (which need the operators and their fake implementations)."""
    if torch.compiler.is_compiling():
        return False
    return all(t is None or (type(t) in (Tensor, nn.Parameter) and t.is_cpu) for t in tensors)


def _cpu_autocast() -> bool:
    """Whether CPU autocast is on (torch.is_autocast_enabled takes a device type from torch 2.4)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:
        return torch.is_autocast_cpu_enabled()


def _cpu_autocast_dtype() -> torch.dtype:
    """The dtype of CPU autocast (torch.get_autocast_dtype from torch 2.4 on)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.get_autocast_dtype("cpu")
    return torch.get_autocast_cpu_dtype()


def _convert(gru: nn.GRU | GRU, cls: type[_Module]) -> _Module:
    """A cls (GRU or nn.GRU) with gru's configuration and a copy of its weights, training mode
    and requires_grad flags, built without drawing initial values from torch's RNG."""
    weight = next(gru.parameters())  # weight_ih_l0
    with warnings.catch_warnings():  # gru's constructor already warned about its dropout, if at all
        warnings.simplefilter("ignore")
        new = cls(
            gru.input_size,
            gru.hidden_size,
            gru.num_layers,
            gru.bias,
            gru.batch_first,
            gru.dropout,
            gru.bidirectional,
            device="meta",
            dtype=weight.dtype,
        ).to_empty(device=weight.device)
    new.load_state_dict(gru.state_dict())
    for name, param in new.named_parameters():
        param.requires_grad_(getattr(gru, name).requires_grad)
    return new.train(gru.training)


def replace_gru(module: _Module) -> _Module | GRU:
    """Replaces every torch.nn.GRU inside module (however deeply nested) by a fastgru.torch.GRU
    with a copy of its weights, training mode and dtype, in place, and returns module (the
    replacement itself when module is an nn.GRU). A GRU reached by several paths is replaced by
    one module. Build the optimizer after replacing: the parameters are new tensors."""
    if isinstance(module, nn.GRU):
        return GRU.from_torch(module)
    replacements: dict[int, GRU] = {}
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.GRU):
                if id(child) not in replacements:
                    replacements[id(child)] = GRU.from_torch(child)
                setattr(parent, name, replacements[id(child)])
    return module
