"""The core's GRU forward and backward on batch-major NumPy arrays, for frameworks that call back
into Python with host arrays (JAX's pure_callback, TensorFlow's numpy_function).

Both take the parameters flattened in the core's layout (fastgru.convert.keras_to_flat builds it
from Keras's weights) and lengths as an int array: the caller passes lengths[b] = T for an
unpadded sequence, 0 for one with no step, and -1 for a row whose mask was not right-padded
(fastgru.convert.mask_to_lengths), which forward refuses with a ValueError naming the mask.

The training forward returns the core's workspace (what backward needs) as a third output; the
frameworks keep it as an ordinary array between the two calls.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._checks import core_entry


# A GRU's configuration as the frameworks' static (hashable) arguments:
# (input_size, hidden_size, num_layers, bidirectional, bias, reset_after).
Spec = tuple[int, int, int, bool, bool, bool]


@functools.lru_cache(maxsize=None)
def gru_config(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, bias: bool,
               reset_after: bool) -> _core.GruConfig:
    """The core's GruConfig (float32 products), one per set of arguments."""
    return _core.GruConfig(input_size, hidden_size, num_layers, bidirectional, bias, reset_after, "float32")


def workspace_size(config: _core.GruConfig, steps: int, batch: int) -> int:
    """Elements of the training workspace of a forward over (steps, batch) sequences."""
    return int(_core.gru_workspace_size(config, steps, batch))


def _time_major(x: NDArray[np.floating]) -> NDArray[np.floating]:
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def core_lengths(lengths: NDArray[np.integer], steps: int) -> NDArray[np.int64] | None:
    """lengths as the core takes them: None when no sequence is padded; ValueError for a mask
    that was not right-padded (-1) or a sequence without a step (0)."""
    lengths = np.asarray(lengths)
    if lengths.size and lengths.min() < 1:
        if lengths.min() < 0:
            raise ValueError("mask: fastgru computes right-padded sequences only (each row of the mask True for "
                             "its first steps, then False); this mask has a False step before a True one")
        raise ValueError("mask: a sequence has no unmasked step (an all-False row of the mask); fastgru needs "
                         "at least one step per sequence")
    if lengths.size == 0 or lengths.min() == steps:
        return None
    return np.ascontiguousarray(lengths, dtype=np.int64)


def forward(config: _core.GruConfig, params: NDArray[np.floating], x: NDArray[np.floating],
            h0: NDArray[np.floating], lengths: NDArray[np.integer], training: bool
            ) -> tuple[NDArray[np.floating], ...]:
    """x (B, T, I), h0 (L*D, B, H), lengths (B,). Returns y (B, T, D*H) and h_n (L*D, B, H), and
    in training the workspace (workspace_size(config, T, B),) that backward reads."""
    dtype = x.dtype
    T, B = x.shape[1], x.shape[0]
    valid = core_lengths(lengths, T)
    workspace = np.empty(workspace_size(config, T, B), dtype) if training else None
    y, h_n = core_entry("gru_forward", dtype)(config, np.ascontiguousarray(params), _time_major(x),
                                             np.ascontiguousarray(h0), valid, None, workspace)
    y = _time_major(y)
    return (y, h_n, workspace) if workspace is not None else (y, h_n)


def backward(config: _core.GruConfig, params: NDArray[np.floating], workspace: NDArray[np.floating],
             lengths: NDArray[np.integer], dy: NDArray[np.floating], dh_n: NDArray[np.floating]
             ) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
    """Backward of the training forward that returned workspace: dy (B, T, D*H), dh_n (L*D, B, H).
    Returns dx (B, T, I), dh0 (L*D, B, H) and the gradient of params."""
    dtype = dy.dtype
    grad = np.zeros(params.shape[0], dtype)
    dx, dh0 = core_entry("gru_backward", dtype)(
        config, np.ascontiguousarray(params), np.asarray(workspace), _time_major(dy), grad,
        np.ascontiguousarray(dh_n), core_lengths(lengths, dy.shape[1]), None)
    return _time_major(dx), dh0, grad
