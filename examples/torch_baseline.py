"""The examples' PyTorch baseline: the same network as fastgru's estimators (GRU, last state or
every step, Linear head), the same loss, Adam, epochs, batch size and shuffling, trained with a
plain PyTorch loop. A helper module of forecast_co2.py and classify_digits.py, used only when
torch is installed; run directly, it says so."""

import argparse
import importlib.util
import time

import numpy as np


def parse_example_args(doc, epochs, hidden):
    """The examples' shared command line: (args, the estimator options both systems train with)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--hidden", type=int, default=hidden)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args()
    return args, dict(hidden_size=args.hidden, epochs=args.epochs, batch_size=32, lr=3e-3)


def torch_skip_reason(args):
    """Why the PyTorch comparison does not run (printed by the examples), or None when it runs."""
    if args.no_torch:
        return "--no-torch was given"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install torch)"
    return None


def train_and_predict(
    X_train, y_train, X_test, *, hidden_size, outputs, loss, epochs, batch_size, lr, seed=0, num_layers=1
):
    """Trains on X_train (N, T, F), y_train ((N, O) floats, or (N,) class indices for
    loss="cross_entropy"); returns (outputs on X_test (logits for cross_entropy), seconds of
    training)."""
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(X_train.shape[2], hidden_size, num_layers, batch_first=True)
            self.head = torch.nn.Linear(hidden_size, outputs)

        def forward(self, x):
            _, h_n = self.gru(x)
            return self.head(h_n[-1])

    net = Net()
    criterion = {"mse": torch.nn.MSELoss(), "cross_entropy": torch.nn.CrossEntropyLoss()}[loss]
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    X = torch.from_numpy(np.ascontiguousarray(X_train, np.float32))
    y = torch.from_numpy(y_train.astype(np.int64 if loss == "cross_entropy" else np.float32))
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X))
        for s in range(0, len(X), batch_size):
            idx = order[s : s + batch_size]
            optimizer.zero_grad()
            criterion(net(X[idx]), y[idx]).backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(X_test, np.float32))).numpy()
    return out, seconds


if __name__ == "__main__":
    print(
        "torch_baseline.py is a helper module: forecast_co2.py and classify_digits.py import it to "
        "train the same model in PyTorch. Run one of those, e.g. python examples/forecast_co2.py"
    )
