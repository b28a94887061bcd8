"""Data-parallel training over MPI: P processes train ONE model, each on its part of every batch.

    # train.py, started as:  mpiexec -n 4 python -m mpi4py train.py
    model = fastgru.GRURegressor(hidden_size=64, distributed=True, random_state=0).fit(X, y)

Every rank holds the same X, y and hyper-parameters. Each global batch (the one a single process
would draw) is cut into P contiguous parts; a rank runs forward and backward on its part for the
gradient of (its part's loss sum / the whole batch's number of valid rows), and one all-reduce
(MPI_SUM, in place) of the flat gradient buffer gives every rank the gradient of the whole batch's
mean loss. Clipping, the non-finite check and Adam then run identically on every rank, so the
parameters stay bit-identical everywhere and equal a one-process run's up to rounding.

Communicator is the training loop's reducer (fastgru.training): it says which columns of a batch
this rank computes, sums the gradients and loss sums, and makes every rank use rank 0's
validation loss, so that early stopping decides the same everywhere.

`python -m mpi4py` makes an uncaught exception on any rank abort the whole job (MPI_Abort)
instead of leaving the other ranks waiting in a collective forever; fit itself aborts the job when
a rank fails in a way the others cannot see.

mpi4py is imported in this module only, when a communicator is first asked for: `import fastgru`
never imports it. `pip install ".[mpi]"` (in a clone) brings mpi4py and an MPI runtime (MPICH's wheel);
on a cluster, mpi4py alone uses the system's MPI.
"""

import contextlib
import hashlib
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from ._typing import FloatArray, IntArray

_Value = TypeVar("_Value")
# Exceptions every rank raises at the same point (the argument of an except clause).
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


ABORT_GRACE_SECONDS = 1.0


def _mpi() -> Any:
    """mpi4py.MPI, or an ImportError (ModuleNotFoundError for mpi4py) that says how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ModuleNotFoundError(
            "distributed training needs mpi4py and an MPI runtime: "
            'pip install ".[mpi]" in a clone of fastgru ("fastgru[mpi]" once it is on the '
            "package index; on a cluster: pip install mpi4py, which uses the cluster's MPI)",
            name="mpi4py",
        ) from exc
    return MPI


class Communicator:
    """The collective operations data-parallel training needs, over an mpi4py communicator, and
    the training loop's reducer (local_part, sum_gradients, agree, is_root, distributed).

    `comm`: an mpi4py communicator (mpi4py.MPI.Comm), or None for MPI.COMM_WORLD."""

    distributed = True

    def __init__(self, comm: Any = None) -> None:
        MPI = _mpi()
        self._MPI = MPI
        self.comm: Any = MPI.COMM_WORLD if comm is None else comm
        if not isinstance(self.comm, MPI.Comm):
            raise TypeError(
                f"comm: expected an mpi4py communicator (mpi4py.MPI.Comm) or None, got {type(comm).__name__}"
            )
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        self.is_root: bool = self.rank == 0
        self._message: FloatArray | None = None

    def local_part(self, n: int) -> IntArray:
        """The positions this rank computes within a batch of n: a contiguous share, as
        np.array_split cuts them (the first n % size ranks get one more; a rank may get none)."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return np.arange(start, start + base + (self.rank < extra))

    def sum_in_place(self, buffer: FloatArray) -> FloatArray:
        """buffer (contiguous float32/float64 array) becomes the element-wise sum of every rank's
        buffer: one MPI_Allreduce with MPI_IN_PLACE."""
        if self.size > 1:
            self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        return buffer

    def sum_gradients(self, grad: FloatArray, loss_sum: float) -> float:
        """grad (the flat gradient buffer) becomes the sum over the ranks, in place; returns the
        sum of the ranks' loss_sum. One all-reduce: the loss sum travels appended to the gradient
        (in grad's dtype)."""
        if self._message is None or self._message.size != grad.size + 1 or self._message.dtype != grad.dtype:
            self._message = np.empty(grad.size + 1, grad.dtype)
        message = self._message
        message[:-1] = grad
        message[-1] = loss_sum
        self.sum_in_place(message)
        grad[:] = message[:-1]
        return float(message[-1])

    def agree(self, value: _Value) -> _Value:
        """Rank 0's value (any picklable object), on every rank."""
        agreed: _Value = self.comm.bcast(value, root=0) if self.size > 1 else value
        return agreed

    def run_consistently(self, compute: Callable[[], _Value], digest: Callable[[_Value], str]) -> _Value:
        """compute() on every rank, for a result every rank must agree on (checked input data).
        Raises on EVERY rank when it failed on any (that rank's own exception there, a
        RuntimeError naming it elsewhere) or when digest(result) (a str) differs between ranks
        (ValueError), so that no rank goes on to wait in a collective for ranks that stopped.
        compute must not communicate."""
        result: _Value | BaseException
        report: tuple[str | None, str | None]
        try:
            result = compute()
            report = (None, digest(result))
        except BaseException as exc:  # Ctrl-C too: the others must hear of it, not wait for it
            result, report = exc, (f"{type(exc).__name__}: {exc}", None)
        reports: list[tuple[str | None, str | None]] = self.comm.allgather(report)
        if isinstance(result, BaseException):
            raise result
        failed = [(rank, error) for rank, (error, _) in enumerate(reports) if error is not None]
        if failed:
            rank, error = failed[0]
            raise RuntimeError(
                f"rank {rank} of {self.size} failed to prepare the data ({error}); every rank "
                "must call fit with the same X, y and hyper-parameters"
            )
        differing = [rank for rank, (_, mark) in enumerate(reports) if mark != reports[0][1]]
        if differing:
            raise ValueError(
                f"ranks {differing} of {self.size} got other data or hyper-parameters than rank 0; "
                "every rank must call fit with the same X, y and hyper-parameters"
            )
        return result

    @contextlib.contextmanager
    def failure_ends_job(self, raised_everywhere: ExceptionTypes = ()) -> Iterator[None]:
        """A block in which any exception (KeyboardInterrupt included) ends the whole MPI job, as
        the other ranks would otherwise wait forever for this one in the next collective; except
        those of `raised_everywhere`, which every rank raises at the same point."""
        try:
            yield
        except raised_everywhere:
            raise
        except BaseException as exc:
            if self.size > 1:
                self.abort(exc)
            raise

    def abort(self, error: BaseException) -> None:
        """Prints error with its traceback, naming this rank, and ends every rank of the job."""
        print(
            f"fastgru: rank {self.rank} of {self.size} failed; aborting the MPI job so the other ranks "
            "do not wait for it forever:",
            file=sys.stderr,
        )
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        sys.stderr.flush()
        # mpiexec forwards the ranks' output asynchronously and drops what it has not forwarded
        # when the abort reaches it: give it time to pass this message on.
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.Abort(1)


def is_root_process() -> bool:
    """Whether this process is rank 0 of MPI.COMM_WORLD; True without mpi4py (no MPI job then)."""
    try:
        return Communicator().is_root
    except ModuleNotFoundError:
        return True


def data_digest(*items: object) -> str:
    """A short str identifying items (arrays, None, or anything with a stable repr) by content."""
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, np.ndarray):
            h.update(f"{item.dtype.str}{item.shape}".encode())
            h.update(np.ascontiguousarray(item).data)
        else:
            h.update(repr(item).encode())
        h.update(b"|")
    return h.hexdigest()


def allreduce_gradients(model: object, comm: Any = None, weight: float = 1.0) -> FloatArray:
    """Replaces model.grad, on every rank of comm, by the weighted average over the ranks
    sum_r weight_r * grad_r / sum_r weight_r, with one all-reduce of the flat gradient buffer after
    the weights are gathered and checked (a bad weight on any rank raises ValueError on every rank,
    with grad unchanged). Returns model.grad.

    For a custom data-parallel loop over a GRUModel (or GRU, Dense: anything with a flat `grad`)
    in which each rank's grad is the gradient of the MEAN loss over its own n_r valid rows, pass
    weight = n_r (or n_r / (n_0 + ... + n_{P-1}), the same): the result is the gradient of the mean
    loss over all the rows, as one process computing the whole batch gets it. A rank with no rows
    passes weight 0. The default, equal weights, is the plain average. comm: an mpi4py
    communicator or a fastgru.distributed.Communicator (None: MPI.COMM_WORLD)."""
    if not isinstance(comm, Communicator):
        comm = Communicator(comm)
    grad = getattr(model, "grad", None)
    if not isinstance(grad, np.ndarray) or grad.ndim != 1 or not grad.flags.c_contiguous:
        raise TypeError("model: expected a fastgru module whose .grad is a flat contiguous array")
    weight = float(weight)
    # Every rank checks every rank's weight before grad changes, so that a bad weight on one
    # rank raises on all of them (none left waiting in the sum) and no gradient is lost.
    weights = comm.comm.allgather(weight) if comm.size > 1 else [weight]
    bad = [rank for rank, w in enumerate(weights) if not (w >= 0 and w != np.inf)]
    if bad:
        raise ValueError(
            f"weight: expected a finite number >= 0 on every rank, got {weights[bad[0]]!r} on rank {bad[0]}"
        )
    total = float(np.sum(weights))
    if not total > 0:
        raise ValueError(f"weight: the ranks' weights sum to {total}; at least one must be positive")
    if weight != 1.0:
        grad *= weight
    comm.sum_in_place(grad)
    if total != 1.0:
        grad /= total
    return grad
