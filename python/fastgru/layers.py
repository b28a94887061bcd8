"""fastgru.Dense: a fully connected layer (torch.nn.Linear's names, shapes and initialization),
applied over the last axis, so the same head serves every time step or the last state.

`backend="cpp"` runs cpp/src/dense.cpp, `backend="numpy"` the reference in
fastgru.reference.heads. Parameters live in one flat buffer, like the GRU's, optionally inside a
bigger one (`buffers=`) so a whole model is one buffer for one fused optimizer step.
"""

import numpy as np

from . import _core
from ._checks import FLOAT_DTYPES, as_float_array, as_numeric, check_positive_int, to_dtype_name
from .reference import heads as reference

BACKENDS = ("cpp", "numpy")


class Dense:
    """y = x W^T + b over the last axis of x.

    y = dense(x)                       # x (..., in_features) -> y (..., out_features)
    dx = dense.backward(dy)            # adds into grad; dx (..., in_features)
    """

    def __init__(self, in_features, out_features, *, bias=True, dtype="float32", backend="cpp",
                 seed=None, buffers=None):
        """`buffers`: optional (params, grad) pair of writable contiguous 1-D arrays of size
        `Dense.param_count(...)` for the layer to live in."""
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        self.bias = bool(bias)
        self.dtype = to_dtype_name(dtype)
        self.backend = backend
        size = self.param_count(self.in_features, self.out_features, bias=self.bias)
        np_dtype = FLOAT_DTYPES[self.dtype]
        if buffers is None:
            self._params, self._grad = np.empty(size, np_dtype), np.zeros(size, np_dtype)
        else:
            self._params, self._grad = (check_buffer(b, name, size, np_dtype)
                                        for b, name in zip(buffers, ("buffers[0]", "buffers[1]")))
            self._grad.fill(0)
        # torch.nn.Linear's default: weight and bias uniform in +-1/sqrt(in_features).
        bound = 1.0 / np.sqrt(self.in_features)
        self._params[:] = np.random.default_rng(seed).uniform(-bound, bound, size)
        self._input = None

    @staticmethod
    def param_count(in_features, out_features, *, bias=True):
        """Size of the flat parameter buffer: weight (out, in) then bias (out,)."""
        return out_features * in_features + (out_features if bias else 0)

    @property
    def params(self):
        return self._params

    @property
    def grad(self):
        return self._grad

    def _views(self, flat):
        n = self.out_features * self.in_features
        views = {"weight": flat[:n].reshape(self.out_features, self.in_features)}
        if self.bias:
            views["bias"] = flat[n:]
        return views

    def state_dict(self):
        """{"weight": (out, in), "bias": (out,)}: views into params."""
        return self._views(self._params)

    def grads(self):
        return self._views(self._grad)

    def load_state_dict(self, mapping):
        load_into_views(self.state_dict(), mapping)

    def zero_grad(self):
        self._grad.fill(0)

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """x (..., in_features) -> y (..., out_features). Keeps x for backward."""
        x = as_float_array(x, "x", FLOAT_DTYPES[self.dtype], (None,) * (np.ndim(x) - 1) + (self.in_features,),
                           f"(..., in_features) with in_features = {self.in_features}")
        self._input = x
        w = self.state_dict()
        if self.backend == "numpy":
            return reference.dense_forward(x, w["weight"], w.get("bias"))
        rows = x.reshape(-1, self.in_features)
        y = getattr(_core, f"dense_forward_{self.dtype}")(rows, w["weight"], w.get("bias"))
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy, need_dx=True):
        """dy (..., out_features) -> dx (..., in_features) (None unless need_dx); adds the weight
        and bias gradients into grad."""
        if self._input is None:
            raise RuntimeError("backward: no forward to differentiate (call forward first)")
        x = self._input
        dy = as_float_array(dy, "dy", FLOAT_DTYPES[self.dtype], x.shape[:-1] + (self.out_features,),
                            f"(..., out_features) = {x.shape[:-1] + (self.out_features,)}")
        w, g = self.state_dict(), self.grads()
        if self.backend == "numpy":
            dx, dw, db = reference.dense_backward(x, w["weight"], dy)
            g["weight"] += dw
            if self.bias:
                g["bias"] += db
            return dx if need_dx else None
        dx = getattr(_core, f"dense_backward_{self.dtype}")(
            x.reshape(-1, self.in_features), w["weight"], dy.reshape(-1, self.out_features),
            g["weight"], g.get("bias"), need_dx)
        return None if dx is None else dx.reshape(x.shape)

    def __repr__(self):
        return (f"Dense({self.in_features}, {self.out_features}, bias={self.bias}, dtype={self.dtype!r}, "
                f"backend={self.backend!r})")


def check_buffer(buf, name, size, dtype):
    """buf if it is a writable contiguous 1-D array of `size` elements of dtype, else ValueError."""
    if not isinstance(buf, np.ndarray) or buf.dtype != dtype or buf.ndim != 1 or buf.size != size \
            or not buf.flags.c_contiguous or not buf.flags.writeable:
        raise ValueError(f"{name}: expected a writable contiguous 1-D {np.dtype(dtype).name} array "
                         f"of size {size}")
    return buf


def load_into_views(views, mapping):
    """Copies mapping[name] into every views[name]; all keys and shapes are checked before any
    value is written, so a bad mapping leaves the weights unchanged."""
    missing = sorted(set(views) - set(mapping))
    extra = sorted(set(mapping) - set(views))
    if missing or extra:
        raise ValueError(f"load_state_dict: missing keys {missing}, unexpected keys {extra}")
    converted = {}
    for name, view in views.items():
        value = as_numeric(mapping[name], f"state_dict['{name}']")
        if value.shape != view.shape:
            raise ValueError(f"state_dict['{name}']: expected shape {view.shape}, got {value.shape}")
        converted[name] = value
    for name, value in converted.items():
        views[name][...] = value
