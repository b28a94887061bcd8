"""The core's GRU forward and backward on batch-major NumPy arrays, for frameworks that call back
into Python with host arrays (JAX's pure_callback, TensorFlow's numpy_function).

Both take the parameters flattened in the core's layout (fastgru.convert.keras_to_flat builds it
from Keras's weights) and lengths as an int array: the caller passes lengths[b] = T for an
unpadded sequence, 0 for one with no step, and -1 for a row whose mask was not right-padded
(fastgru.keras.mask_to_lengths), which forward refuses with a ValueError naming the mask.

The training forward keeps the core's workspace (what backward needs, tens of megabytes at
typical sizes) here, on the host, and returns a token for it: handing it to the framework as an
array output cost more than the forward itself (JAX copies a callback's outputs into fresh
buffers; measured 482 against 187 ms for a medium forward). The backward takes the token and
is done with it. Frameworks may merge identical calls, call a backward twice or never, so
backward also gets the forward's inputs: when its workspace is gone it runs the forward again.
At most MAX_KEPT_BYTES of workspaces wait for their backward; beyond that the oldest go.

A workspace whose backward has run goes back to a small free list for the next forward: allocated
afresh, a block that large comes straight from the OS and every 4 KiB page faults on first touch
(measured at medium size: 36 MB, 102-128 ms per forward and backward against 88 ms reused).
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
from typing import Any

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
            raise ValueError(
                "mask: fastgru computes right-padded sequences only (each row of the mask True for "
                "its first steps, then False); this mask has a False step before a True one"
            )
        raise ValueError(
            "mask: a sequence has no unmasked step (an all-False row of the mask); fastgru needs "
            "at least one step per sequence"
        )
    if lengths.size == 0 or lengths.min() == steps:
        return None
    return np.ascontiguousarray(lengths, dtype=np.int64)


MAX_KEPT_BYTES = 1 << 30


class _Workspaces:
    """Workspaces of training forwards waiting for their backward, by token (oldest first), and
    up to FREE_CAPACITY freed ones for the next forwards to reuse."""

    FREE_CAPACITY = 2

    def __init__(self) -> None:
        self._kept: collections.OrderedDict[int, NDArray[np.floating]] = collections.OrderedDict()
        self._free: list[NDArray[np.uint8]] = []
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, size: int, dtype: np.dtype[Any]) -> NDArray[np.floating]:
        """An array of size elements of dtype: the smallest free one that fits, else a new one."""
        nbytes = size * dtype.itemsize
        with self._lock:
            fits = [i for i, block in enumerate(self._free) if block.nbytes >= nbytes]
            block = self._free.pop(min(fits, key=lambda i: self._free[i].nbytes)) if fits else None
        if block is None:
            block = np.empty(nbytes, np.uint8)
        return block[:nbytes].view(dtype)

    def release(self, workspace: NDArray[np.floating]) -> None:
        """Hands back a workspace that nothing uses any more (its backward has run)."""
        owner = workspace.base  # the uint8 block that new() cut it from
        block = owner if isinstance(owner, np.ndarray) and owner.dtype == np.uint8 else workspace.view(np.uint8)
        with self._lock:
            self._free.append(block)
            if len(self._free) > self.FREE_CAPACITY:
                self._free.remove(min(self._free, key=lambda b: b.nbytes))

    def keep(self, workspace: NDArray[np.floating]) -> int:
        with self._lock:
            token = next(self._tokens) % ((1 << 31) - 1) + 1  # never 0: no workspace
            self._kept[token] = workspace
            total = sum(w.nbytes for w in self._kept.values())
            while total > MAX_KEPT_BYTES and len(self._kept) > 1:
                total -= self._kept.popitem(last=False)[1].nbytes
            return token

    def take(self, token: int) -> NDArray[np.floating] | None:
        with self._lock:
            return self._kept.pop(token, None)


_workspaces = _Workspaces()


def _forward(
    config: _core.GruConfig,
    params: NDArray[np.floating],
    x: NDArray[np.floating],
    h0: NDArray[np.floating],
    lengths: NDArray[np.int64] | None,
    workspace: NDArray[np.floating] | None,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    y, h_n = core_entry("gru_forward", x.dtype)(
        config, np.ascontiguousarray(params), _time_major(x), np.ascontiguousarray(h0), lengths, None, workspace
    )
    return _time_major(y), h_n


def forward(
    config: _core.GruConfig,
    params: NDArray[np.floating],
    x: NDArray[np.floating],
    h0: NDArray[np.floating],
    lengths: NDArray[np.integer],
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Inference: x (B, T, I), h0 (L*D, B, H), lengths (B,) -> y (B, T, D*H), h_n (L*D, B, H)."""
    return _forward(config, params, x, h0, core_lengths(lengths, x.shape[1]), None)


def forward_train(
    config: _core.GruConfig,
    params: NDArray[np.floating],
    x: NDArray[np.floating],
    h0: NDArray[np.floating],
    lengths: NDArray[np.integer],
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.int32]]:
    """forward, keeping the workspace for backward: returns y, h_n and the token (an int32 scalar)."""
    workspace = _workspaces.new(workspace_size(config, x.shape[1], x.shape[0]), x.dtype)
    y, h_n = _forward(config, params, x, h0, core_lengths(lengths, x.shape[1]), workspace)
    return y, h_n, np.array(_workspaces.keep(workspace), np.int32)


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
    """Backward of the forward_train that returned token (0: a forward without workspace), given
    that forward's inputs:
    dy (B, T, D*H), dh_n (L*D, B, H) -> dx (B, T, I), dh0 (L*D, B, H), the gradient of params."""
    dtype = dy.dtype
    valid = core_lengths(lengths, dy.shape[1])
    workspace = _workspaces.take(int(token))
    if workspace is None:  # already used, or dropped: the forward again
        workspace = _workspaces.new(workspace_size(config, x.shape[1], x.shape[0]), dtype)
        _forward(config, params, x, h0, valid, workspace)
    grad = np.zeros(params.shape[0], dtype)
    dx, dh0 = core_entry("gru_backward", dtype)(
        config, np.ascontiguousarray(params), workspace, _time_major(dy), grad, np.ascontiguousarray(dh_n), valid, None
    )
    _workspaces.release(workspace)
    return _time_major(dx), dh0, grad
