"""Progress of fit, as the training loop's callback (fastgru.training.train):
start_epoch(epoch, n_batches), batch_done(mean_loss_so_far), end_epoch(epoch, loss, val_loss,
seconds), interrupted(epoch).

verbose=1 shows a tqdm bar per epoch on a terminal (or in a notebook) when tqdm is installed;
otherwise (output redirected to a log, or no tqdm) one plain line per epoch, so a log gets no
carriage returns and each epoch once.
"""

import sys


class Silent:
    def start_epoch(self, epoch, n_batches):
        pass

    def batch_done(self, mean_loss):
        pass

    def end_epoch(self, epoch, loss, val_loss, seconds):
        pass

    def interrupted(self, epoch):
        pass


class EpochLines(Silent):
    """One line per epoch on stdout: "epoch 3/10 - loss 0.1234 - val_loss 0.2345 - 0.52s"."""

    def __init__(self, epochs):
        self.epochs = epochs

    def end_epoch(self, epoch, loss, val_loss, seconds):
        val = "" if val_loss is None else f" - val_loss {val_loss:.4g}"
        print(f"epoch {epoch}/{self.epochs} - loss {loss:.4g}{val} - {seconds:.2f}s", flush=True)

    def interrupted(self, epoch):
        print(f"fit interrupted during epoch {epoch}; keeping the weights of the last finished step",
              file=sys.stderr)


class TqdmBars(EpochLines):
    """A tqdm bar per epoch with the running loss; the finished bar shows the epoch's losses."""

    def __init__(self, epochs, tqdm):
        super().__init__(epochs)
        self._tqdm, self._bar = tqdm, None

    def start_epoch(self, epoch, n_batches):
        self._bar = self._tqdm(total=n_batches, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=True)

    def batch_done(self, mean_loss):
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{mean_loss:.4g}", refresh=False)

    def end_epoch(self, epoch, loss, val_loss, seconds):
        val = "" if val_loss is None else f", val_loss={val_loss:.4g}"
        self._bar.set_postfix_str(f"loss={loss:.4g}{val}", refresh=False)
        self._bar.close()

    def interrupted(self, epoch):
        if self._bar is not None:
            self._bar.close()
        super().interrupted(epoch)


def _interactive(stream):
    """A terminal or a notebook: where a redrawn bar reads well."""
    return "ipykernel" in sys.modules or (hasattr(stream, "isatty") and stream.isatty())


def make_progress(verbose, epochs):
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
