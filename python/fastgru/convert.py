"""Weights from Keras and ONNX GRUs into fastgru's (= torch.nn.GRU's) names, shapes and gate order,
and from fastgru's into an ONNX GRU node's (to_onnx, used by fastgru.onnx.export).

fastgru (like PyTorch) stacks gates r, z, n in rows of weight_ih (3H, I) / weight_hh (3H, H).
Keras stacks z, r, h in columns of kernel (I, 3H) / recurrent_kernel (H, 3H); ONNX stacks z, r, h
in rows of W (D, 3H, I) / R (D, 3H, H). Keras reset_after=False and ONNX linear_before_reset=0
are fastgru's reset_after=False; Keras reset_after=True and ONNX linear_before_reset=1 are
reset_after=True.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ._checks import as_numeric

Array = npt.NDArray[Any]


def _zrh_to_rzn(rows: Any, ops: Any = np) -> Any:
    """Rows in gate order z, r, h (3H, ...) -> r, z, n; swapping the first two gates is its own
    inverse, so this also takes r, z, n to z, r, h. ops: the array namespace (NumPy, keras.ops or
    jax.numpy: the same split and concatenate), so the frameworks differentiate through it."""
    z, r, h = ops.split(rows, 3, axis=0)
    return ops.concatenate([r, z, h], axis=0)


def keras_to_flat(kernel: Any, recurrent_kernel: Any, bias: Any = None, ops: Any = np) -> Any:
    """The core's flat parameter buffer (weight_ih, weight_hh, bias_ih, bias_hh of fastgru.GRU's
    layout, gate order r, z, n) of one keras.layers.GRU's weights: kernel (I, 3H),
    recurrent_kernel (H, 3H), bias (2, 3H) (reset_after=True), (3H,) (reset_after=False: the one
    bias is bias_ih, and bias_hh is zeros) or None (use_bias=False). ops: the array namespace of
    the weights (NumPy, keras.ops, jax.numpy); fastgru.keras.GRU builds the buffer with keras.ops
    at every call, so each backend's autograd carries the gradient back to Keras's weights."""
    parts = [_zrh_to_rzn(ops.transpose(kernel), ops), _zrh_to_rzn(ops.transpose(recurrent_kernel), ops)]
    if bias is not None:
        if len(bias.shape) == 2:
            parts += [_zrh_to_rzn(bias[0], ops), _zrh_to_rzn(bias[1], ops)]
        else:
            parts += [_zrh_to_rzn(bias, ops), ops.zeros_like(bias)]
    return ops.concatenate([ops.reshape(part, (-1,)) for part in parts], axis=0)


def from_keras(
    kernel: npt.ArrayLike,
    recurrent_kernel: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    layer: int = 0,
    suffix: str = "",
) -> dict[str, Array]:
    """state_dict entries of one direction of one layer from a keras.layers.GRU's weights
    (layer.get_weights()): kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,) with
    reset_after=False or (2, 3H) with reset_after=True, or None (use_bias=False).
    suffix="_reverse" for the backward layer of a Bidirectional wrapper.

    With reset_after=False, Keras's single bias becomes bias_ih and bias_hh is zeros; the two then
    act as one bias (their sum), which an optimizer such as Adam moves about twice as far per step
    as Keras moves its one."""
    w_ih, w_hh = as_numeric(kernel, "kernel"), as_numeric(recurrent_kernel, "recurrent_kernel")
    if w_hh.ndim != 2 or w_hh.shape[1] != 3 * w_hh.shape[0]:
        raise ValueError(f"recurrent_kernel: expected shape (H, 3H), got {w_hh.shape}")
    H = w_hh.shape[0]
    if w_ih.ndim != 2 or w_ih.shape[1] != 3 * H:
        raise ValueError(f"kernel: expected shape (I, 3H) = (I, {3 * H}), got {w_ih.shape}")
    name = f"_l{layer}{suffix}"
    out = {"weight_ih" + name: _zrh_to_rzn(w_ih.T), "weight_hh" + name: _zrh_to_rzn(w_hh.T)}
    if bias is not None:
        b = as_numeric(bias, "bias")
        if b.shape == (3 * H,):
            b_ih, b_hh = b, np.zeros_like(b)
        elif b.shape == (2, 3 * H):
            b_ih, b_hh = b
        else:
            raise ValueError(f"bias: expected shape (3H,) = ({3 * H},) or (2, 3H) = (2, {3 * H}), got {b.shape}")
        out["bias_ih" + name], out["bias_hh" + name] = _zrh_to_rzn(b_ih), _zrh_to_rzn(b_hh)
    return out


def from_onnx(
    W: npt.ArrayLike, R: npt.ArrayLike, B: npt.ArrayLike | None = None, *, layer: int = 0
) -> dict[str, Array]:
    """state_dict entries of one ONNX GRU node (one layer; forward or bidirectional):
    W (D, 3H, I), R (D, 3H, H), B (D, 6H) = [Wb | Rb] or None.

    Only the weights are read: the node's attributes are the caller's to honour. fastgru computes
    the default activations (sigmoid, tanh) without `clip`; linear_before_reset=1 is
    reset_after=True and 0 is reset_after=False; a direction="reverse" node's weights belong in
    the "_reverse" half of a bidirectional layer (a forward-only layer would run them forward)."""
    w, r = as_numeric(W, "W"), as_numeric(R, "R")
    if r.ndim != 3 or r.shape[1] != 3 * r.shape[2] or r.shape[0] not in (1, 2):
        raise ValueError(f"R: expected shape (D, 3H, H) with D in (1, 2), got {r.shape}")
    D, _, H = r.shape
    if w.ndim != 3 or w.shape[:2] != (D, 3 * H):
        raise ValueError(f"W: expected shape (D, 3H, I) = ({D}, {3 * H}, I), got {w.shape}")
    b = None
    if B is not None:
        b = as_numeric(B, "B")
        if b.shape != (D, 6 * H):
            raise ValueError(f"B: expected shape (D, 6H) = ({D}, {6 * H}), got {b.shape}")
    out = {}
    for d in range(D):
        name = f"_l{layer}" + ("_reverse" if d == 1 else "")
        out["weight_ih" + name], out["weight_hh" + name] = _zrh_to_rzn(w[d]), _zrh_to_rzn(r[d])
        if b is not None:
            out["bias_ih" + name], out["bias_hh" + name] = _zrh_to_rzn(b[d, : 3 * H]), _zrh_to_rzn(b[d, 3 * H :])
    return out


def to_onnx(
    state_dict: Mapping[str, npt.ArrayLike], *, layer: int = 0, bidirectional: bool = False
) -> tuple[Array, Array, Array]:
    """(W (D, 3H, I), R (D, 3H, H), B (D, 6H)) of the ONNX GRU node for one layer of a fastgru (or
    torch.nn.GRU) state_dict: the inverse of from_onnx. B is zeros when the layer has no biases."""
    suffixes = [f"_l{layer}", f"_l{layer}_reverse"][: 2 if bidirectional else 1]
    W = np.stack([_zrh_to_rzn(as_numeric(state_dict[f"weight_ih{s}"], f"weight_ih{s}")) for s in suffixes])
    R = np.stack([_zrh_to_rzn(as_numeric(state_dict[f"weight_hh{s}"], f"weight_hh{s}")) for s in suffixes])
    if f"bias_ih{suffixes[0]}" in state_dict:
        B = np.stack(
            [
                np.concatenate(
                    [
                        _zrh_to_rzn(as_numeric(state_dict[f"bias_ih{s}"], f"bias_ih{s}")),
                        _zrh_to_rzn(as_numeric(state_dict[f"bias_hh{s}"], f"bias_hh{s}")),
                    ]
                )
                for s in suffixes
            ]
        )
    else:
        B = np.zeros((len(suffixes), 2 * R.shape[1]), R.dtype)
    return W, R, B
