"""fastgru.Dense: a fully connected layer (torch.nn.Linear's names, shapes and initialization),
applied over the last axis, so the same head serves every time step or the last state.

`backend="cpp"` runs cpp/src/dense.cpp, `backend="numpy"` the reference in
fastgru.reference.heads. Parameters live in one flat buffer, like the GRU's, optionally inside a
bigger one (`buffers=`) so a whole model is one buffer for one fused optimizer step.
"""

import numpy as np
import numpy.typing as npt

from . import _core
from ._backends import NUMPY as reference
from ._backends import check_backend
from ._checks import (
    FLOAT_DTYPES,
    as_float_array,
    as_numeric,
    check_element_count,
    check_size,
    core_entry,
    to_dtype_name,
)
from ._flat import FlatParameters, layout_end
from ._typing import FloatArray


class Dense(FlatParameters):
    """y = x W^T + b over the last axis of x: torch.nn.Linear's names, shapes and initialization.

    dense = Dense(in_features, out_features, *, bias=True, dtype="float32", backend="cpp",
                  seed=None, buffers=None)
    y = dense(x)                       # x (..., in_features) -> y (..., out_features)
    dx = dense.backward(dy)            # dy (..., out_features) -> dx (..., in_features); adds into grad

    in_features, out_features: ints >= 1. dtype: "float32" or "float64"; inputs are converted.
    backend: "cpp" (the compiled core) or "numpy" (the reference fastgru.reference.heads).
    seed: weight and bias start uniform in +-1/sqrt(in_features), from np.random.default_rng(seed).
    buffers: None, or a (params, grad) pair of writable contiguous 1-D arrays of this dtype and
        size Dense.param_count(...) for the layer to live in.
    state_dict() / grads(): views named weight (out_features, in_features) and bias
    (out_features,) into the flat params / grad buffers; load_state_dict() copies array-likes in.
    backward(dy, need_dx=False) skips dx (returns None). Errors: TypeError for a size that is not
    an int or an input that is not real numbers; ValueError naming the argument and the expected
    shape; RuntimeError for backward before any forward.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        dtype: npt.DTypeLike = "float32",
        backend: str = "cpp",
        seed: int | np.random.SeedSequence | None = None,
        buffers: tuple[FloatArray, FloatArray] | None = None,
    ) -> None:
        """`buffers`: optional (params, grad) pair of writable contiguous 1-D arrays of size
        `Dense.param_count(...)` for the layer to live in."""
        self.in_features = check_size(in_features, "in_features")
        self.out_features = check_size(out_features, "out_features")
        self.backend = check_backend(backend)
        self.bias = bool(bias)
        self.dtype = to_dtype_name(dtype)
        self._core_forward, self._core_backward = (
            core_entry(f"dense_{d}", self.dtype) for d in ("forward", "backward")
        )
        self._layout = _core.dense_param_layout(self.in_features, self.out_features, self.bias)
        size = self.param_count(self.in_features, self.out_features, bias=self.bias)
        super().__init__(size, FLOAT_DTYPES[self.dtype], buffers)
        # torch.nn.Linear's default: weight and bias uniform in +-1/sqrt(in_features).
        bound = 1.0 / np.sqrt(self.in_features)
        self._params[:] = np.random.default_rng(seed).uniform(-bound, bound, size)

    @staticmethod
    def param_count(in_features: int, out_features: int, *, bias: bool = True) -> int:
        """Size of the flat parameter buffer: weight (out, in) then bias (out,)."""
        rows, cols = check_size(out_features, "out_features"), check_size(in_features, "in_features")
        return check_element_count(
            layout_end(_core.dense_param_layout(cols, rows, bool(bias))),
            "Dense parameters (out_features * in_features + out_features)",
        )

    def __call__(self, x: npt.ArrayLike) -> FloatArray:
        return self.forward(x)

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        """x (..., in_features) -> y (..., out_features). Keeps x for backward (in either mode)."""
        values = as_numeric(x, "x")  # first: np.ndim of a ragged list would raise NumPy's unnamed error
        xs = as_float_array(
            values,
            "x",
            FLOAT_DTYPES[self.dtype],
            (None,) * (values.ndim - 1) + (self.in_features,),
            f"(..., in_features) with in_features = {self.in_features}",
        )
        self._cache = xs
        w = self.state_dict()
        if self.backend == "numpy":
            return reference.dense_forward(xs, w["weight"], w.get("bias"))
        rows = xs.reshape(-1, self.in_features)
        y: FloatArray = self._core_forward(rows, w["weight"], w.get("bias"))
        return y.reshape(xs.shape[:-1] + (self.out_features,))

    def backward(self, dy: npt.ArrayLike, need_dx: bool = True) -> FloatArray | None:
        """dy (..., out_features) -> dx (..., in_features) (None unless need_dx); adds the weight
        and bias gradients into grad."""
        self._check_trainable("backward")
        if self._cache is None:
            raise RuntimeError("backward: no forward to differentiate (call forward first)")
        x: FloatArray = self._cache
        dys = as_float_array(
            dy,
            "dy",
            FLOAT_DTYPES[self.dtype],
            x.shape[:-1] + (self.out_features,),
            f"(..., out_features) = {x.shape[:-1] + (self.out_features,)}",
        )
        w, g = self.state_dict(), self.grads()
        dx: FloatArray | None
        if self.backend == "numpy":
            dx, dw, db = reference.dense_backward(x, w["weight"], dys)
            g["weight"] += dw
            if self.bias:
                g["bias"] += db
            return dx if need_dx else None
        dx = self._core_backward(
            x.reshape(-1, self.in_features),
            w["weight"],
            dys.reshape(-1, self.out_features),
            g["weight"],
            g.get("bias"),
            need_dx,
        )
        return None if dx is None else dx.reshape(x.shape)

    def __repr__(self) -> str:
        return (
            f"Dense({self.in_features}, {self.out_features}, bias={self.bias}, dtype={self.dtype!r}, "
            f"backend={self.backend!r})"
        )
