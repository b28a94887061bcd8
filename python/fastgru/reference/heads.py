"""NumPy reference for what sits on top of the GRU: the Dense head and the training losses.
The readable specification that cpp/src/dense.cpp and cpp/src/loss.cpp are tested against;
names and semantics follow torch.nn.Linear and the torch losses with reduction="mean".

Losses take logits (..., O) and a mask (...) of valid rows (None: all valid). A row is one
time step of one sequence (or one sequence when the model predicts from its last state).
The loss is the mean over the valid rows and, for the elementwise losses, over the O outputs:
exactly the torch loss applied to the valid rows only. Each returns (loss, dlogits), with
dlogits zero at the masked rows.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

__all__ = ["LOSSES", "binary_crossentropy", "cross_entropy", "dense_backward", "dense_forward", "mae", "mse"]


def dense_forward(x: Array, weight: Array, bias: Array | None) -> Array:
    """x (..., in), weight (out, in), bias (out,) or None -> y (..., out) = x W^T + b."""
    y: Array = x @ weight.T
    return y if bias is None else y + bias


def dense_backward(x: Array, weight: Array, dy: Array) -> tuple[Array, Array, Array]:
    """Backward of dense_forward. dy (..., out) -> (dx (..., in), dweight (out, in), dbias (out,))."""
    rows_x = x.reshape(-1, x.shape[-1])
    rows_dy = dy.reshape(-1, dy.shape[-1])
    return dy @ weight, rows_dy.T @ rows_x, rows_dy.sum(0)


def _masked_mean(elementwise: Array, grad: Array, mask: npt.ArrayLike | None, per_row: bool) -> tuple[float, Array]:
    """Mean of elementwise over the valid rows: elementwise is (...) per row when per_row, else
    (..., O) and averaged over O too. grad (..., O) is scaled to match and zeroed at masked rows."""
    valid = np.ones(grad.shape[:-1], bool) if mask is None else np.asarray(mask, bool)
    count = valid.sum() * (1 if per_row else grad.shape[-1])
    if count == 0:
        return 0.0, np.zeros_like(grad)
    loss = np.where(valid if per_row else valid[..., None], elementwise, 0).sum() / count
    return float(loss), np.where(valid[..., None], grad, 0) / count


def mse(logits: Array, target: Array, mask: npt.ArrayLike | None = None) -> tuple[float, Array]:
    """mean (x - y)^2."""
    d = logits - target
    return _masked_mean(d * d, 2 * d, mask, per_row=False)


def mae(logits: Array, target: Array, mask: npt.ArrayLike | None = None) -> tuple[float, Array]:
    """mean |x - y|; gradient sign(x - y), 0 where x == y (as torch.nn.L1Loss)."""
    d = logits - target
    return _masked_mean(np.abs(d), np.sign(d), mask, per_row=False)


def sigmoid(a: Array) -> Array:
    # Same function as 1 / (1 + exp(-a)), but never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def binary_crossentropy(logits: Array, target: Array, mask: npt.ArrayLike | None = None) -> tuple[float, Array]:
    """mean of -[y log s(x) + (1 - y) log(1 - s(x))] with s the sigmoid, written in the form that
    never overflows: max(x, 0) - x y + log(1 + exp(-|x|)) (torch.nn.BCEWithLogitsLoss)."""
    x = logits
    elementwise = np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))
    return _masked_mean(elementwise, sigmoid(x) - target, mask, per_row=False)


def cross_entropy(logits: Array, labels: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> tuple[float, Array]:
    """mean of -log softmax(x)[label] (torch.nn.CrossEntropyLoss). labels (...) integers in [0, O)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)  # exp never overflows
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_softmax = shifted - log_sum
    onehot = np.arange(logits.shape[-1]) == np.asarray(labels)[..., None]
    row_loss = -np.where(onehot, log_softmax, 0).sum(axis=-1)
    return _masked_mean(row_loss, np.exp(log_softmax) - onehot, mask, per_row=True)


LOSSES: dict[str, Callable[[Array, Array, npt.ArrayLike | None], tuple[float, Array]]] = {
    "mse": mse,
    "mae": mae,
    "binary_crossentropy": binary_crossentropy,
    "cross_entropy": cross_entropy,
}
