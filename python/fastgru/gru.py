"""fastgru.GRU: a multi-layer, optionally bidirectional GRU layer with explicit backward.

Parameters live in one flat buffer (`params`) with torch.nn.GRU's names, shapes and gate order;
`backend="cpp"` runs the compiled core, `backend="numpy"` the reference in fastgru.reference.
"""

import numpy as np

from . import _core
from ._backends import NUMPY as reference, check_backend
from ._checks import FLOAT_DTYPES, as_float_array, check_positive_int, is_float_array, to_dtype_name
from ._flat import FlatParameters

# The compiled entries per dtype, looked up once per layer.
_CORE = {"float32": (_core.gru_forward_float32, _core.gru_backward_float32, _core.gru_step_float32),
         "float64": (_core.gru_forward_float64, _core.gru_backward_float64, _core.gru_step_float64)}


class GRU(FlatParameters):
    """GRU layer; see the README for the full contract.

    y, h_n = layer(x, h0=None, lengths=None)
    dx, dh0 = layer.backward(dy, dh_n=None)
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False,
                 bidirectional=False, dropout=0.0, reset_after=True, dtype="float32", backend="cpp",
                 seed=None, buffers=None):
        """`buffers`: optional (params, grad) pair of writable contiguous 1-D arrays of size
        `GRU.param_count(...)` for the layer to live in (a model keeping all its parameters in one buffer)."""
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.num_layers = check_positive_int(num_layers, "num_layers")
        if not isinstance(dropout, (int, float, np.floating, np.integer)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")
        self.backend = check_backend(backend)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.reset_after = bool(reset_after)
        self.dropout = float(dropout)
        self.dtype = to_dtype_name(dtype)
        self._core_forward, self._core_backward, self._core_step = _CORE[self.dtype]
        self.config = _core.GruConfig(self.input_size, self.hidden_size, self.num_layers,
                                      self.bidirectional, self.bias, self.reset_after)
        self._layout = _core.gru_param_layout(self.config)
        size = _core.gru_param_count(self.config)
        super().__init__(size, FLOAT_DTYPES[self.dtype], buffers)
        self._rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        self._params[:] = self._rng.uniform(-bound, bound, size)

    @staticmethod
    def param_count(input_size, hidden_size, num_layers=1, *, bias=True, bidirectional=False):
        """Size of the flat parameter buffer of a GRU with these options."""
        return _core.gru_param_count(_core.GruConfig(input_size, hidden_size, num_layers,
                                                     bidirectional, bias, True))

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    # -- computation ------------------------------------------------------------------------
    def __call__(self, x, h0=None, lengths=None):
        return self.forward(x, h0, lengths)

    def forward(self, x, h0=None, lengths=None, *, dropout_masks=None):
        """x (T, B, I) or (B, T, I) when batch_first; h0 (L*D, B, H); lengths (B,) ints in 1..T.
        In training mode with dropout between layers, the multipliers of the inputs of layers 1..
        are drawn from the layer's seed, or given as dropout_masks (L-1, T, B, D*H) (time-major)."""
        dtype = FLOAT_DTYPES[self.dtype]
        x_text = "(B, T, I)" if self.batch_first else "(T, B, I)"
        x = as_float_array(x, "x", dtype, (None, None, self.input_size),
                           f"{x_text} with I = {self.input_size}")
        if self.batch_first:
            x = np.ascontiguousarray(x.transpose(1, 0, 2))
        T, B = x.shape[:2]
        if T == 0 or B == 0:
            raise ValueError(f"x: expected shape {x_text} with T >= 1 and B >= 1, got {x.shape}")
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        if h0 is not None:
            h0 = as_float_array(h0, "h0", dtype, (LD, B, H), f"(L*D, B, H) = ({LD}, {B}, {H})")
        if lengths is not None:
            lengths = check_lengths(lengths, T, B)
        if not self.training:
            masks = None
        elif dropout_masks is None:
            masks = self._dropout_masks(T, B)
        else:
            masks = as_float_array(
                dropout_masks, "dropout_masks", dtype, (self.num_layers - 1, T, B, self.num_directions * H),
                f"(L-1, T, B, D*H) = ({self.num_layers - 1}, {T}, {B}, {self.num_directions * H})")

        if self.backend == "cpp":
            dropout = None if masks is None else np.ascontiguousarray(masks)
            y, h_n, cache = self._core_forward(self.config, self._params, x, h0, lengths, dropout, self.training)
        else:
            y, h_n, cache = reference.gru_forward(
                self.state_dict(), x, np.zeros((LD, B, H), dtype) if h0 is None else h0,
                np.full(B, T) if lengths is None else lengths, num_layers=self.num_layers,
                bidirectional=self.bidirectional, reset_after=self.reset_after,
                dropout_masks=masks, keep_cache=self.training)
        self._cache = (cache, x.shape) if self.training else None
        if self.batch_first:
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return y, h_n

    def step(self, x_t, h=None):
        """One time step, for inference on a stream: x_t (B, I), h (L, B, H) or None for zeros.
        Returns (y_t (B, H), h_new (L, B, H)); feeding h_new back in step after step gives what
        forward gives for the whole sequence. Unidirectional layers only (a reverse direction
        needs the whole sequence); never applies dropout and keeps nothing for backward. The
        compiled step reads the weights in place, so changes to params apply at the next step."""
        if self.bidirectional:
            raise ValueError("step: a bidirectional GRU needs the whole sequence (its reverse direction starts "
                             "at the end); use forward")
        dtype, L, H = FLOAT_DTYPES[self.dtype], self.num_layers, self.hidden_size
        if not is_float_array(x_t, dtype, (None, self.input_size)):
            x_t = as_float_array(x_t, "x_t", dtype, (None, self.input_size), f"(B, I) with I = {self.input_size}")
        B = x_t.shape[0]
        if B == 0:
            raise ValueError(f"x_t: expected shape (B, I) with B >= 1, got {x_t.shape}")
        if h is None:
            h = np.zeros((L, B, H), dtype)
        elif not is_float_array(h, dtype, (L, B, H)):
            h = as_float_array(h, "h", dtype, (L, B, H), f"(L, B, H) = ({L}, {B}, {H})")
        if self.backend == "cpp":
            return self._core_step(self.config, self._params, x_t, h)
        y, h_new, _ = reference.gru_forward(self.state_dict(), x_t[None], h, np.ones(B, np.int64),
                                            num_layers=L, bidirectional=False, reset_after=self.reset_after,
                                            dropout_masks=None, keep_cache=False)
        return y[0], h_new

    def backward(self, dy, dh_n=None):
        """Gradients through the last training-mode forward: returns (dx, dh0) and adds the
        parameter gradients into grad."""
        if self._cache is None:
            raise RuntimeError("backward: no training-mode forward to differentiate "
                               "(call forward in training mode first)")
        cache, (T, B, I) = self._cache
        dtype = FLOAT_DTYPES[self.dtype]
        DH, LD, H = self.num_directions * self.hidden_size, self.num_layers * self.num_directions, self.hidden_size
        if self.batch_first:
            dy = as_float_array(dy, "dy", dtype, (B, T, DH), f"(B, T, D*H) = ({B}, {T}, {DH})")
            dy = np.ascontiguousarray(dy.transpose(1, 0, 2))
        else:
            dy = as_float_array(dy, "dy", dtype, (T, B, DH), f"(T, B, D*H) = ({T}, {B}, {DH})")
        if dh_n is not None:
            dh_n = as_float_array(dh_n, "dh_n", dtype, (LD, B, H), f"(L*D, B, H) = ({LD}, {B}, {H})")

        if self.backend == "cpp":
            dx, dh0 = self._core_backward(cache, self._params, dy, self._grad, dh_n)
        else:
            dx, dh0, grads = reference.gru_backward(
                self.state_dict(), cache, dy, np.zeros((LD, B, H), dtype) if dh_n is None else dh_n,
                num_layers=self.num_layers, bidirectional=self.bidirectional, reset_after=self.reset_after)
            views = self.grads()
            for name, g in grads.items():
                views[name] += g
        if self.batch_first:
            dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
        return dx, dh0

    def _dropout_masks(self, T, B):
        """Multipliers (0 or 1/(1-p)) for the inputs of layers 1.. (L-1, T, B, D*H), drawn from the
        layer's seed; None without dropout."""
        if self.dropout == 0.0 or self.num_layers == 1:
            return None
        keep = 1.0 - self.dropout
        shape = (T, B, self.num_directions * self.hidden_size)
        return np.stack([((self._rng.random(shape) < keep) / keep).astype(self.dtype)
                         for _ in range(self.num_layers - 1)])

    def __repr__(self):
        return (f"GRU({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}, bidirectional={self.bidirectional}, "
                f"dropout={self.dropout}, reset_after={self.reset_after}, dtype={self.dtype!r}, "
                f"backend={self.backend!r})")


def check_lengths(lengths, T, B):
    """lengths as a contiguous int64 (B,) array with every entry in 1..T, else TypeError/ValueError."""
    arr = np.asarray(lengths)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths: expected integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths: expected shape (B,) = ({B},), got {arr.shape}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(f"lengths: every length must be in 1..T = 1..{T}, got min {arr.min()}, max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)
