"""NumPy reference of int8 weights (fastgru.quantize): the readable specification.

A weight matrix W (rows, cols) becomes int8 values q and one float32 scale per row (per output
unit: per gate row of weight_ih and weight_hh, per output of a Dense head's weight):

    scale[r] = max_c |W[r, c]| / 127            (0 for a row of zeros)
    q[r, c]  = clip(round(W[r, c] / scale[r]), -127, 127)     (round half to even)

so the weight stands for q[r, c] * scale[r] (float32): symmetric, zero stays exactly zero.

The GRU's products meet these weights with int8 activations (int8_product): each vector a
product multiplies (a step's input x_t or a lower layer's output, the state h, and r * h for
reset_after=False) is quantized on the fly with one scale of its own,

    s = max_k |a[k]| / 127,   qa[k] = round(a[k] * (127 / max_k |a[k]|))   (float32, half to even)

and the product is the exact integer sum times both scales: float32(sum_k q[r, k] * qa[k]) *
(s * scale[r]). A zero vector has s = 0; one holding NaN or infinity gives NaN products. Gate
math, biases, states and outputs stay float32. A Dense head's small product keeps float32
activations (it computes with q * scale).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

INT8_LIMIT = 127


def quantize_rows(w: npt.ArrayLike) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """(q int8 (rows, cols), scale float32 (rows,)) of a float32 weight matrix w (rows, cols)."""
    rows = np.asarray(w, np.float32)
    scale = (np.abs(rows).max(axis=1) / np.float32(INT8_LIMIT)).astype(np.float32)
    divisor = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(rows / divisor[:, None]), -INT8_LIMIT, INT8_LIMIT).astype(np.int8)
    return q, scale


def dequantize_rows(q: npt.ArrayLike, scale: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The float32 weights (rows, cols) q stands for: q * scale, row by row."""
    return np.asarray(q, np.float32) * np.asarray(scale, np.float32)[:, None]


@dataclass(frozen=True)
class Int8Rows:
    """A weight matrix as quantize_rows gives it: q int8 (rows, cols), scale float32 (rows,).
    Slicing takes rows (w_hh[: 2 * H] is the r and z gates' rows)."""

    q: npt.NDArray[np.int8]
    scale: npt.NDArray[np.float32]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.q.shape

    def __getitem__(self, rows: slice) -> "Int8Rows":
        return Int8Rows(self.q[rows], self.scale[rows])


def quantize_activations(a: npt.ArrayLike) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """(qa int8 (B, K), s float32 (B,)): each row of a (B, K) quantized with one scale of its own."""
    a = np.asarray(a, np.float32)
    amax = np.abs(a).max(axis=1)
    finite = np.isfinite(amax)
    usable = finite & (amax > 0)
    safe = np.where(usable, amax, np.float32(1))
    inv = (np.float32(INT8_LIMIT) / safe).astype(np.float32)
    qa = np.where(usable[:, None], np.rint(np.where(usable[:, None], a, 0) * inv[:, None]), 0).astype(np.int8)
    s = np.where(finite, amax / np.float32(INT8_LIMIT), np.float32(np.nan)).astype(np.float32)
    return qa, s


def int8_product(a: npt.ArrayLike, w: Int8Rows) -> npt.NDArray[np.float32]:
    """a (B, K) times w's rows (rows, K) transposed -> (B, rows), with a quantized row by row."""
    qa, s = quantize_activations(a)
    sums: npt.NDArray[Any] = qa.astype(np.int64) @ w.q.astype(np.int64).T  # exact
    return sums.astype(np.float32) * (s[:, None] * w.scale[None, :])
