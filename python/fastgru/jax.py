"""fastgru.jax: fastgru's compiled GRU forward and backward as JAX functions.

    import fastgru.jax
    params = fastgru.jax.init_params(jax.random.key(0), input_size=8, hidden_size=16)
    y, h_n = fastgru.jax.gru(params, x)                  # x (B, T, I) -> y (B, T, H), h_n (1, B, H)

`gru` is a jax.custom_vjp over two XLA custom calls (fastgru's FFI handlers): the forward and
backward run in fastgru's core on the CPU, inside the compiled program, on XLA's own buffers, so
jax.jit, jax.grad, jax.value_and_grad and jax.vmap work (vmap calls the core once per mapped
element). A program placed on another platform (a GPU) calls the core on the host through
jax.pure_callback instead, the arrays copied there and back. The training forward's workspace
(what the backward reads) stays in the core, which hands JAX a token for it
(python/src/kept_workspaces.h says why).

The parameters are a dict with fastgru.GRU's (torch.nn.GRU's) names, shapes and gate order
(r, z, n), so fastgru.GRU(...).state_dict() and a torch.nn.GRU's state_dict() are valid params.
With Flax installed, fastgru.jax.GRU is a flax.nnx.Module over it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:
    raise ImportError(
        'fastgru.jax needs JAX: pip install ".[jax]" in a clone of fastgru ("fastgru[jax]" once '
        "it is on the package index), or pip install jax"
    ) from exc

from . import _core, _host

__all__ = ["gru", "init_params"]  # and GRU, the Flax module, built on first use (module __getattr__)

Spec = _host.Spec


for _target, _handler in _core.xla_ffi_handlers().items():
    jax.ffi.register_ffi_target(_target, _handler, platform="cpu")


def _shape(shape: tuple[int, ...], dtype: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, dtype)  # type: ignore[no-untyped-call]


def _config_attrs(spec: Spec) -> dict[str, np.int64]:
    """The GruConfig as the XLA calls' attributes (fastgru._core.xla_ffi_handlers)."""
    names = ("input_size", "hidden_size", "num_layers", "bidirectional", "bias", "reset_after")
    return {name: np.int64(value) for name, value in zip(names, spec)}


# False runs the host callbacks on the CPU too (for tests: elsewhere they serve other platforms).
_CUSTOM_CALLS = True


def _on_cpu_or_host(custom_call: Any, callback: Any, *args: jax.Array) -> tuple[jax.Array, ...]:
    """custom_call(*args) where the program runs on the CPU, for which fastgru's XLA custom calls
    are registered; callback(*args) on any other platform (jax.pure_callback: the core runs on
    the host, the arrays copied there and back). Both take and return batch-major arrays."""
    if not _CUSTOM_CALLS:
        return tuple(callback(*args))
    return tuple(jax.lax.platform_dependent(*args, cpu=custom_call, default=callback))


def _forward_call(
    params: jax.Array, x: jax.Array, h0: jax.Array, lengths: jax.Array, spec: Spec, training: bool
) -> tuple[jax.Array, ...]:
    """The core's forward on batch-major x: (y, h_n), and in training the int32 token of the
    workspace that the core keeps for the backward."""
    B, T = x.shape[:2]
    DH = (2 if spec[3] else 1) * spec[1]
    token = [_shape((), jnp.int32)] if training else []

    def custom_call(params: jax.Array, x: jax.Array, h0: jax.Array, lengths: jax.Array) -> tuple[jax.Array, ...]:
        shapes = [_shape((T, B, DH), x.dtype), _shape(h0.shape, x.dtype), *token]
        call = jax.ffi.ffi_call("fastgru_gru_forward", shapes, vmap_method="sequential")
        y, *rest = call(params, jnp.swapaxes(x, 0, 1), h0, lengths, **_config_attrs(spec), training=np.int64(training))
        return (jnp.swapaxes(y, 0, 1), *rest)

    def callback(params: jax.Array, x: jax.Array, h0: jax.Array, lengths: jax.Array) -> tuple[jax.Array, ...]:
        shapes = (_shape((B, T, DH), x.dtype), _shape(h0.shape, x.dtype), *token)
        host = functools.partial(_host.forward_train if training else _host.forward, _host.gru_config(*spec))
        return tuple(jax.pure_callback(host, shapes, params, x, h0, lengths, vmap_method="sequential"))

    return _on_cpu_or_host(custom_call, callback, params, x, h0, lengths)


def _backward_call(
    token: jax.Array,
    params: jax.Array,
    x: jax.Array,
    h0: jax.Array,
    lengths: jax.Array,
    dy: jax.Array,
    dh_n: jax.Array,
    spec: Spec,
) -> tuple[jax.Array, ...]:
    """The backward of the training forward that returned token, given its inputs (x batch-major):
    (dx, dh0, dparams)."""
    shapes = (_shape(x.shape, dy.dtype), _shape(dh_n.shape, dy.dtype), _shape(params.shape, dy.dtype))

    def custom_call(*args: jax.Array) -> tuple[jax.Array, ...]:
        token, params, x, h0, lengths, dy, dh_n = args  # x stays batch-major: read only on a recompute
        time_major = (_shape((x.shape[1], x.shape[0], x.shape[2]), dy.dtype), *shapes[1:])
        call = jax.ffi.ffi_call("fastgru_gru_backward", time_major, vmap_method="sequential")
        t = functools.partial(jnp.swapaxes, axis1=0, axis2=1)
        dx, dh0, dparams = call(params, token, x, h0, t(dy), dh_n, lengths, **_config_attrs(spec))
        return t(dx), dh0, dparams

    def callback(*args: jax.Array) -> tuple[jax.Array, ...]:
        host = functools.partial(_host.backward, _host.gru_config(*spec))
        return tuple(jax.pure_callback(host, shapes, *args, vmap_method="sequential"))

    return _on_cpu_or_host(custom_call, callback, token, params, x, h0, lengths, dy, dh_n)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def gru_flat(
    params: jax.Array, x: jax.Array, h0: jax.Array, lengths: jax.Array, spec: Spec
) -> tuple[jax.Array, jax.Array]:
    """The core's GRU on the flat parameter buffer params (the core's layout for spec), x (B, T, I)
    batch-major, h0 (L*D, B, H), lengths (B,) int32 (T for an unpadded sequence; 0 and -1 are
    refused with fastgru.keras' mask messages). Returns y (B, T, D*H) and h_n (L*D, B, H)."""
    y, h_n = _forward_call(params, x, h0, lengths, spec, training=False)
    return y, h_n


Saved = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]


def _gru_flat_fwd(
    params: jax.Array, x: jax.Array, h0: jax.Array, lengths: jax.Array, spec: Spec
) -> tuple[tuple[jax.Array, jax.Array], Saved]:
    y, h_n, token = _forward_call(params, x, h0, lengths, spec, training=True)
    return (y, h_n), (token, params, x, h0, lengths)


def _gru_flat_bwd(
    spec: Spec, saved: Saved, cotangents: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array, jax.Array, None]:
    dx, dh0, dparams = _backward_call(*saved, *cotangents, spec)
    return dparams, dx, dh0, None


gru_flat.defvjp(_gru_flat_fwd, _gru_flat_bwd)


def _layout(spec: Spec) -> list[tuple[str, int, tuple[int, ...]]]:
    return [(name, offset, tuple(shape)) for name, offset, shape in _core.gru_param_layout(_host.gru_config(*spec))]


def _spec(params: Mapping[str, Any], reset_after: bool) -> Spec:
    """The configuration that params' names and shapes describe; ValueError otherwise."""
    if "weight_ih_l0" not in params or "weight_hh_l0" not in params:
        raise ValueError(
            f"params: expected fastgru.GRU's (torch.nn.GRU's) names weight_ih_l0, weight_hh_l0, ..., "
            f"got {sorted(params)}"
        )
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    if len(w_hh.shape) != 2 or w_hh.shape[0] != 3 * w_hh.shape[1]:
        raise ValueError(f"params['weight_hh_l0']: expected shape (3H, H), got {tuple(w_hh.shape)}")
    if len(w_ih.shape) != 2:
        raise ValueError(f"params['weight_ih_l0']: expected shape (3H, I), got {tuple(w_ih.shape)}")
    layers = sum(1 for name in params if name.startswith("weight_hh_l") and not name.endswith("_reverse"))
    spec = (
        int(w_ih.shape[1]),
        int(w_hh.shape[1]),
        layers,
        "weight_hh_l0_reverse" in params,
        "bias_ih_l0" in params,
        bool(reset_after),
    )
    layout = _layout(spec)
    names = [name for name, _, _ in layout]
    if sorted(names) != sorted(params):
        raise ValueError(
            f"params: missing keys {sorted(set(names) - set(params))}, "
            f"unexpected keys {sorted(set(params) - set(names))}"
        )
    for name, _, shape in layout:
        if tuple(params[name].shape) != shape:
            raise ValueError(f"params[{name!r}]: expected shape {shape}, got {tuple(params[name].shape)}")
    return spec


def gru(
    params: Mapping[str, jax.Array],
    x: jax.Array,
    h0: jax.Array | None = None,
    lengths: jax.Array | None = None,
    *,
    reset_after: bool = True,
    time_major: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """A multi-layer, optionally bidirectional GRU, forward and backward in fastgru's core.

    params   dict of fastgru.GRU's (torch.nn.GRU's) names and shapes: weight_ih_l{k} (3H, I for
             k = 0, D*H above), weight_hh_l{k} (3H, H), bias_ih_l{k} and bias_hh_l{k} (3H,) (all
             biases or none), with a `_reverse` suffix for a bidirectional layer's backward
             direction; gate order r, z, n. The number of layers, bidirectional and bias follow
             from the names.
    x        (B, T, I) ((T, B, I) when time_major), or unbatched (T, I); float32 or float64
    h0       (L*D, B, H) ((L*D, H) unbatched) initial states, or None for zeros
    lengths  (B,) ints in 1..T, or None: steps t >= lengths[b] are padding (output 0, state kept)
    reset_after  True: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (PyTorch's, Keras's default);
             False: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
    Returns y (B, T, D*H) (as x: time-major or unbatched alike) and h_n (L*D, B, H).

    Differentiable (jax.grad, jax.value_and_grad, jax.vjp) in params, x and h0; jax.jit and
    jax.vmap work. Computed on the host CPU; a lengths value outside 1..T raises when the
    computation runs (an error from JAX's runtime that carries fastgru's message)."""
    spec = _spec(params, reset_after)
    dtype = jnp.result_type(params["weight_hh_l0"])
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"params: expected float32 or float64 weights, got {dtype}")
    x = jnp.asarray(x, dtype)
    if x.ndim not in (2, 3) or x.shape[-1] != spec[0]:
        raise ValueError(
            f"x: expected shape (B, T, I), (T, B, I) when time_major, or unbatched (T, I), with "
            f"I = {spec[0]}, got {x.shape}"
        )
    batched = x.ndim == 3
    if not batched:
        x = x[None]
    elif time_major:
        x = jnp.swapaxes(x, 0, 1)
    B, T = x.shape[:2]
    LD = spec[2] * (2 if spec[3] else 1)
    if h0 is None:
        h0 = jnp.zeros((LD, B, spec[1]), dtype)
    else:
        h0 = jnp.asarray(h0, dtype)
        if not batched:
            h0 = h0[:, None] if h0.ndim == 2 else h0
        if h0.shape != (LD, B, spec[1]):
            raise ValueError(f"h0: expected shape (L*D, B, H) = ({LD}, {B}, {spec[1]}), got {h0.shape}")
    if lengths is None:
        lengths = jnp.full((B,), T, jnp.int32)
    else:
        lengths = jnp.asarray(lengths)
        if not jnp.issubdtype(lengths.dtype, jnp.integer) or lengths.shape != (B,):
            raise ValueError(f"lengths: expected ({B},) integers, got shape {lengths.shape} of {lengths.dtype}")
    flat = jnp.concatenate([jnp.reshape(jnp.asarray(params[name], dtype), (-1,)) for name, _, _ in _layout(spec)])
    y, h_n = gru_flat(flat, x, h0, lengths.astype(jnp.int32), spec)
    if not batched:
        return y[0], h_n[:, 0]
    return (jnp.swapaxes(y, 0, 1) if time_major else y), h_n


def init_params(
    key: jax.Array,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    *,
    bidirectional: bool = False,
    bias: bool = True,
    dtype: Any = jnp.float32,
) -> dict[str, jax.Array]:
    """Parameters for gru: every tensor uniform in +-1/sqrt(H) (torch.nn.GRU's rule), drawn from key."""
    spec = (input_size, hidden_size, num_layers, bidirectional, bias, True)
    layout = _layout(spec)
    keys = jax.random.split(key, len(layout))
    bound = 1.0 / math.sqrt(hidden_size)
    return {name: jax.random.uniform(k, shape, dtype, -bound, bound) for k, (name, _, shape) in zip(keys, layout)}


def _flax_module() -> type:
    """fastgru.jax.GRU, a flax.nnx.Module (built on first use: Flax is optional)."""
    try:
        from flax import nnx
    except ImportError as exc:
        raise ImportError("fastgru.jax.GRU needs Flax: pip install flax") from exc

    class GRU(nnx.Module):
        """A flax.nnx GRU computed by fastgru.jax.gru: y, h_n = GRU(...)(x, h0=None, lengths=None).

        GRU(in_features, hidden_features, num_layers=1, *, bidirectional=False, use_bias=True,
            reset_after=True, time_major=False, dtype=jnp.float32, rngs)
        Its parameters are nnx.Params with fastgru.GRU's names (weight_ih_l0, ...), drawn as
        init_params draws them; shapes and semantics as gru's."""

        def __init__(
            self,
            in_features: int,
            hidden_features: int,
            num_layers: int = 1,
            *,
            bidirectional: bool = False,
            use_bias: bool = True,
            reset_after: bool = True,
            time_major: bool = False,
            dtype: Any = jnp.float32,
            rngs: nnx.Rngs,
        ) -> None:
            self.reset_after, self.time_major = bool(reset_after), bool(time_major)
            values = init_params(
                rngs.params(),
                in_features,
                hidden_features,
                num_layers,
                bidirectional=bidirectional,
                bias=use_bias,
                dtype=dtype,
            )
            self.names = tuple(values)
            for name, value in values.items():
                setattr(self, name, nnx.Param(value))

        def __call__(
            self, x: jax.Array, h0: jax.Array | None = None, lengths: jax.Array | None = None
        ) -> tuple[jax.Array, jax.Array]:
            params = {name: getattr(self, name)[...] for name in self.names}
            return gru(params, x, h0, lengths, reset_after=self.reset_after, time_major=self.time_major)

    return GRU


def __getattr__(name: str) -> Any:
    if name == "GRU":
        module = _flax_module()
        globals()["GRU"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
