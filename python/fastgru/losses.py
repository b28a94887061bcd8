"""Training losses on logits: the loss value and its gradient in one call.

    loss, dlogits = fastgru.losses.compute("mse", logits, target, mask)

logits (..., O), O >= 1: any real array-like, computed in float32 if it is float32 (either byte
order), else in float64; target (..., O) for "mse", "mae" and "binary_crossentropy" (targets in
[0, 1], sigmoid applied to the logits inside the loss), integer labels (...) in [0, O) for
"cross_entropy" (softmax applied inside); mask (...) bool marks the valid rows (None: all).
The loss is the mean over the valid rows (and over O for the elementwise losses), i.e. the torch
loss with reduction="mean" applied to the valid rows only; dlogits is zero at masked rows.
`backend="cpp"` runs cpp/src/loss.cpp, `backend="numpy"` fastgru.reference.heads.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

from ._backends import NUMPY as reference
from ._checks import as_numeric, core_entry
from ._typing import FloatArray

LOSSES = ("mse", "mae", "binary_crossentropy", "cross_entropy")


def check_loss(name: object) -> str:
    """name if it is a known loss, else ValueError listing the known ones."""
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {name!r}")
    return name


def loss_count(name: str, rows: int, outputs: int) -> int:
    """The number of terms a mean loss over `rows` valid rows divides by: rows for
    cross_entropy, rows * outputs for the elementwise losses."""
    return rows if name == "cross_entropy" else rows * outputs


def check_mask(mask: npt.ArrayLike | None, rows_shape: tuple[int, ...]) -> npt.NDArray[np.bool_] | None:
    """mask as a bool array of shape rows_shape (None stays None), else ValueError."""
    if mask is None:
        return None
    array = np.asarray(mask)
    if array.dtype != bool or array.shape != rows_shape:
        raise ValueError(f"mask: expected a bool array of shape {rows_shape}, got {array.dtype} {array.shape}")
    return array


def check_target(
    name: str,
    target: object,
    rows_shape: tuple[int, ...],
    outputs: int,
    dtype: npt.DTypeLike,
    mask: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[Any]:
    """target for loss `name` on logits of shape rows_shape + (outputs,): int64 labels of shape
    rows_shape in [0, outputs) (at the valid rows) for cross_entropy, else a dtype array of the
    logits' shape. TypeError/ValueError naming `target` otherwise."""
    if name == "cross_entropy":
        labels = as_numeric(target, "target")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"target: cross_entropy expects integer labels, got dtype {labels.dtype}")
        if labels.shape != rows_shape:
            raise ValueError(f"target: expected labels of shape {rows_shape}, got {labels.shape}")
        valid = labels if mask is None else labels[mask]
        if valid.size and (valid.min() < 0 or valid.max() >= outputs):
            raise ValueError(f"target: labels must be in [0, {outputs}), got min {valid.min()}, max {valid.max()}")
        return labels.astype(np.int64, copy=False)
    values = np.asarray(as_numeric(target, "target"), dtype)
    if values.shape != rows_shape + (outputs,):
        raise ValueError(f"target: expected shape {rows_shape + (outputs,)} (that of logits), got {values.shape}")
    return values


def compute(
    name: str, logits: npt.ArrayLike, target: npt.ArrayLike, mask: npt.ArrayLike | None = None, *, backend: str = "cpp"
) -> tuple[float, FloatArray]:
    """(loss as a Python float, dlogits with logits' shape and dtype); see the module docstring."""
    check_loss(name)
    values = as_numeric(logits, "logits")
    # float32 stays float32 (either byte order); other real numbers are computed in float64.
    dtype = np.float32 if values.dtype.kind == "f" and values.dtype.itemsize == 4 else np.float64
    rows_logits: FloatArray = np.ascontiguousarray(values, dtype)
    if rows_logits.ndim < 1 or rows_logits.shape[-1] == 0:
        raise ValueError(f"logits: expected shape (..., O) with O >= 1, got {rows_logits.shape}")
    rows_shape, O = rows_logits.shape[:-1], rows_logits.shape[-1]
    checked_mask = check_mask(mask, rows_shape)
    checked_target = check_target(name, target, rows_shape, O, rows_logits.dtype, checked_mask)
    if backend == "numpy":
        return reference.LOSSES[name](rows_logits, checked_target, checked_mask)
    rows = int(np.prod(rows_shape))
    target_rows = checked_target.reshape(rows) if name == "cross_entropy" else checked_target.reshape(rows, O)
    loss: float
    dlogits: FloatArray
    loss, dlogits = core_entry("loss", rows_logits.dtype)(
        name, rows_logits.reshape(rows, O), target_rows, None if checked_mask is None else checked_mask.reshape(rows)
    )
    return loss, dlogits.reshape(rows_logits.shape)
