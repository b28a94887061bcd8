"""scikit-learn-style estimators: fastgru.GRURegressor and fastgru.GRUClassifier.

    model = fastgru.GRURegressor(hidden_size=64, epochs=20).fit(X, y)
    y_hat = model.predict(X_new)

X is (N, T, F), or a list of (T_i, F) arrays of different lengths (padded here; the padding
never reaches the loss or the final state). y is per sequence ((N,) or (N, O)) or, with
return_sequences=True, per step ((N, T) or (N, T, O), or a list of (T_i,) / (T_i, O) arrays).

The conventions are scikit-learn's (the constructor only stores hyper-parameters, fit returns
self, fitted attributes end in "_", get_params/set_params, clone, Pipeline, GridSearchCV) and
Keras's for training (validation_split takes the LAST fraction of the data before shuffling,
history_ holds per-epoch loss, val_loss and time, early stopping with patience and best-weights
restore). scikit-learn itself is never required.

Without validation data, history_["val_loss"] is an empty list.

With distributed=True, several processes started by mpiexec train one model data-parallel and
end with the model one process trains (fastgru.distributed).

Training errors (the loop is fastgru.training.train):
- A NaN or infinite loss or gradient raises NonFiniteLossError (a FloatingPointError, so an
  ArithmeticError) naming the epoch and batch; the model keeps the weights of the last finished
  step, and history_ holds the finished epochs.
- Ctrl-C (KeyboardInterrupt) during fit stops training cleanly and then raises
  KeyboardInterrupt, as Keras' fit does (so a loop of fits stops at the first Ctrl-C): the
  estimator is fitted with the weights of the last finished step, interrupted_ = True, and
  history_ holds the finished epochs (predict, save and score work on it).
"""

import abc
import difflib
import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from . import losses, training
from ._checks import FLOAT_DTYPES, as_numeric, check_compute_dtype, check_non_negative, to_dtype_name
from ._typing import FloatArray, IntArray
from .data import SequenceSet, as_sequences, per_sequence_targets, per_step_targets, valid_mask
from .distributed import Communicator, data_digest, is_root_process
from .model import GRUModel
from .optim import Adam
from .progress import make_progress
from .safetensors_format import write_safetensors
from .streaming import EstimatorStream

_Estimator = TypeVar("_Estimator", bound="GRUEstimator")
# What fit checks a data set into: (X (N, T, F), lengths (N,) or None, encoded targets).
Prepared = tuple[FloatArray, IntArray | None, npt.NDArray[Any]]


class NotFittedError(ValueError, AttributeError):
    """predict/score before fit (the same bases as scikit-learn's NotFittedError; once scikit-learn
    is imported, the error raised is also an instance of its NotFittedError)."""


@functools.cache
def _with_base(base: type[Exception]) -> type[NotFittedError]:
    return type("NotFittedError", (NotFittedError, base), {"__module__": __name__, "__doc__": NotFittedError.__doc__})


def _not_fitted_error_class() -> type[NotFittedError]:
    """NotFittedError, joined with scikit-learn's when that is imported (importing it here would
    cost a second on every unfitted call, and fastgru never requires it)."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    return NotFittedError if sklearn_exceptions is None else _with_base(sklearn_exceptions.NotFittedError)


def _plain(value: Any) -> Any:
    """A NumPy scalar (a grid of np.arange values, a seed drawn by NumPy) as the Python number it
    stands for: JSON has no int64, and 8 and np.int64(8) are the same hyper-parameter."""
    return value.item() if isinstance(value, np.generic) else value


# ---- the estimators ---------------------------------------------------------------------------


class GRUEstimator(abc.ABC):
    """Shared machinery of GRURegressor and GRUClassifier (see the module docstring)."""

    _estimator_type: str
    _losses: tuple[str, ...] = ()
    _default_loss: str
    # Fitted attributes.
    model_: GRUModel
    history_: dict[str, list[float]]
    interrupted_: bool
    best_epoch_: int | None
    n_features_in_: int
    loss_: str

    def __new__(cls: type[_Estimator], *args: Any, **kwargs: Any) -> _Estimator:
        # The shared __init__ would name GRUEstimator in its TypeError; name the class the user
        # wrote, and the parameter they probably meant.
        valid = cls._param_names()
        for name in kwargs:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; valid parameters: {valid}"
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}{hint}")
        return super().__new__(cls)

    def __init__(
        self,
        hidden_size: int = 64,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        reset_after: bool = True,
        return_sequences: bool = False,
        dropout: float = 0.0,
        loss: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 10,
        batch_size: int = 32,
        validation_split: float = 0.0,
        validation_data: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
        shuffle: bool = True,
        patience: int | None = None,
        restore_best_weights: bool = True,
        clip_grad_norm: float | None = None,
        dtype: npt.DTypeLike = "float32",
        compute_dtype: str = "float32",
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        verbose: int | bool = 0,
        distributed: bool = False,
    ) -> None:
        """hidden_size, num_layers, bidirectional, reset_after: the GRU (fastgru.GRU).
        return_sequences: predict at every time step (y per step) instead of from the last state.
        dropout: between GRU layers and on the head's input, while training.
        loss: None for the default (mse; cross_entropy for the classifier).
        lr, weight_decay: Adam, with decoupled weight decay (AdamW) when weight_decay > 0.
        validation_split: fraction in [0, 1) taken from the END of X for validation (Keras);
        validation_data: (X_val, y_val) instead. patience: epochs without improvement of the
        validation loss (the training loss without validation) before stopping; None: never.
        restore_best_weights: with patience, end with the weights of the best epoch.
        clip_grad_norm: maximum global L2 norm of the gradient, or None.
        dtype, compute_dtype: the parameters' dtype ("float32" or "float64"), and the precision of
        the GRU's products: "float32", or "bfloat16" (dtype float32 only; bfloat16 operands with
        float32 accumulation, fastgru.GRU).
        random_state: int for bit-identical runs (at any fastgru.set_num_threads), None, or a
        NumPy RandomState or Generator (fit draws its seed from it, as scikit-learn's do).
        verbose: 0 (or False) silent; 1 (or True) progress per epoch: a tqdm bar on a terminal or in a
        notebook when tqdm is installed, else one plain line per epoch (fastgru.progress).
        distributed: train data-parallel over the processes of an MPI job (mpiexec; see
        fastgru.distributed): every rank calls fit with the same X, y and hyper-parameters and
        ends with the model one process trains; only rank 0 reports progress and saves."""
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.reset_after = reset_after
        self.return_sequences = return_sequences
        self.dropout = dropout
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.validation_data = validation_data
        self.shuffle = shuffle
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.clip_grad_norm = clip_grad_norm
        self.dtype = dtype
        self.compute_dtype = compute_dtype
        self.random_state = random_state
        self.verbose = verbose
        self.distributed = distributed

    # -- scikit-learn's parameter protocol ----------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values() if p.name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters, as scikit-learn's BaseEstimator.get_params."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: _Estimator, **params: Any) -> _Estimator:
        """Sets constructor parameters; ValueError for unknown names. Returns self."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}; valid parameters: {valid}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (v is defaults[k] or (type(v) is type(defaults[k]) and v == defaults[k]))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        # Only scikit-learn calls this, so importing it here keeps it optional.
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True, multi_output=not classifier),
            transformer_tags=None,
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
            input_tags=InputTags(two_d_array=False, three_d_array=True),
            non_deterministic=self.random_state is None,
        )

    # -- fitting ------------------------------------------------------------------------------
    def _check_hyper_parameters(self) -> tuple[str, type[np.floating[Any]]]:
        def check_int(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")

        for name, minimum in (("hidden_size", 1), ("num_layers", 1), ("epochs", 0), ("batch_size", 1)):
            check_int(name, minimum)
        if not isinstance(self.verbose, (bool, np.bool_)):
            check_int("verbose", 0)
        if self.patience is not None:
            check_int("patience", 1)
        if not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split: expected a fraction in [0, 1), got {self.validation_split!r}")
        if self.validation_split and self.validation_data is not None:
            raise ValueError("validation_split and validation_data: give one of them, not both")
        seed = self.random_state
        if not (
            seed is None
            or isinstance(seed, (np.random.RandomState, np.random.Generator))
            or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0)
        ):
            raise ValueError(
                f"random_state: expected None, an int >= 0, a numpy RandomState or Generator, got {seed!r}"
            )
        if not isinstance(self.distributed, (bool, np.bool_)):
            raise ValueError(f"distributed: expected True or False, got {self.distributed!r}")
        for name in ("lr", "weight_decay"):  # as Adam checks them, but before any rank builds a model
            check_non_negative(getattr(self, name), name)
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm: expected a positive number or None, got {self.clip_grad_norm!r}")
        loss = self._default_loss if self.loss is None else self.loss
        losses.check_loss(loss)
        if loss not in self._losses:
            raise ValueError(f"loss: {type(self).__name__} supports {self._losses}, got {loss!r}")
        dtype = to_dtype_name(self.dtype)
        check_compute_dtype(self.compute_dtype, dtype)
        return loss, FLOAT_DTYPES[dtype]

    def fit(
        self: _Estimator, X: npt.ArrayLike | Sequence[npt.ArrayLike], y: npt.ArrayLike | Sequence[npt.ArrayLike]
    ) -> _Estimator:
        """Trains a new model on X, y (see the module docstring for shapes). Returns self.

        If fit raises, the estimator is left as it was before the call (a fitted one keeps its
        model and fitted attributes), except for NonFiniteLossError and a KeyboardInterrupt
        during training, which keep the new model at its last finished step as the module
        docstring says. An int8 estimator (fastgru.quantize) is for inference only: fit raises
        RuntimeError."""
        model = getattr(self, "model_", None)
        if model is not None:
            model._check_trainable("fit")
        before = dict(vars(self))
        try:
            self._fit(X, y)
        except training.NonFiniteLossError:
            raise
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise
        if self.interrupted_:
            raise KeyboardInterrupt(
                "fit interrupted: the estimator keeps the weights of the last finished step (interrupted_ = True)"
            )
        return self

    def _fit(self, X: npt.ArrayLike | Sequence[npt.ArrayLike], y: npt.ArrayLike | Sequence[npt.ArrayLike]) -> None:
        reducer = self._reducer()
        train, validation = reducer.run_consistently(
            lambda: self._prepare_fit(X, y),
            digest=lambda prepared: data_digest(
                self._shared_params(), self._target_encoding(), *prepared[0], *(prepared[1] or ())
            ),
        )
        # From here a failure on one process only (out of memory, Ctrl-C) ends the MPI job: the
        # others would wait for it in the next collective. Everything that can be checked the
        # same way everywhere was checked above.
        with reducer.failure_ends_job(training.NonFiniteLossError):
            # Without a seed, each process would draw its own weights and batch order: rank 0's is used.
            seed = self.random_state
            if isinstance(seed, np.random.RandomState):  # drawn from, as scikit-learn estimators do
                seed = int(seed.randint(2**32))
            elif isinstance(seed, np.random.Generator):
                seed = int(seed.integers(2**32))
            random_state = reducer.agree(np.random.SeedSequence(seed).entropy)
            model_seed, shuffle_seed = np.random.SeedSequence(random_state).generate_state(2)
            progress = make_progress(self.verbose if reducer.is_root else 0, self.epochs)
            model = GRUModel(
                self.n_features_in_,
                self.hidden_size,
                self._n_logits,
                num_layers=self.num_layers,
                bidirectional=self.bidirectional,
                reset_after=self.reset_after,
                return_sequences=self.return_sequences,
                dropout=self.dropout,
                dtype=train[0].dtype,
                compute_dtype=self.compute_dtype,
                seed=int(model_seed),
            )
            optimizer = Adam(
                model, lr=self.lr, weight_decay=self.weight_decay, decoupled_weight_decay=self.weight_decay > 0
            )
            self.model_ = model
            self.history_ = {"loss": [], "val_loss": [], "time": []}
            self.interrupted_ = False
            self.best_epoch_ = None
            config = training.TrainingConfig(
                loss=self.loss_,
                epochs=self.epochs,
                batch_size=self.batch_size,
                shuffle=self.shuffle,
                patience=self.patience,
                restore_best_weights=self.restore_best_weights,
                clip_grad_norm=self.clip_grad_norm,
            )
            result = training.train(
                self.model_,
                optimizer,
                config,
                self._sequence_set(*train),
                self._sequence_set(*validation) if validation else None,
                np.random.default_rng(shuffle_seed),
                progress,
                self.history_,
                reducer,
            )
        self.best_epoch_, self.interrupted_ = result.best_epoch, result.interrupted
        self.model_.eval()

    def _reducer(self) -> training.GradientReducer:
        """The training loop's view of other processes (fastgru.training): with distributed=True
        in an MPI job of several processes, the Communicator over them; else SingleProcess."""
        if self.distributed:
            comm = Communicator()
            if comm.size > 1:
                return comm
        return training.SingleProcess()

    def _shared_params(self) -> list[tuple[str, Any]]:
        """The hyper-parameters every rank of a distributed fit must share (validation_data is
        compared as data), as values: 8 and np.int64(8) agree; a NumPy generator is compared by
        kind only (each rank draws from its own, and rank 0's draw is used)."""

        def value(v: Any) -> Any:
            return type(v).__name__ if isinstance(v, (np.random.RandomState, np.random.Generator)) else _plain(v)

        return sorted((k, value(v)) for k, v in self.get_params().items() if k not in ("validation_data", "verbose"))

    def _target_encoding(self) -> Any:
        """What _prepare_fit learned from y besides the encoded targets (classes, outputs), which
        every rank of a distributed fit must share too."""
        return ()

    def _prepare_fit(
        self, X: npt.ArrayLike | Sequence[npt.ArrayLike], y: npt.ArrayLike | Sequence[npt.ArrayLike]
    ) -> tuple[Prepared, Prepared | None]:
        """Checks the hyper-parameters and the data: (train, validation or None), each a triple
        (X (N, T, F), lengths or None, encoded targets)."""
        loss, dtype = self._check_hyper_parameters()
        self.loss_ = loss
        X_train, lengths, _ = as_sequences(X, dtype)
        N, T, F = X_train.shape
        targets = self._encode_targets(
            self._targets(y, N, T, lengths), fitting=True, loss=loss, dtype=dtype, valid=self._valid_steps(T, lengths)
        )
        if self.validation_data is not None:
            try:
                X_val, y_val = self.validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data: expected a pair (X_val, y_val)") from None
            X_valid, lengths_val, _ = as_sequences(X_val, dtype, "validation_data[0]")
            if X_valid.shape[2] != F:
                raise ValueError(f"validation_data[0]: expected F = {F} features as X, got {X_valid.shape[2]}")
            val_targets = self._encode_targets(
                self._targets(y_val, len(X_valid), X_valid.shape[1], lengths_val, "validation_data[1]"),
                fitting=False,
                loss=loss,
                dtype=dtype,
                name="validation_data[1]",
                valid=self._valid_steps(X_valid.shape[1], lengths_val),
            )
            validation: Prepared | None = (X_valid, lengths_val, val_targets)
            train: Prepared = (X_train, lengths, targets)
        elif self.validation_split:
            n_val = int(N * self.validation_split)
            if n_val == 0 or n_val == N:
                raise ValueError(
                    f"validation_split={self.validation_split} leaves {N - n_val} training and "
                    f"{n_val} validation sequences out of {N}; both must be >= 1"
                )
            cut = N - n_val
            train = (X_train[:cut], None if lengths is None else lengths[:cut], targets[:cut])
            validation = (X_train[cut:], None if lengths is None else lengths[cut:], targets[cut:])
        else:
            train, validation = (X_train, lengths, targets), None
        self.n_features_in_ = F
        return train, validation

    def _sequence_set(
        self, X: FloatArray, lengths: IntArray | None, targets: npt.NDArray[Any] | None = None
    ) -> SequenceSet:
        return SequenceSet.from_batch_first(X, lengths, targets, per_step=self.return_sequences)

    def _logits(self, data: SequenceSet) -> FloatArray:
        """Model outputs for a whole SequenceSet, in eval mode: (N, T, O) or (N, O)."""
        return training.predict_logits(self.model_, data, self.batch_size)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise _not_fitted_error_class()(f"This {type(self).__name__} instance is not fitted yet; call fit first")

    def _prepare_X(self, X: npt.ArrayLike | Sequence[npt.ArrayLike]) -> tuple[SequenceSet, IntArray, bool]:
        self._check_fitted()
        sequences, lengths, ragged = as_sequences(X, self.model_.dtype)
        if sequences.shape[2] != self.n_features_in_:
            raise ValueError(f"X: expected F = {self.n_features_in_} features (as in fit), got {sequences.shape[2]}")
        full_lengths = np.full(len(sequences), sequences.shape[1]) if lengths is None else lengths
        return self._sequence_set(sequences, lengths), full_lengths, ragged

    def _targets(
        self, y: npt.ArrayLike | Sequence[npt.ArrayLike], N: int, T: int, lengths: IntArray | None, name: str = "y"
    ) -> npt.NDArray[Any]:
        if self.return_sequences:
            return per_step_targets(y, N, T, lengths, name)
        return per_sequence_targets(y, N, name)

    def _valid_steps(self, T: int, lengths: IntArray | None) -> npt.NDArray[np.bool_] | None:
        """(N, T) bool of the valid steps of per-step targets, or None when all are valid."""
        if not self.return_sequences or lengths is None:
            return None
        valid: npt.NDArray[np.bool_] = valid_mask(lengths, T).T
        return valid

    def _split_steps(
        self, values: npt.NDArray[Any], lengths: IntArray, ragged: bool
    ) -> npt.NDArray[Any] | list[npt.NDArray[Any]]:
        """Per-step predictions (N, T, ...) as a list of (T_i, ...) arrays for ragged input."""
        if ragged and self.return_sequences:
            return [values[i, :n] for i, n in enumerate(lengths)]
        return values

    def _valid_rows(self, values: npt.NDArray[Any], lengths: IntArray) -> npt.NDArray[Any]:
        """The valid (sequence, step) rows of per-step values (N, T, ...), or values as they are."""
        if not self.return_sequences:
            return values
        return values[np.arange(values.shape[1])[None, :] < lengths[:, None]]

    def stream(self, n_streams: int = 1) -> EstimatorStream:
        """Streaming inference, one time step at a time (fastgru.streaming): stream.step(x_t)
        with x_t (n_streams, F) (or (F,)) returns predict's value for the sequences seen so far;
        classifiers also have stream.step_proba(x_t); stream.reset(i=None) starts over."""
        self._check_fitted()
        return EstimatorStream(self.model_, self._from_logits, self._probabilities(), n_streams)

    # -- saving ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the fitted model, its hyper-parameters and fitted attributes to one safetensors
        file (atomically); fastgru.load(path) gives back an estimator predicting bit-identically.
        With distributed=True, only rank 0 writes (every rank holds the same model); the others
        return at once, without waiting for the file."""
        self._check_fitted()
        if self.distributed and not is_root_process():
            return
        params = {k: _plain(v) for k, v in self.get_params().items() if k != "validation_data"}
        extra = {"class": type(self).__name__, "params": params, "fitted": self._fitted_state()}
        try:
            json.dumps(extra)
        except TypeError as exc:
            raise TypeError(f"save: hyper-parameters or classes are not JSON-serializable ({exc})") from None
        self.model_.check_finite_weights()
        write_safetensors(path, self.model_.file_tensors(), self.model_.file_metadata(extra))

    # -- what each estimator adds ---------------------------------------------------------------
    @abc.abstractmethod
    def _encode_targets(
        self,
        y: npt.ArrayLike,
        fitting: bool,
        loss: str,
        dtype: npt.DTypeLike,
        name: str = "y",
        valid: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[Any]:
        """y checked and encoded as the model's targets (learning the encoding when fitting)."""

    @property
    @abc.abstractmethod
    def _n_logits(self) -> int:
        """The model's outputs O."""

    @abc.abstractmethod
    def _from_logits(self, logits: FloatArray) -> npt.NDArray[Any]:
        """predict's values from the model's outputs (..., O)."""

    def _probabilities(self) -> Callable[[FloatArray], FloatArray] | None:
        """Classifiers: logits -> predict_proba's probabilities."""
        return None

    def _fitted_state(self) -> dict[str, Any]:
        return {
            "n_features_in_": int(self.n_features_in_),
            "loss_": self.loss_,
            "history_": self.history_,
            "best_epoch_": self.best_epoch_,
            "interrupted_": self.interrupted_,
        }

    def _restore_fitted(self, state: dict[str, Any], model: GRUModel) -> None:
        self.model_ = model
        for key in ("n_features_in_", "loss_", "history_", "best_epoch_", "interrupted_"):
            setattr(self, key, state[key])

    def _check_restored(self, loss: str) -> None:
        """ValueError unless the fitted attributes read from a file agree with its model and
        hyper-parameters (a file edited or damaged where its JSON still parses)."""
        config = self.model_.config
        expected = {
            "n_features_in_": config["input_size"],
            "loss_": loss,
            "_n_logits": config["output_size"],
            "hidden_size": config["hidden_size"],
            "num_layers": config["num_layers"],
            "bidirectional": config["bidirectional"],
            "reset_after": config["reset_after"],
            "return_sequences": config["return_sequences"],
            "compute_dtype": config["compute_dtype"],
        }
        for name, value in expected.items():
            got = getattr(self, name)
            if type(got) is not type(value) or got != value:
                raise ValueError(f"{name} is {got!r}, its model and hyper-parameters say {value!r}")
        if not isinstance(self.history_, dict) or not isinstance(self.interrupted_, bool):
            raise ValueError("history_ or interrupted_ is malformed")


# __new__ takes (*args, **kwargs) to name the user's class in its errors; inspect.signature,
# help() and scikit-learn must see __init__'s parameters instead.
_init = inspect.signature(GRUEstimator.__init__)
GRUEstimator.__signature__ = _init.replace(parameters=list(_init.parameters.values())[1:])  # type: ignore[attr-defined]


class GRURegressor(GRUEstimator):
    """GRU regression: y per sequence ((N,) or (N, O)) or per step with return_sequences.
    Losses "mse" (default) or "mae". score() is R^2, averaged uniformly over outputs."""

    _estimator_type = "regressor"
    _losses = ("mse", "mae")
    _default_loss = "mse"
    n_outputs_: int
    _single_output: bool

    def _encode_targets(
        self,
        y: npt.ArrayLike,
        fitting: bool,
        loss: str,
        dtype: npt.DTypeLike,
        name: str = "y",
        valid: npt.NDArray[np.bool_] | None = None,
    ) -> FloatArray:
        """y as a float array (..., O); entries at padded steps (not valid) become 0."""
        values: FloatArray = np.asarray(as_numeric(y, name), dtype)
        if not np.isfinite(values if valid is None else values[valid]).all():
            raise ValueError(f"{name}: contains NaN or infinity")
        if valid is not None:
            values = np.where(valid.reshape(valid.shape + (1,) * (values.ndim - 2)), values, 0).astype(dtype)
        per_output = values.ndim == (3 if self.return_sequences else 2)
        if fitting:
            self.n_outputs_ = values.shape[-1] if per_output else 1
            self._single_output = not per_output
        elif (values.shape[-1] if per_output else 1) != self.n_outputs_:
            raise ValueError(f"{name}: expected {self.n_outputs_} outputs as y, got shape {values.shape}")
        return values if per_output else values[..., None]

    @property
    def _n_logits(self) -> int:
        return self.n_outputs_

    def _target_encoding(self) -> tuple[int, bool]:
        return (self.n_outputs_, self._single_output)

    @overload
    def predict(self, X: npt.NDArray[Any]) -> FloatArray: ...

    @overload
    def predict(self, X: Sequence[npt.ArrayLike]) -> FloatArray | list[FloatArray]: ...

    def predict(self, X: npt.NDArray[Any] | Sequence[npt.ArrayLike]) -> FloatArray | list[FloatArray]:
        """Predictions: (N,) / (N, O), or per step (N, T) / (N, T, O) (a list of (T_i[, O]) arrays
        for ragged X) with return_sequences."""
        source, lengths, ragged = self._prepare_X(X)
        return self._split_steps(self._from_logits(self._logits(source)), lengths, ragged)

    def _from_logits(self, logits: FloatArray) -> FloatArray:
        """Predictions from the model's outputs (..., O)."""
        return logits[..., 0] if self._single_output else logits

    def score(self, X: npt.ArrayLike | Sequence[npt.ArrayLike], y: npt.ArrayLike | Sequence[npt.ArrayLike]) -> float:
        """R^2 (coefficient of determination) over the valid steps, averaged over outputs, as
        sklearn.metrics.r2_score."""
        source, lengths, _ = self._prepare_X(X)
        N, T = len(source), source.X.shape[0]
        given = None if (lengths == T).all() else lengths
        truth = self._encode_targets(
            self._targets(y, N, T, given),
            fitting=False,
            loss=self.loss_,
            dtype=np.float64,
            valid=self._valid_steps(T, given),
        )
        pred = self._logits(source).astype(np.float64)
        truth, pred = self._valid_rows(truth, lengths), self._valid_rows(pred, lengths)
        truth, pred = truth.reshape(-1, self.n_outputs_), pred.reshape(-1, self.n_outputs_)
        ss_res = ((truth - pred) ** 2).sum(0)
        ss_tot = ((truth - truth.mean(0)) ** 2).sum(0)
        # sklearn's convention for a constant target: 1 if predicted exactly, else 0.
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res == 0, 1.0, 0.0))
        return float(r2.mean())

    def _fitted_state(self) -> dict[str, Any]:
        return {**super()._fitted_state(), "n_outputs_": int(self.n_outputs_), "single_output": self._single_output}

    def _restore_fitted(self, state: dict[str, Any], model: GRUModel) -> None:
        super()._restore_fitted(state, model)
        self.n_outputs_, self._single_output = state["n_outputs_"], state["single_output"]
        if not isinstance(self._single_output, bool) or (self._single_output and self.n_outputs_ != 1):
            raise ValueError(f"single_output {self._single_output!r} with n_outputs_ {self.n_outputs_!r}")


class GRUClassifier(GRUEstimator):
    """GRU classification: labels per sequence (N,) or per step (N, T) with return_sequences; any
    labels np.unique can sort (classes_). Losses "cross_entropy" (softmax, default) or
    "binary_crossentropy" (one sigmoid logit, two classes only). score() is the accuracy."""

    _estimator_type = "classifier"
    _losses = ("cross_entropy", "binary_crossentropy")
    _default_loss = "cross_entropy"
    classes_: npt.NDArray[Any]

    def _encode_targets(
        self,
        y: npt.ArrayLike,
        fitting: bool,
        loss: str,
        dtype: npt.DTypeLike,
        name: str = "y",
        valid: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[Any]:
        """Labels as class indices (int64, or a float (..., 1) 0/1 target for binary_crossentropy);
        only the valid steps need to hold labels, padded ones become class 0."""
        given = np.asarray(y)
        want = 2 if self.return_sequences else 1
        if given.ndim != want:
            raise ValueError(
                f"{name}: expected class labels of shape {'(N, T)' if want == 2 else '(N,)'}, got {given.shape}"
            )
        labels = given if valid is None else given[valid]
        if labels.dtype.kind in "fc" and np.isnan(labels).any():
            raise ValueError(f"{name}: contains NaN, which is no class label")
        if labels.dtype.kind in "fc" and (labels != np.round(labels)).any():
            raise ValueError(
                f"{name}: continuous values (not whole numbers) are no class labels; "
                "for numeric targets use GRURegressor"
            )
        if fitting:
            self.classes_ = np.unique(labels)
            if len(self.classes_) < 2:
                raise ValueError(f"{name}: expected at least 2 classes, got {len(self.classes_)}: {self.classes_}")
            if loss == "binary_crossentropy" and len(self.classes_) != 2:
                raise ValueError(
                    f"loss='binary_crossentropy' needs exactly 2 classes, got {len(self.classes_)}; "
                    "use loss='cross_entropy'"
                )
        found = np.minimum(np.searchsorted(self.classes_, labels), len(self.classes_) - 1)
        unknown = self.classes_[found] != labels
        if unknown.any():
            raise ValueError(
                f"{name}: labels out of range: {np.unique(labels[unknown])[:5]} are not among the "
                f"classes seen in fit {self.classes_}"
            )
        codes = np.zeros(given.shape, np.int64)
        codes[... if valid is None else valid] = found
        if loss == "binary_crossentropy":
            return codes.astype(dtype)[..., None]
        return codes.astype(np.int64)

    @property
    def _n_logits(self) -> int:
        return 1 if self.loss_ == "binary_crossentropy" else len(self.classes_)

    def _target_encoding(self) -> str:
        return repr(self.classes_.tolist())

    @overload
    def predict_proba(self, X: npt.NDArray[Any]) -> FloatArray: ...

    @overload
    def predict_proba(self, X: Sequence[npt.ArrayLike]) -> FloatArray | list[FloatArray]: ...

    def predict_proba(self, X: npt.NDArray[Any] | Sequence[npt.ArrayLike]) -> FloatArray | list[FloatArray]:
        """Class probabilities (N, C), or per step (N, T, C) (a list for ragged X)."""
        source, lengths, ragged = self._prepare_X(X)
        return self._split_steps(self._proba(self._logits(source)), lengths, ragged)

    def _proba(self, logits: FloatArray) -> FloatArray:
        wide = logits.astype(np.float64)
        if self.loss_ == "binary_crossentropy":
            p = 0.5 * (1.0 + np.tanh(0.5 * wide))
            return np.concatenate([1 - p, p], axis=-1)
        e = np.exp(wide - wide.max(axis=-1, keepdims=True))
        proba: FloatArray = e / e.sum(axis=-1, keepdims=True)
        return proba

    def _probabilities(self) -> Callable[[FloatArray], FloatArray]:
        return self._proba

    @overload
    def predict(self, X: npt.NDArray[Any]) -> npt.NDArray[Any]: ...

    @overload
    def predict(self, X: Sequence[npt.ArrayLike]) -> npt.NDArray[Any] | list[npt.NDArray[Any]]: ...

    def predict(self, X: npt.NDArray[Any] | Sequence[npt.ArrayLike]) -> npt.NDArray[Any] | list[npt.NDArray[Any]]:
        """Class labels (N,), or per step (N, T) (a list for ragged X)."""
        source, lengths, ragged = self._prepare_X(X)
        return self._split_steps(self._from_logits(self._logits(source)), lengths, ragged)

    def _from_logits(self, logits: FloatArray) -> npt.NDArray[Any]:
        """Class labels from the model's outputs (..., n_logits)."""
        labels: npt.NDArray[Any] = self.classes_[self._proba(logits).argmax(-1)]
        return labels

    def score(self, X: npt.ArrayLike | Sequence[npt.ArrayLike], y: npt.ArrayLike | Sequence[npt.ArrayLike]) -> float:
        """Accuracy over the sequences (the valid steps with return_sequences)."""
        source, lengths, _ = self._prepare_X(X)
        N, T = len(source), source.X.shape[0]
        truth = self._targets(y, N, T, None if (lengths == T).all() else lengths)
        pred = self.classes_[self._proba(self._logits(source)).argmax(-1)]
        truth, pred = self._valid_rows(np.asarray(truth), lengths), self._valid_rows(pred, lengths)
        return float((truth == pred).mean())

    def _fitted_state(self) -> dict[str, Any]:
        return {**super()._fitted_state(), "classes_": self.classes_.tolist()}

    def _restore_fitted(self, state: dict[str, Any], model: GRUModel) -> None:
        super()._restore_fitted(state, model)
        self.classes_ = np.asarray(state["classes_"])
        classes = self.classes_
        if classes.ndim != 1 or len(classes) < 2 or not np.array_equal(np.unique(classes), classes):
            raise ValueError(f"classes_ must be 2 or more distinct labels in sorted order, got {state['classes_']!r}")


def estimator_from_saved(saved: dict[str, Any], model: GRUModel) -> GRUEstimator:
    """The estimator that GRUEstimator.save stored (fastgru.load calls this)."""
    classes = {cls.__name__: cls for cls in (GRURegressor, GRUClassifier)}
    if saved.get("class") not in classes:
        raise ValueError(f"unknown estimator class {saved.get('class')!r} in the file")
    estimator = classes[saved["class"]](**saved["params"])
    loss, _ = estimator._check_hyper_parameters()
    estimator._restore_fitted(saved["fitted"], model)
    estimator._check_restored(loss)
    return estimator
