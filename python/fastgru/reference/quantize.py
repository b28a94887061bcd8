"""NumPy reference of int8 weights (fastgru.quantize): the readable specification.

A weight matrix W (rows, cols) becomes int8 values q and one float32 scale per row (per output
unit: per gate row of weight_ih and weight_hh, per output of a Dense head's weight):

    scale[r] = max_c |W[r, c]| / 127            (0 for a row of zeros)
    q[r, c]  = clip(round(W[r, c] / scale[r]), -127, 127)     (round half to even)

and the model computes with the weight q[r, c] * scale[r] (float32): symmetric, so zero stays
exactly zero. Biases, states, activations and outputs stay float32: the int8 values are widened
to float where they meet the activations (weight-only quantization), so the only error is the
weights' rounding, at most scale[r] / 2 per weight.
"""

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
    """The float32 weights (rows, cols) a model computes with: q * scale, row by row."""
    return np.asarray(q, np.float32) * np.asarray(scale, np.float32)[:, None]
