"""Test helpers shared by several test modules (fixtures live in conftest.py)."""

import importlib.util
import itertools
import os
import shutil

import numpy as np
import pytest


def require_installed(*packages):
    """Skips the test unless every package is installed, without importing any: keras would load
    its default backend, TensorFlow, into the test process, whose LLVM then aborts the process
    when the newest torch's wheel imports Triton's (torch.compile, torch.optim)."""
    for name in packages:
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")


def numeric_grad(f, a, eps=1e-6):
    """Central finite differences of the scalar f() with respect to every entry of a (perturbed in
    place and restored)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def gru_param_shapes(input_size, hidden_size, num_layers, bidirectional, bias):
    """torch.nn.GRU's parameters as name -> shape, in its order (layer, direction, then weight_ih,
    weight_hh, bias_ih, bias_hh); written independently of fastgru's own layout."""
    D = 2 if bidirectional else 1
    kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if bias else ("weight_ih", "weight_hh")
    shapes = {}
    for k, d in itertools.product(range(num_layers), range(D)):
        in_k = input_size if k == 0 else D * hidden_size
        kind_shapes = {
            "weight_ih": (3 * hidden_size, in_k),
            "weight_hh": (3 * hidden_size, hidden_size),
            "bias_ih": (3 * hidden_size,),
            "bias_hh": (3 * hidden_size,),
        }
        for kind in kinds:
            shapes[f"{kind}_l{k}" + ("_reverse" if d else "")] = kind_shapes[kind]
    return shapes


def skip_or_fail_in_ci(message):
    """Skips the test on a developer machine; fails it when the CI environment variable is set,
    where .ci/run installs everything the tests need, so nothing is skipped there unnoticed."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(tool, why):
    """The path of the program tool; skips (or fails under CI) when it is missing."""
    path = shutil.which(tool)
    if path is None:
        skip_or_fail_in_ci(f"{tool} not found: needed to {why} (Debian: see .ci/run)")
    return path
