"""Shared fixtures: a seeded generator, and guards that restore the global thread count and ISA."""

import os

import numpy as np
import pytest

import fastgru


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test sees the same data on every run."""
    return np.random.default_rng(20240607)


@pytest.fixture
def restore_threads():
    """Lets a test call fastgru.set_num_threads freely; the previous count comes back afterwards."""
    before = fastgru.get_num_threads()
    yield
    fastgru.set_num_threads(before)


@pytest.fixture
def restore_isa():
    """Lets a test call fastgru.set_isa freely; the previous instruction set comes back afterwards."""
    before = fastgru.active_isa()
    yield
    fastgru.set_isa(before)


@pytest.fixture(params=fastgru.available_isas())
def isa(request, restore_isa):
    """Runs the test once per instruction set this build and CPU support, with that ISA active."""
    fastgru.set_isa(request.param)
    assert fastgru.active_isa() == request.param
    return request.param


@pytest.fixture
def torch():
    """torch (the test is skipped without it), on one thread for the test's duration: the tests'
    sizes are tiny, and torch's thread team only slows them down on a busy two-core machine."""
    if os.environ.get("FASTGRU_SANITIZED"):
        pytest.skip("torch is not loaded into the sanitized process (tests/test_cpp_core.py)")
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)
