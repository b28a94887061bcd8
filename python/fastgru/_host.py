"""The core's GRU forward and backward on batch-major NumPy arrays, for frameworks that call back
into Python with host arrays (TensorFlow's numpy_function).

Both take the parameters flattened in the core's layout (fastgru.convert.keras_to_flat builds it
from Keras's weights) and lengths as an int array: the caller passes lengths[b] = T for an
unpadded sequence, 0 for one with no step, and -1 for a row whose mask was not right-padded
(fastgru.keras.mask_to_lengths), which forward refuses with a ValueError naming the mask.

The training forward leaves the core's workspace (what backward needs, tens of megabytes at
typical sizes) in the core's store and returns its token (_core.gru_forward_keeping_*; the store
is the one fastgru.jax's XLA calls use, described in python/src/kept_workspaces.h): a callback's
outputs are copied into fresh buffers, which cost more than the forward itself. The backward
gets the forward's inputs too, so that it can run the forward again when the workspace is gone.
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


@functools.cache
def gru_config(
    input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, bias: bool, reset_after: bool
) -> _core.GruConfig:
    """The core's GruConfig (float32 products), one per set of arguments."""
    return _core.GruConfig(input_size, hidden_size, num_layers, bidirectional, bias, reset_after, "float32")


def _time_major(x: NDArray[np.floating]) -> NDArray[np.floating]:
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def core_lengths(lengths: NDArray[np.integer], steps: int) -> NDArray[np.int64] | None:
    """lengths as the core takes them: None when no sequence is padded; ValueError for a mask
    that was not right-padded (-1) or a sequence without a step (0) (python/src/mask_lengths.h)."""
    return _core.core_lengths(np.asarray(lengths), steps)


def forward(
    config: _core.GruConfig,
    params: NDArray[np.floating],
    x: NDArray[np.floating],
    h0: NDArray[np.floating],
    lengths: NDArray[np.integer],
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Inference: x (B, T, I), h0 (L*D, B, H), lengths (B,) -> y (B, T, D*H), h_n (L*D, B, H)."""
    y, h_n = core_entry("gru_forward", x.dtype)(
        config,
        np.ascontiguousarray(params),
        _time_major(x),
        np.ascontiguousarray(h0),
        core_lengths(lengths, x.shape[1]),
    )
    return _time_major(y), h_n


def forward_train(
    config: _core.GruConfig,
    params: NDArray[np.floating],
    x: NDArray[np.floating],
    h0: NDArray[np.floating],
    lengths: NDArray[np.integer],
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.int32]]:
    """forward, keeping the workspace for backward: returns y, h_n and the token (an int32 scalar)."""
    y, h_n, token = core_entry("gru_forward_keeping", x.dtype)(
        config,
        np.ascontiguousarray(params),
        _time_major(x),
        np.ascontiguousarray(h0),
        core_lengths(lengths, x.shape[1]),
    )
    return _time_major(y), h_n, np.array(token, np.int32)


def backward(
    config: _core.GruConfig,
    token: NDArray[np.integer],
    params: NDArray[np.floating],
    x: NDArray[np.floating],
    h0: NDArray[np.floating],
    lengths: NDArray[np.integer],
    dy: NDArray[np.floating],
    dh_n: NDArray[np.floating],
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
    """Backward of the forward_train that returned token, given that forward's inputs:
    dy (B, T, D*H), dh_n (L*D, B, H) -> dx (B, T, I), dh0 (L*D, B, H), the gradient of params."""
    dx, dh0, grad = core_entry("gru_backward_kept", dy.dtype)(
        config,
        int(token),
        np.ascontiguousarray(params, dy.dtype),
        np.ascontiguousarray(x, dy.dtype),  # batch-major: read only to run the forward again
        _time_major(dy),
        np.ascontiguousarray(h0, dy.dtype),
        core_lengths(lengths, dy.shape[1]),
        np.ascontiguousarray(dh_n),
    )
    return _time_major(dx), dh0, grad
