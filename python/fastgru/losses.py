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

import numpy as np

from ._backends import NUMPY as reference
from ._checks import as_numeric, core_entry

LOSSES = ("mse", "mae", "binary_crossentropy", "cross_entropy")


def check_loss(name):
    """name if it is a known loss, else ValueError listing the known ones."""
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {name!r}")
    return name


def loss_count(name, rows, outputs):
    """The number of terms a mean loss over `rows` valid rows divides by: rows for
    cross_entropy, rows * outputs for the elementwise losses."""
    return rows if name == "cross_entropy" else rows * outputs


def check_mask(mask, rows_shape):
    """mask as a bool array of shape rows_shape (None stays None), else ValueError."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != rows_shape:
        raise ValueError(f"mask: expected a bool array of shape {rows_shape}, got {mask.dtype} {mask.shape}")
    return mask


def check_target(name, target, rows_shape, outputs, dtype, mask=None):
    """target for loss `name` on logits of shape rows_shape + (outputs,): int64 labels of shape
    rows_shape in [0, outputs) (at the valid rows) for cross_entropy, else a dtype array of the
    logits' shape. TypeError/ValueError naming `target` otherwise."""
    if name == "cross_entropy":
        target = as_numeric(target, "target")
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"target: cross_entropy expects integer labels, got dtype {target.dtype}")
        if target.shape != rows_shape:
            raise ValueError(f"target: expected labels of shape {rows_shape}, got {target.shape}")
        valid = target if mask is None else target[mask]
        if valid.size and (valid.min() < 0 or valid.max() >= outputs):
            raise ValueError(f"target: labels must be in [0, {outputs}), got min {valid.min()}, max {valid.max()}")
        return target.astype(np.int64, copy=False)
    target = np.asarray(as_numeric(target, "target"), dtype)
    if target.shape != rows_shape + (outputs,):
        raise ValueError(f"target: expected shape {rows_shape + (outputs,)} (that of logits), got {target.shape}")
    return target


def compute(name, logits, target, mask=None, *, backend="cpp"):
    """(loss as a Python float, dlogits with logits' shape and dtype); see the module docstring."""
    check_loss(name)
    logits = as_numeric(logits, "logits")
    # float32 stays float32 (either byte order); other real numbers are computed in float64.
    dtype = np.float32 if logits.dtype.kind == "f" and logits.dtype.itemsize == 4 else np.float64
    logits = np.ascontiguousarray(logits, dtype)
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits: expected shape (..., O) with O >= 1, got {logits.shape}")
    rows_shape, O = logits.shape[:-1], logits.shape[-1]
    mask = check_mask(mask, rows_shape)
    target = check_target(name, target, rows_shape, O, logits.dtype, mask)
    if backend == "numpy":
        return reference.LOSSES[name](logits, target, mask)
    rows = int(np.prod(rows_shape))
    target_rows = target.reshape(rows) if name == "cross_entropy" else target.reshape(rows, O)
    loss, dlogits = core_entry("loss", logits.dtype)(
        name, logits.reshape(rows, O), target_rows, None if mask is None else mask.reshape(rows))
    return loss, dlogits.reshape(logits.shape)
