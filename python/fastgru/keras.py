"""fastgru.keras: a drop-in keras.layers.GRU (Keras 3) whose forward and backward run in fastgru's core.

    import fastgru.keras
    model = keras.Sequential([keras.Input((T, I)), fastgru.keras.GRU(64, return_sequences=True),
                              keras.layers.Dense(1)])

`GRU` is a subclass of keras.layers.GRU: the same constructor, weights (`kernel` (I, 3H),
`recurrent_kernel` (H, 3H), `bias` (2, 3H) or (3H,), gate order z, r, h, held by its `cell` as
Keras's are), configuration, masks, states, Bidirectional and saving; only the recurrence is
replaced. On each backend the core runs through that backend's own autograd:
    torch       fastgru.torch's custom operators (fastgru::gru_forward, fastgru::gru_backward)
    jax         fastgru.jax: jax.custom_vjp over fastgru's XLA custom calls (works under jax.jit)
    tensorflow  tf.numpy_function under tf.custom_gradient (eager and tf.function; not under XLA,
                so the layer tells Keras to compile without it)

Not supported (ValueError at construction, naming the argument): an activation other than tanh,
a recurrent_activation other than sigmoid, recurrent_dropout > 0. `unroll` and `use_cudnn` are
accepted and ignored. A mask (Masking, Embedding(mask_zero=True)) must be right-padded (each row
True for its first steps, then False) with at least one True step per row; another mask raises a
ValueError (on JAX and TensorFlow raised inside the callback, so it reaches the caller wrapped in
the runtime's error, with fastgru's message).
"""

from __future__ import annotations

from typing import Any

try:
    import keras
except ImportError as exc:
    raise ImportError(
        "fastgru.keras needs Keras 3 and one of its backends (torch, jax or tensorflow): pip install "
        '".[keras]" in a clone of fastgru ("fastgru[keras]" once it is on the package index), or '
        "pip install keras"
    ) from exc

from . import _host
from .convert import keras_to_flat

if int(keras.__version__.split(".")[0]) < 3:
    raise ImportError(f'fastgru.keras needs Keras 3 (pip install ".[keras]"), found keras {keras.__version__}')

__all__ = ["GRU"]

ops = keras.ops
BACKENDS = ("torch", "jax", "tensorflow")


@keras.saving.register_keras_serializable(package="fastgru")
class GRU(keras.layers.GRU):  # type: ignore[misc]
    """keras.layers.GRU computed by fastgru's core; see the module's docstring for what differs
    (nothing, within tanh/sigmoid activations and recurrent_dropout=0)."""

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        recurrent_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        backend = keras.backend.backend()
        if backend not in BACKENDS:
            raise RuntimeError(
                f"fastgru.keras.GRU runs on the torch, jax and tensorflow backends of Keras, not on "
                f"{backend!r} (set KERAS_BACKEND before importing keras)"
            )
        if keras.activations.get(activation) is not keras.activations.tanh:
            raise ValueError(f"activation: fastgru.keras.GRU computes tanh only, got {activation!r}")
        if keras.activations.get(recurrent_activation) is not keras.activations.sigmoid:
            raise ValueError(
                f"recurrent_activation: fastgru.keras.GRU computes sigmoid only, got {recurrent_activation!r}"
            )
        if recurrent_dropout != 0:
            raise ValueError(
                f"recurrent_dropout: fastgru.keras.GRU has no recurrent dropout (it would need a mask "
                f"inside the fused recurrence), got {recurrent_dropout!r}; use dropout (on the inputs)"
            )
        super().__init__(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            recurrent_dropout=recurrent_dropout,
            **kwargs,
        )
        if backend == "tensorflow":
            self.supports_jit = False  # jit_compile="auto" then compiles without XLA

    def inner_loop(
        self, sequences: Any, initial_state: Any, mask: Any, training: bool = False
    ) -> tuple[Any, Any, list[Any]]:
        """(last_output, outputs, [state]) as keras.layers.RNN.inner_loop returns them, from the core."""
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        x = sequences
        if training and self.dropout:  # one mask for every step, as keras.layers.GRU's own
            x = x * ops.expand_dims(self.cell.get_dropout_mask(sequences[:, 0, :]), 1)
        dtype = "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"
        x, h0 = ops.cast(x, dtype), ops.cast(h0, dtype)
        cell = self.cell
        params = keras_to_flat(
            ops.cast(cell.kernel, dtype),
            ops.cast(cell.recurrent_kernel, dtype),
            None if cell.bias is None else ops.cast(cell.bias, dtype),
            ops,
        )
        steps, batch = ops.shape(x)[1], ops.shape(x)[0]
        time = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)  # (1, T)
        if mask is None:
            lengths = ops.full((batch,), steps, dtype="int32")
            if self.go_backwards:
                x = ops.flip(x, axis=1)
        else:
            lengths = mask_to_lengths(mask)
            if self.go_backwards:  # each sequence reversed within its length: still right-padded
                reverse = ops.where(time < lengths[:, None], lengths[:, None] - 1 - time, time)
                x = ops.take_along_axis(x, ops.expand_dims(reverse, 2), axis=1)
        spec = (int(x.shape[2]), int(self.units), 1, False, cell.use_bias, bool(cell.reset_after))
        y, h_n = _run(params, x, ops.expand_dims(h0, 0), lengths, spec, bool(training))
        h_n = h_n[0]
        if not self.return_sequences:
            return h_n, ops.expand_dims(h_n, 1), [h_n]
        if mask is not None:
            if self.go_backwards:
                # Keras walks the reversed sequence: its masked steps come first, with zero outputs;
                # the core's zero outputs past each length rotate to the front.
                y = ops.take_along_axis(y, ops.expand_dims((time + lengths[:, None]) % steps, 2), axis=1)
            elif not self.zero_output_for_mask:  # Keras repeats the last output over the padding
                last = ops.maximum(lengths[:, None] - 1, 0)
                y = ops.take_along_axis(y, ops.expand_dims(ops.minimum(time, last), 2), axis=1)
        return h_n, y, [h_n]


def mask_to_lengths(mask: Any) -> Any:
    """(B,) int32 lengths of a right-padded (B, T) mask; -1 for a row that is not right-padded
    (a False step before a True one), which the core's callers refuse (fastgru._host.core_lengths)."""
    mask = ops.cast(mask, "int32")
    lengths = ops.sum(mask, axis=1)
    time = ops.expand_dims(ops.arange(ops.shape(mask)[1], dtype="int32"), 0)
    right_padded = ops.all(ops.equal(mask, ops.cast(time < lengths[:, None], "int32")), axis=1)
    return ops.where(right_padded, lengths, -1)


def _run(params: Any, x: Any, h0: Any, lengths: Any, spec: _host.Spec, training: bool) -> tuple[Any, Any]:
    """The core's GRU on the backend's tensors: params flat, x (B, T, I), h0 (L*D, B, H), lengths
    (B,) int32. Returns y (B, T, D*H) and h_n (L*D, B, H). training: whether a gradient is likely
    (TensorFlow's forward then keeps the workspace; JAX and torch know it themselves)."""
    backend = keras.backend.backend()
    if backend == "jax":
        from .jax import gru_flat

        return gru_flat(params, x, h0, lengths, spec)
    if backend == "tensorflow":
        from . import _tensorflow

        return _tensorflow.gru_flat(params, x, h0, lengths, spec, keep_workspace=training)
    return _run_torch(params, x, h0, lengths, spec)


def _run_torch(params: Any, x: Any, h0: Any, lengths: Any, spec: _host.Spec) -> tuple[Any, Any]:
    import torch

    from . import torch as fastgru_torch

    core_lengths = _host.core_lengths(lengths.cpu().numpy(), int(x.shape[1]))
    _, hidden_size, num_layers, bidirectional, bias, reset_after = spec
    keep_workspace = torch.is_grad_enabled() and (x.requires_grad or params.requires_grad or h0.requires_grad)
    y, h_n, _ = fastgru_torch.gru_forward(
        x.transpose(0, 1).contiguous(),
        h0.contiguous(),
        params.contiguous(),
        None if core_lengths is None else torch.from_numpy(core_lengths),
        None,
        hidden_size,
        num_layers,
        bidirectional,
        bias,
        reset_after,
        "float32",
        keep_workspace,
    )
    return y.transpose(0, 1), h_n
