"""Absurd sizes are refused up front, before any allocation or long loop, with an error naming the
argument: OverflowError when no buffer could hold the parameters, ValueError beyond the documented
layer limit (fastgru._core.MAX_LAYERS), MemoryError when the buffer could exist but not here."""

import numpy as np
import pytest

import fastgru
from fastgru import _core

HUGE = 2**62


@pytest.mark.parametrize(
    "args, name", [((HUGE, 4), "input_size"), ((4, HUGE), "hidden_size"), ((2**70, 4), "input_size")]
)
def test_gru_refuses_sizes_no_buffer_can_hold(args, name):
    with pytest.raises(OverflowError, match=name):
        fastgru.GRU(*args)


def test_core_config_refuses_overflowing_products():
    """The core checks its own products, whatever the Python layer lets through: 3H * I wrapped
    around to a small buffer before."""
    with pytest.raises(OverflowError, match="weight_ih_l0"):
        _core.GruConfig(HUGE, 4)
    with pytest.raises(OverflowError, match="weight_hh_l0"):
        _core.GruConfig(4, 2**31)
    with pytest.raises(OverflowError, match="parameter count"):
        _core.GruConfig(1, 2**29, 2, True)


@pytest.mark.parametrize(
    "make",
    [
        lambda L: fastgru.GRU(4, 8, num_layers=L),
        lambda L: _core.GruConfig(4, 8, L),
        lambda L: fastgru.GRUModel(4, 8, 2, num_layers=L),
    ],
)
def test_layer_count_beyond_the_limit_is_refused_at_once(make):
    for layers in (_core.MAX_LAYERS + 1, 10**9):
        with pytest.raises(ValueError, match="num_layers"):
            make(layers)


def test_the_layer_limit_itself_is_allowed():
    gru = fastgru.GRU(1, 1, num_layers=_core.MAX_LAYERS)
    y, h_n = gru(np.ones((2, 1, 1), np.float32))
    assert y.shape == (2, 1, 1) and h_n.shape == (_core.MAX_LAYERS, 1, 1)


def test_parameters_that_could_exist_but_not_here_raise_memory_error():
    with pytest.raises(MemoryError, match="GRU"):
        fastgru.GRU(2**40, 4)
    with pytest.raises(MemoryError, match="Dense"):
        fastgru.Dense(2**40, 2**10)


@pytest.mark.parametrize(
    "args, match",
    [((HUGE, 4), "in_features"), ((4, HUGE), "out_features"), ((2**40, 2**21), "out_features \\* in_features")],
)
def test_dense_refuses_sizes_no_buffer_can_hold(args, match):
    with pytest.raises(OverflowError, match=match):
        fastgru.Dense(*args)


def test_model_and_estimators_refuse_absurd_sizes():
    with pytest.raises(OverflowError, match="hidden_size"):
        fastgru.GRUModel(4, HUGE, 3)
    with pytest.raises(OverflowError, match=r"output_size|out_features"):
        fastgru.GRUModel(4, 8, HUGE)
    X, y = np.zeros((4, 3, 2), np.float32), np.zeros(4, np.float32)
    with pytest.raises(OverflowError, match="hidden_size"):
        fastgru.GRURegressor(hidden_size=HUGE, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="num_layers"):
        fastgru.GRURegressor(num_layers=10**9, epochs=1).fit(X, y)
