"""NumPy reference for what sits on top of the GRU: the Dense head and the training losses.
The readable specification that cpp/src/dense.cpp and cpp/src/loss.cpp are tested against;
names and semantics follow torch.nn.Linear and the torch losses with reduction="mean".

Losses take logits (..., O) and a mask (...) of valid rows (None: all valid). A row is one
time step of one sequence (or one sequence when the model predicts from its last state).
The loss is the mean over the valid rows and, for the elementwise losses, over the O outputs:
exactly the torch loss applied to the valid rows only. Each returns (loss, dlogits), with
dlogits zero at the masked rows.
"""

import numpy as np

__all__ = ["dense_forward", "dense_backward", "mse", "mae", "binary_crossentropy", "cross_entropy", "LOSSES"]


def dense_forward(x, weight, bias):
    """x (..., in), weight (out, in), bias (out,) or None -> y (..., out) = x W^T + b."""
    y = x @ weight.T
    return y if bias is None else y + bias


def dense_backward(x, weight, dy):
    """Backward of dense_forward. dy (..., out) -> (dx (..., in), dweight (out, in), dbias (out,))."""
    rows_x = x.reshape(-1, x.shape[-1])
    rows_dy = dy.reshape(-1, dy.shape[-1])
    return dy @ weight, rows_dy.T @ rows_x, rows_dy.sum(0)


def _masked_mean(elementwise, grad, mask, per_row):
    """Mean of elementwise over the valid rows: elementwise is (...) per row when per_row, else
    (..., O) and averaged over O too. grad (..., O) is scaled to match and zeroed at masked rows."""
    mask = np.ones(grad.shape[:-1], bool) if mask is None else np.asarray(mask, bool)
    count = mask.sum() * (1 if per_row else grad.shape[-1])
    if count == 0:
        return 0.0, np.zeros_like(grad)
    loss = np.where(mask if per_row else mask[..., None], elementwise, 0).sum() / count
    return float(loss), np.where(mask[..., None], grad, 0) / count


def mse(logits, target, mask=None):
    """mean (x - y)^2."""
    d = logits - target
    return _masked_mean(d * d, 2 * d, mask, per_row=False)


def mae(logits, target, mask=None):
    """mean |x - y|; gradient sign(x - y), 0 where x == y (as torch.nn.L1Loss)."""
    d = logits - target
    return _masked_mean(np.abs(d), np.sign(d), mask, per_row=False)


def sigmoid(a):
    # Same function as 1 / (1 + exp(-a)), but never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def binary_crossentropy(logits, target, mask=None):
    """mean of -[y log s(x) + (1 - y) log(1 - s(x))] with s the sigmoid, written in the form that
    never overflows: max(x, 0) - x y + log(1 + exp(-|x|)) (torch.nn.BCEWithLogitsLoss)."""
    x = logits
    elementwise = np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))
    return _masked_mean(elementwise, sigmoid(x) - target, mask, per_row=False)


def cross_entropy(logits, labels, mask=None):
    """mean of -log softmax(x)[label] (torch.nn.CrossEntropyLoss). labels (...) integers in [0, O)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)           # exp never overflows
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_softmax = shifted - log_sum
    labels = np.asarray(labels)
    onehot = np.arange(logits.shape[-1]) == labels[..., None]
    row_loss = -np.where(onehot, log_softmax, 0).sum(axis=-1)
    return _masked_mean(row_loss, np.exp(log_softmax) - onehot, mask, per_row=True)


LOSSES = {"mse": mse, "mae": mae, "binary_crossentropy": binary_crossentropy,
          "cross_entropy": cross_entropy}

