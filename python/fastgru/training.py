"""The training loop behind the estimators' fit: epochs of shuffled batches, one compiled
training step per batch (GRUModel.train_step), validation, early stopping, a NaN/inf guard,
Ctrl-C, and progress reported through a callback.

Data parallelism plugs in through a `reducer` (GradientReducer), the loop's only view of other
processes: SingleProcess here, fastgru.distributed.Communicator over MPI. With `distributed` set, each batch's gradient is computed on the local part with the whole
batch's loss count as normalizer, so that the summed gradient is exactly the batch mean's;
dropout masks are drawn for the whole batch on every process (same seeds) and sliced.
"""

import contextlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from . import losses
from ._typing import FloatArray, IntArray
from .data import Batch, SequenceSet, valid_mask
from .model import GRUModel, StepReport
from .optim import Adam
from .progress import Progress

_Value = TypeVar("_Value")
# Exceptions every process raises at the same point (the argument of an except clause).
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient became NaN or infinite during fit; .epoch and .batch (1-based) say
    where. The model keeps the weights of the last finished step."""

    def __init__(self, message: str, epoch: int, batch: int) -> None:
        super().__init__(message)
        self.epoch, self.batch = epoch, batch


class GradientReducer(Protocol):
    """The training loop's view of other processes: which part of each batch this process
    computes, and how the processes' gradients and decisions are combined."""

    @property
    def distributed(self) -> bool:
        """False: one process, and the loop calls train_step directly."""

    @property
    def is_root(self) -> bool:
        """Whether this process reports progress."""

    def local_part(self, n: int) -> IntArray:
        """The positions, within a global batch of n sequences, that this process computes."""

    def sum_gradients(self, grad: FloatArray, loss_sum: float) -> float:
        """Sums the flat gradient buffer grad in place and the loss sums over the processes;
        returns the total loss sum."""

    def agree(self, value: _Value) -> _Value:
        """The value every process uses (e.g. rank 0's): for the validation loss that decides early
        stopping, and the seed of a fit."""

    def run_consistently(self, compute: Callable[[], _Value], digest: Callable[[_Value], str]) -> _Value:
        """compute() (the estimators' data preparation), raising on every process when it failed on
        any or when digest(result) differs between them."""

    def failure_ends_job(self, raised_everywhere: ExceptionTypes = ()) -> AbstractContextManager[None]:
        """A context in which an exception on one process ends them all (the others would wait for
        it forever), except those of raised_everywhere, which every process raises at the same point."""


class SingleProcess:
    """The reducer (GradientReducer) of a one-process run: every batch is local, nothing to sum or
    agree on."""

    distributed = False
    is_root = True

    def local_part(self, n: int) -> IntArray:
        return np.arange(n)

    def sum_gradients(self, grad: FloatArray, loss_sum: float) -> float:
        return loss_sum

    def agree(self, value: _Value) -> _Value:
        return value

    def run_consistently(self, compute: Callable[[], _Value], digest: Callable[[_Value], str]) -> _Value:
        return compute()

    def failure_ends_job(self, raised_everywhere: ExceptionTypes = ()) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


@dataclass
class TrainingConfig:
    """What the loop needs besides the model and the data."""

    loss: str
    epochs: int
    batch_size: int
    shuffle: bool = True
    patience: int | None = None  # epochs without improvement before stopping; None: never
    restore_best_weights: bool = True
    clip_grad_norm: float | None = None


@dataclass
class TrainingResult:
    best_epoch: int | None = None  # 1-based epoch of the best monitored loss
    interrupted: bool = False  # Ctrl-C ended training


def train(
    model: GRUModel,
    optimizer: Adam,
    config: TrainingConfig,
    train_set: SequenceSet,
    validation_set: SequenceSet | None,
    rng: np.random.Generator,
    progress: Progress,
    history: dict[str, list[float]],
    reducer: GradientReducer | None = None,
) -> TrainingResult:
    """Trains model (a GRUModel, in place) on train_set (a fastgru.data.SequenceSet) and returns
    a TrainingResult. history: a dict of lists "loss", "val_loss", "time", appended to after
    each epoch (so it holds the finished epochs whatever ends training); "val_loss" stays empty
    without validation_set. progress: an object with start_epoch(epoch, n_batches),
    batch_done(mean_loss_so_far), end_epoch(epoch, loss, val_loss, seconds), interrupted(epoch)
    (fastgru.progress). Raises NonFiniteLossError (the model keeps the last finished step's
    weights); a KeyboardInterrupt ends training the same way and sets result.interrupted."""
    reducer = reducer or SingleProcess()
    best_params: FloatArray | None
    result = TrainingResult()
    n_batches = -(-len(train_set) // config.batch_size)
    best, wait, best_params = math.inf, 0, None
    try:
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            order = rng.permutation(len(train_set)) if config.shuffle else np.arange(len(train_set))
            progress.start_epoch(epoch, n_batches)
            total, rows = 0.0, 0
            model.train()
            for b in range(n_batches):
                batch = train_set.batch(order[b * config.batch_size : (b + 1) * config.batch_size])
                report = _step(model, optimizer, config, batch, reducer)
                if not report.applied:
                    what, value = (
                        ("loss", report.loss) if not math.isfinite(report.loss) else ("gradient norm", report.grad_norm)
                    )
                    raise _diverged(what, value, epoch, b + 1)
                total += report.loss * batch.rows
                rows += batch.rows
                progress.batch_done(total / rows)
            epoch_loss = total / rows
            val_loss = None
            if validation_set is not None:
                val_loss = reducer.agree(evaluate_loss(model, validation_set, config.loss, config.batch_size))
            # An epoch enters the history whole: a Ctrl-C in its validation pass leaves none of it.
            history["loss"].append(epoch_loss)
            if val_loss is not None:
                history["val_loss"].append(val_loss)
            history["time"].append(time.perf_counter() - start)
            progress.end_epoch(epoch, epoch_loss, val_loss, history["time"][-1])
            monitored = epoch_loss if val_loss is None else val_loss
            if monitored < best:
                best, wait, result.best_epoch = monitored, 0, epoch
                if config.patience is not None and config.restore_best_weights:
                    best_params = model.params.copy()
            else:
                wait += 1
                if config.patience is not None and wait >= config.patience:
                    break
    except KeyboardInterrupt:
        if reducer.distributed:
            raise  # the other processes cannot stop at the same step: the caller ends the job
        # The step updates the flat buffer in one compiled call, so the weights are those of the
        # last finished step; keep them rather than the best epoch's. A step cancelled inside the
        # core may have added part of its gradient: drop it.
        model.zero_grad()
        result.interrupted = True
        progress.interrupted(len(history["loss"]) + 1)
        return result
    if best_params is not None:
        model.params[:] = best_params
    return result


def _step(
    model: GRUModel, optimizer: Adam, config: TrainingConfig, batch: Batch, reducer: GradientReducer
) -> StepReport:
    """One training step on a global batch: one compiled call in one process; in several, the
    local part's gradient, summed over the processes, then the same update everywhere."""
    assert batch.target is not None, "training batches have targets"
    if not reducer.distributed:
        return model.train_step(
            batch.x,
            batch.target,
            optimizer,
            loss=config.loss,
            lengths=batch.lengths,
            clip_grad_norm=config.clip_grad_norm,
            time_major=True,
        )
    count = losses.loss_count(config.loss, batch.rows, model.head.out_features)
    gru_masks, head_mask = model.draw_dropout_masks(batch.x.shape[0], batch.size)
    part = reducer.local_part(batch.size)
    loss_sum = 0.0
    masks: tuple[Any, Any]
    if len(part):
        lengths = None if batch.lengths is None else batch.lengths[part]
        per_step = model.return_sequences
        masks = (
            None if gru_masks is None else gru_masks[:, :, part],
            None if head_mask is None else (head_mask[:, part] if per_step else head_mask[part]),
        )
        target = batch.target[:, part] if per_step else batch.target[part]
        loss_sum, _ = model.compute_gradients(
            batch.x[:, part],
            target,
            loss=config.loss,
            lengths=lengths,
            loss_normalizer=count,
            dropout_masks=masks,
            time_major=True,
        )
    loss_sum = reducer.sum_gradients(model.grad, loss_sum)
    return model.apply_gradients(optimizer, loss_sum / count, clip_grad_norm=config.clip_grad_norm)


def _diverged(what: str, value: float, epoch: int, batch: int) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"{what} is {value} at epoch {epoch}, batch {batch}: training stopped, the model keeps the weights of "
        "the last finished step (try a lower lr or clip_grad_norm, or check X and y for extreme values)",
        epoch,
        batch,
    )


def predict_logits(model: GRUModel, data: SequenceSet, batch_size: int) -> FloatArray:
    """Model outputs for a whole SequenceSet, in eval mode, batch by batch: (N, T, O) per step or (N, O)."""
    model.eval()
    N, steps, O = len(data), data.X.shape[0], model.head.out_features
    out: FloatArray = np.zeros(((steps, N) if model.return_sequences else (N,)) + (O,), model.dtype)
    for start, batch in data.batches(max(batch_size, 256)):
        y = model(batch.x, batch.lengths, time_major=True)
        if model.return_sequences:
            out[: len(y), start : start + batch.size] = y
        else:
            out[start : start + batch.size] = y
    return np.swapaxes(out, 0, 1) if model.return_sequences else out


def evaluate_loss(model: GRUModel, data: SequenceSet, loss: str, batch_size: int) -> float:
    """The loss over a whole SequenceSet: the mean over all its valid rows."""
    model.eval()
    total, rows = 0.0, 0
    for _, batch in data.batches(max(batch_size, 256)):
        mask = None
        if model.return_sequences and batch.lengths is not None:
            mask = valid_mask(batch.lengths, batch.x.shape[0])
        assert batch.target is not None, "a validation set has targets"
        value, _ = losses.compute(loss, model(batch.x, batch.lengths, time_major=True), batch.target, mask)
        total += value * batch.rows
        rows += batch.rows
    return total / rows
