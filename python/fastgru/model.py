"""fastgru.GRUModel: GRU -> optional dropout -> Dense head, all parameters in one flat buffer.

The GRU's parameters come first, then the head's weight and bias, each a view into `params`
(and `grad`), so one fused Adam step updates the whole model. Names follow PyTorch modules
named `gru` and `head`: `gru.weight_ih_l0`, ..., `head.weight`, `head.bias`.

The head sees either every time step of the top layer (`return_sequences=True`: outputs
(B, T, O)) or each sequence's last valid state (outputs (B, O)): h_n of the top layer, and for a
bidirectional GRU the top layer's forward and reverse h_n concatenated (the reverse direction's
final state is the one after step 0), as `torch.cat([h_n[-2], h_n[-1]], 1)`.

Training: `model.train_step(x, target, optimizer, loss=...)` is one whole step in one compiled
call (cpp/include/fastgru/model.h): forward with dropout, loss, backward, global gradient norm,
clipping folded into the fused Adam update, non-finite check, zero grad. It is
`compute_gradients` followed by `apply_gradients`, which a data-parallel loop calls apart to sum
the gradients of several processes in between. The layer-level path (forward, a loss from
fastgru.losses, backward, fastgru.Adam) computes the same step in several calls.
"""

import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from . import _core, losses
from ._backends import check_backend
from ._checks import (
    FLOAT_DTYPES,
    as_float_array,
    as_numeric,
    check_compute_dtype,
    check_positive_int,
    core_entry,
    to_dtype_name,
)
from ._flat import FlatParameters, clip_grad_norm, clip_scale, grad_norm, layout_end
from ._typing import FloatArray, IntArray, Layout
from .data import valid_mask
from .dense import Dense
from .gru import GRU, check_lengths, gru_config
from .optim import Adam
from .safetensors_format import write_safetensors
from .streaming import ModelStream

_Module = TypeVar("_Module", bound=FlatParameters)

FILE_FORMAT = "fastgru"  # the safetensors metadata "format" of a saved model


class StepReport(NamedTuple):
    """What a training step did. loss: the batch's mean loss; grad_norm: the global L2 norm of
    the gradient before clipping; applied: False when the loss or the gradient was NaN/inf, in
    which case params and the optimizer were left untouched (grad still holds the gradient)."""

    loss: float
    grad_norm: float
    applied: bool


class GRUModel(FlatParameters):
    """out = model(x, lengths=None); model.backward(dout); opt = fastgru.Adam(model)

    x (B, T, F) batch-first (or (T, B, F) with time_major=True); out (B, T, O) with
    return_sequences else (B, O). `dropout` is applied between GRU layers (as torch.nn.GRU's) and
    to the head's input, in training mode only. compute_dtype="bfloat16" (dtype float32 only) runs
    the GRU's products with bfloat16 operands and float32 accumulation (fastgru.GRU); the head and
    the loss stay in float32."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        reset_after: bool = True,
        bias: bool = True,
        return_sequences: bool = True,
        dropout: float = 0.0,
        dtype: npt.DTypeLike = "float32",
        compute_dtype: str = "float32",
        backend: str = "cpp",
        seed: int | None = None,
    ) -> None:
        output_size = check_positive_int(output_size, "output_size")
        self.backend = check_backend(backend)
        self.return_sequences = bool(return_sequences)
        self.dtype = to_dtype_name(dtype)
        self.compute_dtype = check_compute_dtype(compute_dtype, self.dtype)
        self.seed = seed
        gru_seed, head_seed, dropout_seed = np.random.SeedSequence(seed).spawn(3)
        # The GRU's tensors, then the head's, named as attributes `gru` and `head` of a torch module.
        self._layout = self.param_layout(
            input_size, hidden_size, output_size, num_layers=num_layers, bidirectional=bidirectional, bias=bias
        )
        head = self._head_offset = next(offset for name, offset, _ in self._layout if name.startswith("head."))
        super().__init__(layout_end(self._layout), FLOAT_DTYPES[self.dtype])
        self.gru = GRU(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            bidirectional=bidirectional,
            dropout=dropout,
            reset_after=reset_after,
            dtype=self.dtype,
            compute_dtype=self.compute_dtype,
            backend=backend,
            seed=gru_seed,
            buffers=(self._params[:head], self._grad[:head]),
        )
        self.head = Dense(
            self.gru.num_directions * hidden_size,
            output_size,
            bias=bias,
            dtype=self.dtype,
            backend=backend,
            seed=head_seed,
            buffers=(self._params[head:], self._grad[head:]),
        )
        self.dropout = self.gru.dropout
        self._rng = np.random.default_rng(dropout_seed)
        self._core_models: dict[str, Any] = {}  # loss name -> the compiled model (built on first use)

    @staticmethod
    def param_count(
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        bias: bool = True,
        **other_options: object,
    ) -> int:
        """Size of the flat parameter buffer of GRUModel(input_size, hidden_size, output_size, ...), without
        allocating it (the options that do not change it are accepted and ignored, so a saved config fits)."""
        return layout_end(
            GRUModel.param_layout(
                input_size, hidden_size, output_size, num_layers=num_layers, bidirectional=bidirectional, bias=bias
            )
        )

    @staticmethod
    def param_layout(
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        bias: bool = True,
    ) -> Layout:
        """[(name, offset, shape)] of the flat parameter buffer, as the core defines it
        (model_param_layout): "gru.<name>" for the GRU's tensors, then "head.weight", "head.bias"."""
        config = gru_config(input_size, hidden_size, num_layers, bidirectional, bias, True, "float32")
        layout: Layout = _core.model_param_layout(config, check_positive_int(output_size, "output_size"))
        return layout

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's arguments (JSON-serializable): GRUModel(**model.config) rebuilds it."""
        g = self.gru
        return {
            "input_size": g.input_size,
            "hidden_size": g.hidden_size,
            "output_size": self.head.out_features,
            "num_layers": g.num_layers,
            "bidirectional": g.bidirectional,
            "reset_after": g.reset_after,
            "bias": g.bias,
            "return_sequences": self.return_sequences,
            "dropout": g.dropout,
            "dtype": self.dtype,
            "compute_dtype": self.compute_dtype,
            "backend": self.backend,
            "seed": self.seed if isinstance(self.seed, (int, type(None))) else None,
        }

    # -- parameters (params, grad, state_dict, ...: FlatParameters) --------------------------------
    def clip_grad_norm(self, max_norm: float) -> float:
        """Scales grad in place so its global L2 norm is at most max_norm (torch's
        clip_grad_norm_); returns the norm before clipping."""
        return clip_grad_norm(self._grad, max_norm)

    def train(self, mode: bool = True) -> "GRUModel":
        self.gru.train(mode)
        self.head.train(mode)
        return super().train(mode)

    # -- computation ------------------------------------------------------------------------
    def __call__(
        self, x: npt.ArrayLike, lengths: npt.ArrayLike | None = None, *, time_major: bool = False
    ) -> FloatArray:
        return self.forward(x, lengths, time_major=time_major)

    def forward(
        self,
        x: npt.ArrayLike,
        lengths: npt.ArrayLike | None = None,
        *,
        time_major: bool = False,
        dropout_masks: tuple[npt.ArrayLike | None, npt.ArrayLike | None] | None = None,
    ) -> FloatArray:
        """x (B, T, F) (or (T, B, F) when time_major), lengths (B,) ints in 1..T or None.
        Returns the head's outputs: (B, T, O) (or (T, B, O)) with return_sequences, else (B, O).
        Padded steps of (B, T, O) outputs hold the head's value for a zero GRU output.
        dropout_masks: in training mode, draw_dropout_masks's pair to use instead of drawing (a
        None entry: drawn)."""
        xs = as_float_array(
            x,
            "x",
            FLOAT_DTYPES[self.dtype],
            (None, None, self.gru.input_size),
            f"{'(T, B, F)' if time_major else '(B, T, F)'} with F = {self.gru.input_size}",
        )
        if not time_major:
            xs = np.ascontiguousarray(xs.transpose(1, 0, 2))
        out: FloatArray
        if self.backend == "cpp" and not self.training and self.quantization is None:  # inference: one compiled call
            lens = None if lengths is None else check_lengths(lengths, *xs.shape[:2])
            out = self._core_model().predict(self._params, xs, lens)
            if self.return_sequences and not time_major:
                out = np.ascontiguousarray(out.transpose(1, 0, 2))
            return out
        gru_dropout, head_dropout = (None, None) if dropout_masks is None else dropout_masks
        y, h_n = self.gru.forward(xs, lengths=lengths, dropout_masks=gru_dropout)  # time-major (T, B, D*H)
        if self.return_sequences:
            features = y
        else:
            D, L = self.gru.num_directions, self.gru.num_layers
            features = np.concatenate(list(h_n[(L - 1) * D :]), axis=1) if D == 2 else h_n[L - 1]
        mask: FloatArray | None
        if not self.training:
            mask = None
        elif head_dropout is None:
            mask = self._head_dropout_mask(features.shape)
        else:
            mask = self._check_head_dropout(head_dropout, features.shape)
        if mask is not None:
            features = features * mask
        out = self.head(features)
        if self.return_sequences and not time_major:
            out = np.ascontiguousarray(out.transpose(1, 0, 2))
        if self.training:
            self._cache = (y.shape, h_n.shape, mask, out.shape)
        return out

    def _check_head_dropout(self, mask: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
        """A given head dropout mask as an array of the head input's shape (ValueError otherwise)."""
        return as_float_array(
            mask,
            "head_dropout",
            FLOAT_DTYPES[self.dtype],
            shape,
            f"{'(T, B, D*H)' if len(shape) == 3 else '(B, D*H)'} = {shape}",
        )

    def backward(self, dout: npt.ArrayLike, *, time_major: bool = False) -> None:
        """Gradients through the last training-mode forward, added into grad. dout has the shape
        of that forward's output (in the same layout)."""
        self._check_trainable("backward")
        if self._cache is None:
            raise RuntimeError(
                "backward: no training-mode forward to differentiate (call forward in training mode first)"
            )
        y_shape, h_shape, mask, out_shape = self._cache
        douts = as_float_array(
            dout, "dout", FLOAT_DTYPES[self.dtype], out_shape, f"the last forward's output shape {out_shape}"
        )
        if self.return_sequences and not time_major:
            douts = douts.transpose(1, 0, 2)
        dfeatures = self.head.backward(douts)
        assert dfeatures is not None
        if mask is not None:
            dfeatures = dfeatures * mask
        # The input's gradient is nobody's here: its product is skipped.
        if self.return_sequences:
            self.gru.backward(dfeatures, input_grad=False)
            return
        D, L, H = self.gru.num_directions, self.gru.num_layers, self.gru.hidden_size
        dh_n = np.zeros(h_shape, self.dtype)
        for d in range(D):
            dh_n[(L - 1) * D + d] = dfeatures[:, d * H : (d + 1) * H]
        self.gru.backward(np.zeros(y_shape, self.dtype), dh_n, input_grad=False)

    def stream(self, n_streams: int = 1) -> ModelStream:
        """Streaming inference, one time step at a time (fastgru.streaming): stream.step(x_t)
        with x_t (n_streams, F) (or (F,)) returns the output for the sequences seen so far;
        stream.reset(i=None) starts over. Unidirectional models only."""
        return ModelStream(self, n_streams)

    def _head_dropout_mask(self, shape: tuple[int, ...]) -> FloatArray | None:
        """Multipliers (0 or 1/(1-p)) for the head's input, drawn from the model's seed; None without dropout."""
        if self.dropout == 0.0:
            return None
        keep = 1.0 - self.dropout
        return ((self._rng.random(shape) < keep) / keep).astype(self.dtype)

    def draw_dropout_masks(self, steps: int, batch: int) -> tuple[FloatArray | None, FloatArray | None]:
        """(GRU masks (L-1, T, B, D*H) or None, head mask (T, B, D*H) or (B, D*H) or None): the
        multipliers a training-mode forward on a (T, B) batch would draw, in the same order from
        the same random streams. A data-parallel loop draws them for the whole batch on every
        process and passes each process its columns."""
        if self.dropout == 0.0:
            return None, None
        gru_masks = self.gru._dropout_masks(steps, batch)
        features = self.gru.num_directions * self.gru.hidden_size
        head = self._head_dropout_mask((steps, batch, features) if self.return_sequences else (batch, features))
        return gru_masks, head

    # -- one training step --------------------------------------------------------------------
    def train_step(
        self,
        x: npt.ArrayLike,
        target: npt.ArrayLike,
        optimizer: Adam,
        *,
        loss: str = "mse",
        lengths: npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
        clip_grad_norm: float | None = None,
        time_major: bool = False,
    ) -> StepReport:
        """One training step on a batch: forward (with dropout in training mode), the mean loss
        over the valid rows, backward, the global gradient norm, clipping to clip_grad_norm (None:
        none), the optimizer's update and zero grad, in one compiled call (backend="cpp").

        x (B, T, F) (or (T, B, F) when time_major); target (B, T, O) / (B, O) floats, or
        (B, T) / (B,) integer labels for cross_entropy (time-major (T, B, ...) per step when
        time_major); lengths (B,) ints in 1..T or None; mask: bool (B, T) / (B,) of the rows that
        count, or None for every valid step (t < lengths[b]); optimizer: a fastgru.Adam over this
        model. Adds onto whatever grad holds, and zeroes grad after the update.
        Returns a StepReport; applied is False (nothing updated) for a NaN/inf loss or gradient."""
        self._check_trainable("train_step")
        self._check_optimizer(optimizer)
        max_norm = self._check_max_norm(clip_grad_norm)
        batch = self._prepare(x, target, loss, lengths, mask, None, time_major)
        if self.backend == "numpy":
            loss_sum, count = self._compute_gradients_numpy(loss, *batch, None)
            return self.apply_gradients(optimizer, loss_sum / count if count else 0.0, clip_grad_norm=clip_grad_norm)
        value, applied, norm = self._core_model(loss).train_step(
            self._params, self._grad, *batch, optimizer.config, optimizer.state, max_norm
        )
        return StepReport(value, norm, applied)

    def compute_gradients(
        self,
        x: npt.ArrayLike,
        target: npt.ArrayLike,
        *,
        loss: str = "mse",
        lengths: npt.ArrayLike | None = None,
        mask: npt.ArrayLike | None = None,
        loss_normalizer: float | None = None,
        dropout_masks: tuple[npt.ArrayLike | None, npt.ArrayLike | None] | None = None,
        time_major: bool = False,
    ) -> tuple[float, int]:
        """The first half of train_step: forward, loss and backward on a batch (arguments as
        train_step), ADDING the gradient of (sum of the valid loss terms) / loss_normalizer into
        grad. loss_normalizer None: this batch's own count (its mean loss); a data-parallel loop
        passes the whole batch's count so the processes' gradients sum to the batch's.
        dropout_masks: None to draw them (training mode), else draw_dropout_masks's pair for this batch.
        Returns (loss_sum, count): the sum of the valid loss terms and how many there are."""
        self._check_trainable("compute_gradients")
        if loss_normalizer is not None and not loss_normalizer > 0:
            raise ValueError(f"loss_normalizer: expected a positive number or None, got {loss_normalizer!r}")
        batch = self._prepare(x, target, loss, lengths, mask, dropout_masks, time_major)
        if self.backend == "numpy":
            return self._compute_gradients_numpy(loss, *batch, loss_normalizer)
        loss_sum: float
        count: int
        loss_sum, count = self._core_model(loss).compute_gradients(
            self._params, self._grad, *batch, 0.0 if loss_normalizer is None else loss_normalizer
        )
        return loss_sum, count

    def apply_gradients(self, optimizer: Adam, loss: float, *, clip_grad_norm: float | None = None) -> StepReport:
        """The second half of train_step, on the gradient in grad: its global norm, clipping
        (folded into the optimizer's update as a factor), the update, zero grad. loss (the
        batch's mean loss) is only checked: a NaN/inf loss or gradient updates nothing.
        Returns a StepReport."""
        self._check_trainable("apply_gradients")
        self._check_optimizer(optimizer)
        max_norm = self._check_max_norm(clip_grad_norm)
        loss = float(loss)
        if self.backend == "numpy":
            norm = grad_norm(self._grad)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                return StepReport(loss, norm, False)
            optimizer.step(grad_scale=clip_scale(norm, max_norm) if max_norm > 0 else 1.0)
            self.zero_grad()
            return StepReport(loss, norm, True)
        applied, norm = self._core_model().apply_gradients(
            self._params, self._grad, loss, optimizer.config, optimizer.state, max_norm
        )
        return StepReport(loss, norm, applied)

    def _core_model(self, loss: str = "mse") -> Any:
        """The compiled model for a loss (predict does not depend on it)."""
        core = self._core_models.get(loss)
        if core is None:
            core = self._core_models[loss] = core_entry("Model", self.dtype)(
                self.gru.config, self.head.out_features, self.return_sequences, loss
            )
        return core

    def _check_optimizer(self, optimizer: object) -> None:
        if getattr(optimizer, "params", None) is not self._params or getattr(optimizer, "grad", None) is not self._grad:
            raise ValueError("optimizer: expected a fastgru.Adam over this model (fastgru.Adam(model))")

    @staticmethod
    def _check_max_norm(clip_grad_norm: float | None) -> float:
        if clip_grad_norm is None:
            return 0.0
        if not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm: expected a positive number or None, got {clip_grad_norm!r}")
        return float(clip_grad_norm)

    def _prepare(
        self,
        x: npt.ArrayLike,
        target: npt.ArrayLike,
        loss: str,
        lengths: npt.ArrayLike | None,
        mask: npt.ArrayLike | None,
        dropout_masks: tuple[npt.ArrayLike | None, npt.ArrayLike | None] | None,
        time_major: bool,
    ) -> tuple[FloatArray, IntArray | None, npt.NDArray[Any], npt.NDArray[np.bool_] | None, Any, FloatArray | None]:
        """The checked, time-major arrays of a batch, in the compiled model's argument order:
        (x, lengths, target, mask, gru dropout, head dropout)."""
        losses.check_loss(loss)
        F, O = self.gru.input_size, self.head.out_features
        xs = as_float_array(
            x,
            "x",
            FLOAT_DTYPES[self.dtype],
            (None, None, F),
            f"{'(T, B, F)' if time_major else '(B, T, F)'} with F = {F}",
        )
        if not time_major:
            xs = np.ascontiguousarray(xs.transpose(1, 0, 2))
        T, B = xs.shape[:2]
        if T == 0 or B == 0:
            raise ValueError(f"x: expected at least one step and one sequence, got shape {xs.shape}")
        lens = None if lengths is None else check_lengths(lengths, T, B)
        targets = as_numeric(target, "target")
        rows_shape: tuple[int, ...]
        if self.return_sequences:
            rows_shape = (T, B)
            if not time_major:
                targets = np.swapaxes(targets, 0, 1) if np.ndim(targets) >= 2 else targets
                if mask is not None and np.ndim(mask) != 2:
                    raise ValueError(f"mask: expected shape (B, T) = ({B}, {T}), got {np.shape(mask)}")
                mask = None if mask is None else np.swapaxes(np.asarray(mask), 0, 1)
            if mask is None and lens is not None:
                mask = valid_mask(lens, T)
        else:
            rows_shape = (B,)
        rows_mask = losses.check_mask(mask, rows_shape)
        targets = np.ascontiguousarray(losses.check_target(loss, targets, rows_shape, O, self.dtype, rows_mask))
        if dropout_masks is None:
            dropout_masks = self.draw_dropout_masks(T, B) if self.training else (None, None)
        gru_dropout, head_dropout = dropout_masks
        head_mask = None
        if head_dropout is not None:  # the compiled model checks it too; the numpy path would broadcast it
            features = self.gru.num_directions * self.gru.hidden_size
            head_mask = self._check_head_dropout(
                head_dropout, (T, B, features) if self.return_sequences else (B, features)
            )
        return (
            xs,
            lens,
            targets,
            None if rows_mask is None else np.ascontiguousarray(rows_mask),
            gru_dropout,
            head_mask,
        )

    def _compute_gradients_numpy(
        self,
        loss: str,
        x: FloatArray,
        lengths: IntArray | None,
        target: npt.NDArray[Any],
        mask: npt.NDArray[np.bool_] | None,
        gru_dropout: Any,
        head_dropout: FloatArray | None,
        normalizer: float | None,
    ) -> tuple[float, int]:
        """compute_gradients composed from the layers' reference path (backend="numpy"); in eval
        mode too (then without dropout), as the compiled model. A NaN/inf is reported by
        apply_gradients, as the compiled path does, not warned about."""
        training = self.training
        if not training and self.dropout > 0:  # eval mode: no dropout, as the compiled model
            T, B = x.shape[:2]
            features = self.gru.num_directions * self.gru.hidden_size
            layers_after_first = self.gru.num_layers - 1
            gru_dropout = np.ones((layers_after_first, T, B, features), self.dtype) if layers_after_first else None
            head_dropout = np.ones((T, B, features) if self.return_sequences else (B, features), self.dtype)
        self.train(True)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                out = self.forward(x, lengths, time_major=True, dropout_masks=(gru_dropout, head_dropout))
                value, dout = losses.compute(loss, out, target, mask, backend="numpy")
                valid = int(np.prod(out.shape[:-1])) if mask is None else int(mask.sum())
                count = losses.loss_count(loss, valid, out.shape[-1])
                if normalizer is not None and count:
                    dout = dout * (count / normalizer)
                self.backward(dout, time_major=True)
        finally:
            self.train(training)
        return value * count, count

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the configuration and all weights to one safetensors file, atomically.
        ValueError if a weight is NaN or infinite (fastgru.load refuses such files). An int8 model
        (fastgru.quantize) writes its int8 weights and their row scales: about a quarter of the
        float32 file."""
        self.check_finite_weights()
        write_safetensors(path, self.file_tensors(), self.file_metadata())

    def file_tensors(self) -> dict[str, npt.NDArray[Any]]:
        """The tensors a file holds: state_dict(), or for an int8 model quantized_state_dict()."""
        return self.state_dict() if self.quantization is None else self.quantized_state_dict()

    def _install_int8(
        self, weights: Mapping[str, npt.NDArray[np.int8]], scales: Mapping[str, npt.NDArray[np.floating[Any]]]
    ) -> None:
        super()._install_int8(weights, scales)
        part: GRU | Dense
        for prefix, part, part_slice in (
            ("gru.", self.gru, slice(None, self._head_offset)),
            ("head.", self.head, slice(self._head_offset, None)),
        ):
            part._int8 = self._int8[part_slice]
            part._int8_scales = {
                name[len(prefix) :]: s for name, s in self._int8_scales.items() if name.startswith(prefix)
            }
            part._become_int8()

    def check_finite_weights(self) -> None:
        """ValueError naming the first parameter that holds NaN or infinity: such a model predicts
        nothing useful, and in a file it means damage."""
        for name, value in self.state_dict().items():
            if not np.isfinite(value).all():
                raise ValueError(f"parameter {name} holds NaN or infinity")

    def file_metadata(self, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The safetensors metadata of a saved model: its format, its config, and `extra`
        (JSON-serializable: an estimator's hyper-parameters and fitted attributes) when given."""
        metadata = {"format": FILE_FORMAT, "config": json.dumps(self.config)}
        if self.quantization is not None:
            metadata["quantization"] = self.quantization
        if extra is not None:
            metadata["estimator"] = json.dumps(extra)
        return metadata

    def __reduce__(self) -> tuple[Any, ...]:
        # The GRU's compiled configuration does not pickle; the config and weights suffice.
        state = {k: v.copy() for k, v in self.file_tensors().items()}
        return _restore, (self.config, state, self.training, self.quantization)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"GRUModel({args})"


def _restore(
    config: dict[str, Any], state: dict[str, npt.NDArray[Any]], training: bool, quantization: str | None = None
) -> GRUModel:
    model = GRUModel(**config)
    if quantization is not None:
        return install_quantized_state(model, state)
    model.load_state_dict(state)
    return model.train(training)


def install_quantized_state(obj: _Module, tensors: Mapping[str, npt.NDArray[Any]]) -> _Module:
    """obj (a new float GRU, Dense or GRUModel) made int8 from quantized_state_dict()'s tensors:
    int8 weights, their ".scale" rows, float biases; shapes and dtypes checked first (ValueError)."""
    views = obj.state_dict()
    expected: dict[str, tuple[npt.DTypeLike, tuple[int, ...]]] = {
        name: (np.int8, view.shape) for name, view in views.items() if view.ndim == 2
    }
    expected |= {name + ".scale": (obj.params.dtype, view.shape[:1]) for name, view in views.items() if view.ndim == 2}
    expected |= {name: (obj.params.dtype, view.shape) for name, view in views.items() if view.ndim == 1}
    if set(tensors) != set(expected):
        raise ValueError(f"int8 tensors: expected {sorted(expected)}, got {sorted(tensors)}")
    for name, (dtype, shape) in expected.items():
        value = np.asarray(tensors[name])
        if value.dtype != dtype or value.shape != shape:
            raise ValueError(f"{name}: expected {np.dtype(dtype).name} {shape}, got {value.dtype} {value.shape}")
        if dtype != np.int8 and not np.isfinite(value).all():
            raise ValueError(f"{name}: holds NaN or infinity")
        if name.endswith(".scale") and (value < 0).any():
            raise ValueError(f"{name}: row scales are >= 0")
    for name, view in views.items():
        if view.ndim == 1:
            view[...] = tensors[name]
    matrices = [name for name, view in views.items() if view.ndim == 2]
    obj._install_int8({n: tensors[n] for n in matrices}, {n: tensors[n + ".scale"] for n in matrices})
    return obj
