"""Sequence classification on real data: scikit-learn's handwritten digits (1797 8x8 images,
shipped with scikit-learn, no download), each read as a sequence of 8 rows of 8 pixels.
Prints the test accuracy and training time, and the same for an identical PyTorch model when
torch is installed.

    pip install scikit-learn        # torch too, for the comparison
    python examples/classify_digits.py [--epochs 30]
"""

import sys
import time

import numpy as np

try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ModuleNotFoundError:
    sys.exit(
        "classify_digits.py needs scikit-learn (its digits data set and train/test split): pip install scikit-learn"
    )

from torch_baseline import parse_example_args, torch_skip_reason, train_and_predict

import fastgru


def main():
    args, opts = parse_example_args(__doc__, epochs=30, hidden=64)

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)  # (1797, 8 steps, 8 features) in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    print(
        f"digits: {len(X_train)} training and {len(X_test)} test sequences of 8 steps x 8 features, "
        f"10 classes; {args.epochs} epochs, hidden size {args.hidden}, {fastgru.get_num_threads()} threads"
    )

    clf = fastgru.GRUClassifier(random_state=0, **opts)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    ours = time.perf_counter() - start
    print(f"fastgru  test accuracy {clf.score(X_test, y_test):.4f}, training {ours:.2f} s")

    skip_reason = torch_skip_reason(args)
    if skip_reason:
        print(f"PyTorch comparison skipped: {skip_reason}")
        return
    logits, theirs = train_and_predict(X_train, y_train, X_test, outputs=10, loss="cross_entropy", **opts)
    accuracy = float((logits.argmax(1) == y_test).mean())
    print(
        f"PyTorch  test accuracy {accuracy:.4f}, training {theirs:.2f} s "
        f"(PyTorch time / fastgru time = {theirs / ours:.2f})"
    )


if __name__ == "__main__":
    main()
