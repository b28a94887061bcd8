"""fastgru's compiled GRU forward and backward as a TensorFlow function: tf.numpy_function under
tf.custom_gradient, in eager and graph (tf.function) mode. XLA cannot call back into Python, so
under jit_compile=True it raises a RuntimeError that says to compile without XLA."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util

from . import _host

Spec = _host.Spec


def _in_xla() -> bool:
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()))


def gru_flat(
    params: tf.Tensor, x: tf.Tensor, h0: tf.Tensor, lengths: tf.Tensor, spec: Spec, keep_workspace: bool = True
) -> tuple[tf.Tensor, tf.Tensor]:
    """fastgru.jax.gru_flat's contract on tf.Tensors: params flat in the core's layout, x (B, T, I),
    h0 (L*D, B, H), lengths (B,) int32. Returns y (B, T, D*H) and h_n (L*D, B, H), differentiable
    in params, x and h0. TensorFlow does not say whether a gradient will be asked for:
    keep_workspace=False (Keras's training=False) runs the forward without one, and a gradient
    asked for all the same runs the forward again first."""
    if _in_xla():
        raise RuntimeError(
            "fastgru.keras.GRU on TensorFlow runs fastgru's core through tf.numpy_function, which "
            "XLA cannot compile: compile the model with jit_compile=False (the default "
            "jit_compile='auto' already chooses it for a model with this layer)"
        )
    config = _host.gru_config(*spec)
    D = 2 if spec[3] else 1
    dtype = x.dtype

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def run(params: tf.Tensor, x: tf.Tensor, h0: tf.Tensor) -> tuple[tuple[tf.Tensor, tf.Tensor], Callable[..., Any]]:
        if keep_workspace:
            y, h_n, token = tf.numpy_function(
                functools.partial(_host.forward_train, config),
                [params, x, h0, lengths],
                [dtype, dtype, tf.int32],
                stateful=True,
            )
        else:
            y, h_n = tf.numpy_function(
                functools.partial(_host.forward, config), [params, x, h0, lengths], [dtype, dtype], stateful=False
            )
            token = tf.constant(0, tf.int32)
        y.set_shape(x.shape[:2].concatenate([D * spec[1]]))
        h_n.set_shape(h0.shape)

        def grad(dy: tf.Tensor | None, dh_n: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            dy = tf.zeros_like(y) if dy is None else dy
            dh_n = tf.zeros_like(h_n) if dh_n is None else dh_n
            dx, dh0, dparams = tf.numpy_function(
                functools.partial(_host.backward, config),
                [token, params, x, h0, lengths, dy, dh_n],
                [dtype, dtype, dtype],
                stateful=True,
            )
            dx.set_shape(x.shape)
            dh0.set_shape(h0.shape)
            dparams.set_shape(params.shape)
            return dparams, dx, dh0

        return (y, h_n), grad

    y, h_n = run(params, x, h0)
    return y, h_n
