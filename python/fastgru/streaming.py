"""Streaming inference: one time step at a time, with the GRU state kept between calls.

    stream = regressor.stream(n_streams=2)      # a fitted estimator, or GRUModel.stream(...)
    y_t = stream.step(x_t)                      # x_t (n_streams, F) (or (F,) for one stream)
    stream.reset(1)                             # stream 1 starts a new sequence

step(x_t) returns what predict (model(x) for a GRUModel) gives for the sequences seen so far:
for a per-step model (return_sequences) the prediction for this step, for a per-sequence model
the prediction if the sequences ended here. Both are the head applied to the top layer's new
state, which GRU.step computes from the weights in place (no packing, nothing kept but the
state). A bidirectional GRU needs each whole sequence, so it cannot stream (ValueError).
"""

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ._checks import FLOAT_DTYPES, as_float_array, check_positive_int, is_float_array
from ._typing import FloatArray
from .dense import Dense
from .gru import GRU


class SteppableModel(Protocol):
    """What a stream steps through: a GRU, then a Dense head on its top layer's state (GRUModel)."""

    @property
    def gru(self) -> GRU: ...

    @property
    def head(self) -> Dense: ...

    @property
    def dtype(self) -> str: ...


# The estimators' decoding of the model's outputs (n_streams, O) into predict's values.
Decode = Callable[[FloatArray], npt.NDArray[Any]]


class ModelStream:
    """n_streams sequences stepped through a GRUModel in eval mode (no dropout)."""

    def __init__(self, model: SteppableModel, n_streams: int = 1) -> None:
        if model.gru.bidirectional:
            raise ValueError(
                "stream: a bidirectional model needs each whole sequence (its reverse direction "
                "starts at the end), so it cannot run one step at a time"
            )
        self.model = model
        self.n_streams = check_positive_int(n_streams, "n_streams")
        gru = model.gru
        self._dtype = FLOAT_DTYPES[model.dtype]
        self._state: FloatArray = np.zeros((gru.num_layers, self.n_streams, gru.hidden_size), self._dtype)

    @property
    def state(self) -> FloatArray:
        """The GRU state of every stream, (L, n_streams, H) (a copy)."""
        state: FloatArray = self._state.copy()
        return state

    def reset(self, i: int | None = None) -> None:
        """Starts every stream over (i None), or stream i only."""
        if i is None:
            self._state.fill(0)
            return
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.n_streams:
            raise ValueError(f"i: expected None or a stream index in 0..{self.n_streams - 1}, got {i!r}")
        self._state[:, i] = 0

    def step_outputs(self, x_t: npt.ArrayLike, finite: bool = False) -> tuple[FloatArray, bool]:
        """The head's outputs (n_streams, O) after one step, and whether x_t had no stream axis.
        With finite=True (the estimators' streams: predict refuses NaN and infinity too), a
        non-finite x_t raises ValueError and leaves the streams' state unchanged."""
        F = self.model.gru.input_size
        x: FloatArray
        if is_float_array(x_t, self._dtype, (self.n_streams, F)):
            x, single = x_t, False
        else:
            single = np.ndim(x_t) == 1
            if single and self.n_streams != 1:
                raise ValueError(f"x_t: expected shape (n_streams, F) = ({self.n_streams}, {F}), got {np.shape(x_t)}")
            x = as_float_array(
                x_t,
                "x_t",
                self._dtype,
                (F,) if single else (self.n_streams, F),
                f"(F,) or (n_streams, F) = ({self.n_streams}, {F})",
            )
        if finite and not np.isfinite(x).all():
            raise ValueError("x_t: contains NaN or infinity")
        y_t, self._state = self.model.gru.step(x[None] if single else x, self._state)
        return self.model.head(y_t), single

    def step(self, x_t: npt.ArrayLike) -> FloatArray:
        """x_t (n_streams, F), or (F,) with one stream -> the model's output for this step:
        (n_streams, O), or (O,) for an x_t of shape (F,)."""
        out, single = self.step_outputs(x_t)
        return out[0] if single else out


class EstimatorStream:
    """n_streams sequences stepped through a fitted GRURegressor or GRUClassifier.

    `decode(logits (n_streams, O))` turns the model's outputs into predict's values and
    `decode_proba` (classifiers) into predict_proba's; the estimator supplies both."""

    def __init__(
        self, model: SteppableModel, decode: Decode, decode_proba: Decode | None = None, n_streams: int = 1
    ) -> None:
        self._model_stream = ModelStream(model, n_streams)
        self._decode, self._decode_proba = decode, decode_proba
        self.n_streams = self._model_stream.n_streams

    def reset(self, i: int | None = None) -> None:
        """Starts every stream over (i None), or stream i only."""
        self._model_stream.reset(i)

    def step(self, x_t: npt.ArrayLike) -> Any:
        """x_t (n_streams, F), or (F,) with one stream -> predict's value for the sequences seen
        so far: (n_streams,) / (n_streams, O) (labels for a classifier), or one stream's value
        (a scalar or (O,)) for an x_t of shape (F,)."""
        out, single = self._model_stream.step_outputs(x_t, finite=True)
        values = self._decode(out)
        return values[0] if single else values

    def step_proba(self, x_t: npt.ArrayLike) -> npt.NDArray[Any]:
        """Like step (it advances the streams the same way) but returns predict_proba's
        probabilities: (n_streams, C), or (C,) for an x_t of shape (F,)."""
        if self._decode_proba is None:
            raise AttributeError("step_proba: only a classifier's stream has probabilities")
        out, single = self._model_stream.step_outputs(x_t, finite=True)
        values = self._decode_proba(out)
        return values[0] if single else values
