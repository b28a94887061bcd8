"""Data for training and inference: sequences (padded, with lengths), targets, and batches.

X is (N, T, F), or a list of (T_i, F) arrays of different lengths (padded here; the padding
never reaches the loss or the final state). Targets are per sequence ((N,) or (N, O)) or per
step ((N, T) or (N, T, O), or a list of (T_i,) / (T_i, O) arrays).

Training and inference work on time-major copies (T, N, ...), so that a batch is a set of
columns of the time axis (`SequenceSet.batch`).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._checks import as_numeric
from ._typing import FloatArray, IntArray


def valid_mask(lengths: npt.ArrayLike, steps: int) -> npt.NDArray[np.bool_]:
    """(T, B) bool: step t of sequence b is valid when t < lengths[b] (time-major, as the GRU)."""
    return np.arange(steps)[:, None] < np.asarray(lengths)[None, :]


def as_sequences(
    X: npt.ArrayLike | Sequence[npt.ArrayLike], dtype: npt.DTypeLike, name: str = "X"
) -> tuple[FloatArray, IntArray | None, bool]:
    """X as (padded (N, T, F) array of dtype, lengths (N,) int64 or None when all are full, ragged).
    ragged: X was a list/tuple of (T_i, F) arrays (predictions are then returned as lists)."""
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{name}: expected at least one sequence, got an empty list")
        seqs = [as_numeric(s, f"{name}[{i}]") for i, s in enumerate(X)]
        for i, s in enumerate(seqs):
            if s.ndim != 2 or s.shape[0] == 0:
                raise ValueError(f"{name}[{i}]: expected a (T_i, F) array with T_i >= 1, got shape {s.shape}")
        F = seqs[0].shape[1]
        bad = next((i for i, s in enumerate(seqs) if s.shape[1] != F), None)
        if bad is not None:
            raise ValueError(f"{name}[{bad}]: expected F = {F} features like {name}[0], got shape {seqs[bad].shape}")
        lengths = np.array([len(s) for s in seqs], np.int64)
        out = np.zeros((len(seqs), lengths.max(), F), dtype)
        with np.errstate(over="ignore"):  # values beyond dtype's range become inf: refused below
            for i, s in enumerate(seqs):
                out[i, : len(s)] = s
        ragged = True
    else:
        out = as_numeric(X, name)
        if out.ndim != 3:
            raise ValueError(
                f"{name}: expected shape (N, T, F) (sequences, time steps, features) or a list of "
                f"(T_i, F) arrays, got shape {out.shape}"
            )
        if 0 in out.shape:
            raise ValueError(f"{name}: expected at least one sequence, step and feature, got shape {out.shape}")
        with np.errstate(over="ignore"):  # values beyond dtype's range become inf: refused below
            out = np.asarray(out, dtype)
        lengths = np.full(out.shape[0], out.shape[1], np.int64)
        ragged = False
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: contains NaN or infinity (or values beyond {np.dtype(dtype).name}'s range)")
    full = bool((lengths == out.shape[1]).all())
    return out, (None if full else lengths), ragged


def per_step_targets(
    y: npt.ArrayLike | Sequence[npt.ArrayLike], N: int, T: int, lengths: IntArray | None, name: str = "y"
) -> npt.NDArray[Any]:
    """Per-step targets as an (N, T, ...) array, padding ragged lists with zeros (masked later)."""
    if isinstance(y, (list, tuple)):
        if len(y) != N:
            raise ValueError(f"{name}: expected {N} sequences (one per sequence of X), got {len(y)}")
        seqs = [np.asarray(s) for s in y]
        want = np.full(N, T) if lengths is None else lengths
        for i, (s, n) in enumerate(zip(seqs, want)):
            if s.ndim not in (1, 2) or len(s) != n:
                raise ValueError(f"{name}[{i}]: expected {n} steps, as X[{i}], got shape {s.shape}")
        tail = seqs[0].shape[1:]
        if any(s.shape[1:] != tail for s in seqs):
            raise ValueError(f"{name}: every sequence must have the same trailing shape {tail}")
        out = np.zeros((N, T) + tail, np.result_type(*seqs))
        for i, s in enumerate(seqs):
            out[i, : len(s)] = s
        return out
    out = np.asarray(y)
    if out.ndim not in (2, 3) or out.shape[:2] != (N, T):
        raise ValueError(
            f"{name}: expected shape (N, T) or (N, T, O) = ({N}, {T}[, O]) per step "
            f"(return_sequences=True), got {out.shape}"
        )
    return out


def per_sequence_targets(y: npt.ArrayLike | Sequence[npt.ArrayLike], N: int, name: str = "y") -> npt.NDArray[Any]:
    out = np.asarray(y)
    if out.ndim not in (1, 2) or len(out) != N:
        raise ValueError(
            f"{name}: expected shape (N,) or (N, O) with N = {N} (one target per sequence of X), got {out.shape}"
        )
    return out


def to_time_major(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(N, T, ...) -> contiguous (T, N, ...): batches are then whole columns of the time axis."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))


@dataclass(frozen=True)
class Batch:
    """Some sequences of a SequenceSet, time-major, cut to the longest of them.

    x (T_b, B, F); lengths (B,) int64 or None when all are T_b; target (T_b, B, ...) per step or
    (B, ...) per sequence, or None without targets; rows: the number of valid loss rows (valid
    steps per step, sequences per sequence), what the batch's mean loss divides by (times O
    for the elementwise losses)."""

    x: FloatArray
    lengths: IntArray | None
    target: npt.NDArray[Any] | None
    rows: int

    @property
    def size(self) -> int:
        return int(self.x.shape[1])


@dataclass(frozen=True)
class SequenceSet:
    """A whole data set, time-major: X (T, N, F), lengths (N,) or None, targets (T, N, ...) per
    step or (N, ...) per sequence, or None (inference)."""

    X: FloatArray
    lengths: IntArray | None
    targets: npt.NDArray[Any] | None
    per_step: bool

    @classmethod
    def from_batch_first(
        cls, X: FloatArray, lengths: IntArray | None, targets: npt.NDArray[Any] | None = None, per_step: bool = False
    ) -> "SequenceSet":
        """From (N, T, F) sequences and (N, ...) targets (per step: (N, T, ...))."""
        if targets is not None:
            targets = to_time_major(targets) if per_step else targets
        return cls(to_time_major(X), lengths, targets, per_step)

    def __len__(self) -> int:
        return int(self.X.shape[1])

    def batch(self, idx: IntArray) -> Batch:
        """The Batch of the sequences idx (an int array), in that order."""
        lengths = None if self.lengths is None else self.lengths[idx]
        steps = self.X.shape[0] if lengths is None else int(lengths.max())
        x = self.X[:steps].take(idx, axis=1)
        if self.per_step:
            target = None if self.targets is None else self.targets[:steps].take(idx, axis=1)
            rows = steps * len(idx) if lengths is None else int(lengths.sum())
        else:
            target = None if self.targets is None else self.targets.take(idx, axis=0)
            rows = len(idx)
        return Batch(x, lengths, target, rows)

    def batches(self, size: int) -> Iterator[tuple[int, Batch]]:
        """Consecutive batches of at most size sequences, in order (for inference)."""
        for start in range(0, len(self), size):
            yield start, self.batch(np.arange(start, min(start + size, len(self))))
