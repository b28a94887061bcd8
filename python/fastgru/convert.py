"""Weights from Keras and ONNX GRUs into fastgru's (= torch.nn.GRU's) names, shapes and gate order,
and from fastgru's into an ONNX GRU node's (to_onnx, used by fastgru.onnx.export).

fastgru (like PyTorch) stacks gates r, z, n in rows of weight_ih (3H, I) / weight_hh (3H, H).
Keras stacks z, r, h in columns of kernel (I, 3H) / recurrent_kernel (H, 3H); ONNX stacks z, r, h
in rows of W (D, 3H, I) / R (D, 3H, H). Keras reset_after=False and ONNX linear_before_reset=0
are fastgru's reset_after=False; Keras reset_after=True and ONNX linear_before_reset=1 are
reset_after=True.
"""

from typing import Any

import numpy as np

from ._checks import as_numeric


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


def from_keras(kernel, recurrent_kernel, bias=None, *, layer=0, suffix=""):
    """state_dict entries of one direction of one layer from a keras.layers.GRU's weights
    (layer.get_weights()): kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,) with
    reset_after=False or (2, 3H) with reset_after=True, or None (use_bias=False).
    suffix="_reverse" for the backward layer of a Bidirectional wrapper.

    With reset_after=False, Keras's single bias becomes bias_ih and bias_hh is zeros; the two then
    act as one bias (their sum), which an optimizer such as Adam moves about twice as far per step
    as Keras moves its one."""
    kernel, recurrent_kernel = as_numeric(kernel, "kernel"), as_numeric(recurrent_kernel, "recurrent_kernel")
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != 3 * recurrent_kernel.shape[0]:
        raise ValueError(f"recurrent_kernel: expected shape (H, 3H), got {recurrent_kernel.shape}")
    H = recurrent_kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * H:
        raise ValueError(f"kernel: expected shape (I, 3H) = (I, {3 * H}), got {kernel.shape}")
    name = f"_l{layer}{suffix}"
    out = {"weight_ih" + name: _zrh_to_rzn(kernel.T), "weight_hh" + name: _zrh_to_rzn(recurrent_kernel.T)}
    if bias is not None:
        bias = as_numeric(bias, "bias")
        if bias.shape == (3 * H,):
            b_ih, b_hh = bias, np.zeros_like(bias)
        elif bias.shape == (2, 3 * H):
            b_ih, b_hh = bias
        else:
            raise ValueError(f"bias: expected shape (3H,) = ({3 * H},) or (2, 3H) = (2, {3 * H}), got {bias.shape}")
        out["bias_ih" + name], out["bias_hh" + name] = _zrh_to_rzn(b_ih), _zrh_to_rzn(b_hh)
    return out


def from_onnx(W, R, B=None, *, layer=0):
    """state_dict entries of one ONNX GRU node (one layer; forward or bidirectional):
    W (D, 3H, I), R (D, 3H, H), B (D, 6H) = [Wb | Rb] or None.

    Only the weights are read: the node's attributes are the caller's to honour. fastgru computes
    the default activations (sigmoid, tanh) without `clip`; linear_before_reset=1 is
    reset_after=True and 0 is reset_after=False; a direction="reverse" node's weights belong in
    the "_reverse" half of a bidirectional layer (a forward-only layer would run them forward)."""
    W, R = as_numeric(W, "W"), as_numeric(R, "R")
    if R.ndim != 3 or R.shape[1] != 3 * R.shape[2] or R.shape[0] not in (1, 2):
        raise ValueError(f"R: expected shape (D, 3H, H) with D in (1, 2), got {R.shape}")
    D, _, H = R.shape
    if W.ndim != 3 or W.shape[:2] != (D, 3 * H):
        raise ValueError(f"W: expected shape (D, 3H, I) = ({D}, {3 * H}, I), got {W.shape}")
    if B is not None:
        B = as_numeric(B, "B")
        if B.shape != (D, 6 * H):
            raise ValueError(f"B: expected shape (D, 6H) = ({D}, {6 * H}), got {B.shape}")
    out = {}
    for d in range(D):
        name = f"_l{layer}" + ("_reverse" if d == 1 else "")
        out["weight_ih" + name], out["weight_hh" + name] = _zrh_to_rzn(W[d]), _zrh_to_rzn(R[d])
        if B is not None:
            out["bias_ih" + name], out["bias_hh" + name] = _zrh_to_rzn(B[d, :3 * H]), _zrh_to_rzn(B[d, 3 * H:])
    return out


def to_onnx(state_dict, *, layer=0, bidirectional=False):
    """(W (D, 3H, I), R (D, 3H, H), B (D, 6H)) of the ONNX GRU node for one layer of a fastgru (or
    torch.nn.GRU) state_dict: the inverse of from_onnx. B is zeros when the layer has no biases."""
    suffixes = [f"_l{layer}", f"_l{layer}_reverse"][:2 if bidirectional else 1]
    W = np.stack([_zrh_to_rzn(as_numeric(state_dict[f"weight_ih{s}"], f"weight_ih{s}")) for s in suffixes])
    R = np.stack([_zrh_to_rzn(as_numeric(state_dict[f"weight_hh{s}"], f"weight_hh{s}")) for s in suffixes])
    if f"bias_ih{suffixes[0]}" in state_dict:
        B = np.stack([np.concatenate([_zrh_to_rzn(as_numeric(state_dict[f"bias_ih{s}"], f"bias_ih{s}")),
                                      _zrh_to_rzn(as_numeric(state_dict[f"bias_hh{s}"], f"bias_hh{s}"))])
                      for s in suffixes])
    else:
        B = np.zeros((len(suffixes), 2 * R.shape[1]), R.dtype)
    return W, R, B
