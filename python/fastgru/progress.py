"""Progress of fit, as the training loop's callback (fastgru.training.train): a Progress.

verbose=1 shows a tqdm bar per epoch on a terminal (or in a notebook) when tqdm is installed;
otherwise (output redirected to a log, or no tqdm) one plain line per epoch, so a log gets no
carriage returns and each epoch once.
"""

import sys
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    """What the training loop reports; epochs count from 1."""

    def start_epoch(self, epoch: int, n_batches: int) -> None: ...

    def batch_done(self, mean_loss: float) -> None:
        """After each batch, with the mean loss of the epoch's batches so far."""

    def end_epoch(self, epoch: int, loss: float, val_loss: float | None, seconds: float) -> None: ...

    def interrupted(self, epoch: int) -> None:
        """Ctrl-C stopped training during this epoch."""


class Silent:
    def start_epoch(self, epoch: int, n_batches: int) -> None:
        pass

    def batch_done(self, mean_loss: float) -> None:
        pass

    def end_epoch(self, epoch: int, loss: float, val_loss: float | None, seconds: float) -> None:
        pass

    def interrupted(self, epoch: int) -> None:
        pass


class EpochLines(Silent):
    """One line per epoch on stdout: "epoch 3/10 - loss 0.1234 - val_loss 0.2345 - 0.52s"."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def end_epoch(self, epoch: int, loss: float, val_loss: float | None, seconds: float) -> None:
        val = "" if val_loss is None else f" - val_loss {val_loss:.4g}"
        print(f"epoch {epoch}/{self.epochs} - loss {loss:.4g}{val} - {seconds:.2f}s", flush=True)

    def interrupted(self, epoch: int) -> None:
        print(f"fit interrupted during epoch {epoch}; keeping the weights of the last finished step", file=sys.stderr)


class TqdmBars(EpochLines):
    """A tqdm bar per epoch with the running loss; the finished bar shows the epoch's losses."""

    def __init__(self, epochs: int, tqdm: Any) -> None:
        super().__init__(epochs)
        self._tqdm: Any = tqdm
        self._bar: Any = None

    def start_epoch(self, epoch: int, n_batches: int) -> None:
        self._bar = self._tqdm(total=n_batches, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=True)

    def batch_done(self, mean_loss: float) -> None:
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{mean_loss:.4g}", refresh=False)

    def end_epoch(self, epoch: int, loss: float, val_loss: float | None, seconds: float) -> None:
        val = "" if val_loss is None else f", val_loss={val_loss:.4g}"
        self._bar.set_postfix_str(f"loss={loss:.4g}{val}", refresh=False)
        self._bar.close()

    def interrupted(self, epoch: int) -> None:
        if self._bar is not None:
            self._bar.close()
        super().interrupted(epoch)


def _interactive(stream: TextIO) -> bool:
    """A terminal or a notebook: where a redrawn bar reads well."""
    return "ipykernel" in sys.modules or (hasattr(stream, "isatty") and stream.isatty())


def make_progress(verbose: int | bool, epochs: int) -> Progress:
    """The progress callback for an estimator's verbose setting (0/False: silent)."""
    if not verbose:
        return Silent()
    if _interactive(sys.stderr):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return EpochLines(epochs)
        return TqdmBars(epochs, tqdm)
    return EpochLines(epochs)
