"""NumPy reference GRU: the readable specification of the math.

Equations, rows of weight_ih / weight_hh in gate order r, z, n:
    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))      reset_after=True
    n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)      reset_after=False
    h' = (1 - z) * n + z * h
Both variants are written as n = tanh(gi_n + c * gh_n) with gh_n = W_hn s + b_hn, where
(s, c) = (h, r) when reset_after and (r * h, 1) otherwise.

Padding: step t of sequence b is valid when t < lengths[b]. A padded step outputs 0 and
leaves the state unchanged, so the reverse direction effectively starts at lengths[b] - 1.

compute_dtype="bfloat16" (float32 only): both operands of every product, forward and backward,
go through round_bf16 (`q` below) and the product accumulates in float32; everything else
(parameters, states, gate math, gradients) stays float32, as under torch.autocast.

int8 weights (fastgru.quantize, inference only): a weight matrix given as quantize.Int8Rows
meets its vectors quantized to int8 (quantize.int8_product).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .quantize import Int8Rows, int8_product

Array = npt.NDArray[Any]
Rounding = Callable[[Array], Array]
Weights = Array | Int8Rows


def sigmoid(a: Array) -> Array:
    # Same function as 1 / (1 + exp(-a)), but never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def round_bf16(a: npt.ArrayLike) -> Array:
    """float32 a rounded to the nearest bfloat16 (ties to even), kept as float32: the top 16 bits
    of each value. NaN stays NaN; values past bfloat16's largest round to infinity."""
    a = np.asarray(a, np.float32)
    nan = np.isnan(a)
    bits = np.where(nan, np.uint32(0), a.view(np.uint32))
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return np.where(nan, a, rounded.view(np.float32))


def operand_rounding(compute_dtype: str) -> Rounding:
    """The function each product applies to both its operands."""
    if compute_dtype == "bfloat16":
        return round_bf16
    if compute_dtype == "float32":
        return _identity
    raise ValueError(f"compute_dtype: expected 'float32' or 'bfloat16', got {compute_dtype!r}")


def _identity(a: Array) -> Array:
    return a


def product(a: Array, w: Weights, q: Rounding = _identity) -> Array:
    """a (B, K) times the weight rows w (rows, K) transposed: (B, rows)."""
    if isinstance(w, Int8Rows):
        return int8_product(a, w)
    result: Array = q(a) @ q(w).T
    return result


def param_name(kind: str, layer: int, direction: int) -> str:
    """torch.nn.GRU parameter name, e.g. weight_ih_l0 or bias_hh_l1_reverse."""
    return f"{kind}_l{layer}" + ("_reverse" if direction == 1 else "")


def layer_params(
    params: Mapping[str, Any], layer: int, direction: int, dtype: npt.DTypeLike
) -> tuple[Weights, Weights, Array, Array]:
    """(W_ih (3H,in), W_hh (3H,H), b_ih (3H,), b_hh (3H,)) of one direction; missing biases are
    zeros; int8 weights (Int8Rows) as they are."""

    def weights(kind: str) -> Weights:
        w = params[param_name(kind, layer, direction)]
        return w if isinstance(w, Int8Rows) else np.asarray(w, dtype)

    w_ih, w_hh = weights("weight_ih"), weights("weight_hh")
    zeros = np.zeros(w_hh.shape[0], dtype)
    b_ih = params.get(param_name("bias_ih", layer, direction), zeros)
    b_hh = params.get(param_name("bias_hh", layer, direction), zeros)
    return (w_ih, w_hh, np.asarray(b_ih, dtype), np.asarray(b_hh, dtype))


def time_order(T: int, reverse: bool) -> range:
    return range(T - 1, -1, -1) if reverse else range(T)


def gru_direction_forward(
    x: Array,
    h0: Array,
    valid: Array,
    w_ih: Weights,
    w_hh: Weights,
    b_ih: Array,
    b_hh: Array,
    *,
    reverse: bool,
    reset_after: bool,
    q: Rounding = _identity,
) -> tuple[Array, Array, dict[int, tuple[Array, ...]]]:
    """One direction of one layer.
    x: (T,B,in), h0: (B,H), valid: (T,B) bool, w_ih: (3H,in), w_hh: (3H,H), b_ih, b_hh: (3H,);
    q: applied to both operands of every product (operand_rounding).
    Returns y (T,B,H), h_n (B,H), and the per-step cache {t: (h, r, z, n, gh_n)}."""
    T, B, _ = x.shape
    H = h0.shape[1]
    y = np.zeros((T, B, H), x.dtype)
    steps: dict[int, tuple[Array, ...]] = {}
    h = h0
    for t in time_order(T, reverse):
        gi = product(x[t], w_ih, q) + b_ih  # (B,3H)
        gh_rz = product(h, w_hh[: 2 * H], q) + b_hh[: 2 * H]  # (B,2H)
        r = sigmoid(gi[:, :H] + gh_rz[:, :H])
        z = sigmoid(gi[:, H : 2 * H] + gh_rz[:, H:])
        s = h if reset_after else r * h
        gh_n = product(s, w_hh[2 * H :], q) + b_hh[2 * H :]
        n = np.tanh(gi[:, 2 * H :] + (r * gh_n if reset_after else gh_n))
        h_new = (1 - z) * n + z * h
        m = valid[t][:, None]
        steps[t] = (h, r, z, n, gh_n)
        y[t] = np.where(m, h_new, 0)
        h = np.where(m, h_new, h)
    return y, h, steps


def gru_direction_backward(
    x: Array,
    valid: Array,
    w_ih: Array,
    w_hh: Array,
    steps: Mapping[int, tuple[Array, ...]],
    dy: Array,
    dh_n: Array,
    *,
    reverse: bool,
    reset_after: bool,
    q: Rounding = _identity,
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Backward of gru_direction_forward (with the same q). dy: (T,B,H), dh_n: (B,H).
    Returns dx (T,B,in), dh0 (B,H), dW_ih, dW_hh, db_ih, db_hh."""
    T = x.shape[0]
    H = dh_n.shape[1]
    dx = np.zeros_like(x)
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db_ih, db_hh = np.zeros(3 * H, x.dtype), np.zeros(3 * H, x.dtype)
    dh = dh_n  # gradient w.r.t. the state after step t
    for t in reversed(time_order(T, reverse)):
        h, r, z, n, gh_n = steps[t]
        m = valid[t][:, None]
        dh_new = np.where(m, dh + dy[t], 0)  # padded steps pass dh straight through
        dn = dh_new * (1 - z)
        dz = dh_new * (h - n)
        da_n = dn * (1 - n * n)  # pre-activation of n
        dgh_n = da_n * r if reset_after else da_n
        ds = q(dgh_n) @ q(w_hh[2 * H :])
        dr = da_n * gh_n if reset_after else ds * h
        da_r = dr * r * (1 - r)
        da_z = dz * z * (1 - z)
        dgi = np.concatenate([da_r, da_z, da_n], axis=1)  # (B,3H) = d(W_ih x + b_ih)
        dgh_rz = dgi[:, : 2 * H]
        s = h if reset_after else r * h
        dh = np.where(m, 0, dh) + dh_new * z + q(dgh_rz) @ q(w_hh[: 2 * H]) + (ds if reset_after else ds * r)
        dx[t] = q(dgi) @ q(w_ih)
        dw_ih += q(dgi).T @ q(x[t])
        db_ih += dgi.sum(0)
        dw_hh[: 2 * H] += q(dgh_rz).T @ q(h)
        dw_hh[2 * H :] += q(dgh_n).T @ q(s)
        db_hh += np.concatenate([dgh_rz, dgh_n], axis=1).sum(0)
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


def gru_forward(
    params: Mapping[str, Any],
    x: Array,
    h0: Array,
    lengths: npt.ArrayLike,
    *,
    num_layers: int,
    bidirectional: bool,
    reset_after: bool,
    dropout_masks: Array | Sequence[Array] | None = None,
    keep_cache: bool = True,
    compute_dtype: str = "float32",
) -> tuple[Array, Array, dict[str, Any] | None]:
    """params: dict name -> ndarray with torch.nn.GRU names/shapes (weight_ih_l{k}[_reverse] (3H,in_k),
    weight_hh_l{k} (3H,H), bias_ih_l{k} (3H,), bias_hh_l{k} (3H,)); bias keys may be absent (bias=False => treat as zero).
    x: (T,B,I) time-major. h0: (L*D,B,H) (never None; caller passes zeros). lengths: (B,) int array (never None; caller passes full T).
    dropout_masks: None or list of num_layers-1 arrays (T,B,D*H) of multipliers applied to the INPUT of layer k>=1 (mask[k-1] multiplies layer k's input).
    Returns (y (T,B,D*H), h_n (L*D,B,H), cache) ; cache is None when keep_cache=False, else whatever gru_backward needs.
    All computation in x.dtype (the caller passes float32 or float64 arrays and params of the same dtype),
    products with bfloat16 operands when compute_dtype="bfloat16" (float32 only); weight matrices
    given as Int8Rows (float32, inference) meet int8 activations."""
    dtype = x.dtype
    q = operand_rounding(compute_dtype)
    if compute_dtype == "bfloat16" and dtype != np.float32:
        raise ValueError(f"compute_dtype: bfloat16 products need float32 arrays, got {dtype}")
    T = x.shape[0]
    D = 2 if bidirectional else 1
    valid = np.arange(T)[:, None] < np.asarray(lengths)[None, :]  # (T,B)
    h_n = np.zeros(h0.shape, dtype)
    layers: list[tuple[Array, list[dict[int, tuple[Array, ...]]]]] = []
    inp = x
    for k in range(num_layers):
        if k > 0 and dropout_masks is not None:
            inp = inp * dropout_masks[k - 1]
        ys: list[Array] = []
        steps: list[dict[int, tuple[Array, ...]]] = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = layer_params(params, k, d, dtype)
            y_d, h_n[k * D + d], steps_d = gru_direction_forward(
                inp,
                np.asarray(h0[k * D + d], dtype),
                valid,
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                reverse=d == 1,
                reset_after=reset_after,
                q=q,
            )
            ys.append(y_d)
            steps.append(steps_d)
        layers.append((inp, steps))
        inp = np.concatenate(ys, axis=2)
    cache = {"valid": valid, "layers": layers, "dropout_masks": dropout_masks, "q": q} if keep_cache else None
    return inp, h_n, cache


def gru_backward(
    params: Mapping[str, npt.ArrayLike],
    cache: Mapping[str, Any],
    dy: npt.ArrayLike,
    dh_n: Array,
    *,
    num_layers: int,
    bidirectional: bool,
    reset_after: bool,
) -> tuple[Array, Array, dict[str, Array]]:
    """dy: (T,B,D*H), dh_n: (L*D,B,H) (never None; caller passes zeros). Returns (dx (T,B,I), dh0 (L*D,B,H), grads dict with the same keys/shapes as params)."""
    valid, layers, masks, q = cache["valid"], cache["layers"], cache["dropout_masks"], cache["q"]
    D = 2 if bidirectional else 1
    dtype = layers[0][0].dtype
    H = dh_n.shape[2]
    dh0 = np.zeros(dh_n.shape, dtype)
    grads: dict[str, Array] = {}
    dout = np.asarray(dy, dtype)  # gradient w.r.t. layer k's output
    for k in reversed(range(num_layers)):
        inp, steps = layers[k]
        dinp = np.zeros_like(inp)
        for d in range(D):
            w_ih, w_hh, _, _ = layer_params(params, k, d, dtype)
            if isinstance(w_ih, Int8Rows) or isinstance(w_hh, Int8Rows):
                raise ValueError("gru_backward: int8 weights are for inference only")
            dx_d, dh0[k * D + d], *dparams = gru_direction_backward(
                inp,
                valid,
                w_ih,
                w_hh,
                steps[d],
                dout[:, :, d * H : (d + 1) * H],
                np.asarray(dh_n[k * D + d], dtype),
                reverse=d == 1,
                reset_after=reset_after,
                q=q,
            )
            dinp += dx_d
            for kind, g in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), dparams):
                name = param_name(kind, k, d)
                if name in params:
                    grads[name] = g
        dout = dinp * masks[k - 1] if k > 0 and masks is not None else dinp
    return dout, dh0, grads
