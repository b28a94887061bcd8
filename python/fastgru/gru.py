"""fastgru.GRU: a multi-layer, optionally bidirectional GRU layer with explicit backward.

Parameters live in one flat buffer (`params`) with torch.nn.GRU's names, shapes and gate order;
`backend="cpp"` runs the compiled core, `backend="numpy"` the reference in fastgru.reference.
"""

from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from . import _core
from ._backends import NUMPY as reference
from ._backends import check_backend
from ._checks import (
    FLOAT_DTYPES,
    as_float_array,
    check_compute_dtype,
    check_positive_int,
    check_size,
    core_entry,
    is_float_array,
    to_dtype_name,
)
from ._flat import FlatParameters
from ._typing import FloatArray, IntArray


class GRU(FlatParameters):
    """A multi-layer, optionally bidirectional GRU with explicit backward: the computation,
    parameter names, shapes and gate order (r, z, n) of torch.nn.GRU.

    layer = GRU(input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False,
                bidirectional=False, dropout=0.0, reset_after=True, dtype="float32",
                compute_dtype="float32", backend="cpp", seed=None, buffers=None)

    input_size I, hidden_size H, num_layers L: ints >= 1; D = 2 if bidirectional else 1.
    bias: with the b_ih and b_hh vectors. batch_first: x and y are (B, T, ...), not (T, B, ...).
    dropout: in [0, 1); in training mode each input of layers 2..L is zeroed with this probability
        and the rest scaled by 1/(1 - dropout), as in torch.nn.GRU (masks drawn from `seed`).
    reset_after: True is PyTorch's, cuDNN's and Keras' default; False is Cho et al. 2014 (Keras
        reset_after=False, ONNX linear_before_reset=0). See the equations below.
    dtype: "float32" or "float64" (or a NumPy dtype); inputs are converted to it.
    compute_dtype: "float32" (the default) or "bfloat16" (with dtype="float32" only): every
        product, forward and backward (input projection, recurrent product, the gradients' products),
        takes its operands rounded to bfloat16 (round to nearest even) and accumulates in float32;
        parameters, gradients, states, outputs and the gate math stay in dtype (the semantics of
        torch.autocast and of Keras' mixed_bfloat16). Relative error against float32: about 1e-3
        to 1e-2 on outputs and gradients.
    backend: "cpp" runs the compiled core, "numpy" the reference in fastgru.reference.gru.
    seed: weights start uniform in +-1/sqrt(H) (torch.nn.GRU's rule) from np.random.default_rng(seed).
    buffers: None, or a (params, grad) pair of writable contiguous 1-D arrays of this dtype and
        size GRU.param_count(...) for the layer to live in (a model keeping all its parameters in
        one buffer).

    Forward, y, h_n = layer(x, h0=None, lengths=None):
        x        (T, B, I), or (B, T, I) when batch_first; any real array-like, torch tensors too
        h0       (L*D, B, H) initial states (zeros when None)
        lengths  (B,) ints in 1..T: steps t >= lengths[b] are padding (output 0, state unchanged),
                 and the reverse direction starts at lengths[b] - 1 (PyTorch's packed sequences)
        y        (T, B, D*H), or (B, T, D*H) when batch_first: the last layer's outputs, the
                 forward direction's first
        h_n      (L*D, B, H) final states, layer by layer, forward direction first
    In training mode (the default; layer.train(), layer.eval()) forward keeps what backward needs.

    Backward, dx, dh0 = layer.backward(dy, dh_n=None): dy shaped as y, dh_n as h_n (zeros when
    None); returns dx shaped as x and dh0 (L*D, B, H), and adds the parameter gradients into
    layer.grad (layer.zero_grad() clears it). backward(..., input_grad=False) returns (None, dh0)
    and skips dx's product (a layer fed with data: a sixth of the backward's arithmetic at I = H/2).

    Parameters: layer.params and layer.grad are flat 1-D buffers; layer.state_dict() and
    layer.grads() are dicts of views into them, in torch.nn.GRU's order: weight_ih_l{k} (3H, I
    for k = 0, D*H above), weight_hh_l{k} (3H, H), bias_ih_l{k} and bias_hh_l{k} (3H,), with a
    `_reverse` suffix for the backward direction. layer.load_state_dict(mapping) copies any
    array-likes in (torch_gru.state_dict() included), checking every key and shape first.

    Equations, per layer, direction and step (rows of weight_ih/weight_hh in gate order r, z, n):
        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))     reset_after=True
        n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)     reset_after=False
        h' = (1 - z) * n + z * h

    Errors: TypeError for a size that is not an int or an input that is not real numbers;
    ValueError naming the argument and the expected shape for a wrong shape, a length outside
    1..T, an unknown dtype or backend, or dropout outside [0, 1); RuntimeError for backward
    without a training-mode forward. Results are bit-identical for any thread count.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = False,
        bidirectional: bool = False,
        dropout: float = 0.0,
        reset_after: bool = True,
        dtype: npt.DTypeLike = "float32",
        compute_dtype: str = "float32",
        backend: str = "cpp",
        seed: int | np.random.SeedSequence | None = None,
        buffers: tuple[FloatArray, FloatArray] | None = None,
    ) -> None:
        """`buffers`: optional (params, grad) pair of writable contiguous 1-D arrays of size
        `GRU.param_count(...)` for the layer to live in (a model keeping all its parameters in one buffer)."""
        dtype_name = to_dtype_name(dtype)
        compute_dtype = check_compute_dtype(compute_dtype, dtype_name)
        self.config = gru_config(input_size, hidden_size, num_layers, bidirectional, bias, reset_after, compute_dtype)
        self.input_size, self.hidden_size, self.num_layers = (
            self.config.input_size,
            self.config.hidden_size,
            self.config.num_layers,
        )
        if not isinstance(dropout, (int, float, np.floating, np.integer)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")
        self.backend = check_backend(backend)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.reset_after = bool(reset_after)
        self.dropout = float(dropout)
        self.dtype = dtype_name
        self.compute_dtype = compute_dtype
        self._core_forward, self._core_backward, self._core_step = (
            core_entry(f"gru_{d}", self.dtype) for d in ("forward", "backward", "step")
        )
        self._layout = _core.gru_param_layout(self.config)
        size = _core.gru_param_count(self.config)
        super().__init__(size, FLOAT_DTYPES[self.dtype], buffers)
        self._rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        self._params[:] = self._rng.uniform(-bound, bound, size)

    @staticmethod
    def param_count(
        input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True, bidirectional: bool = False
    ) -> int:
        """Size of the flat parameter buffer of a GRU with these options."""
        return _core.gru_param_count(
            gru_config(input_size, hidden_size, num_layers, bidirectional, bias, True, "float32")
        )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    # -- computation ------------------------------------------------------------------------
    def __call__(
        self, x: npt.ArrayLike, h0: npt.ArrayLike | None = None, lengths: npt.ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray]:
        return self.forward(x, h0, lengths)

    def forward(
        self,
        x: npt.ArrayLike,
        h0: npt.ArrayLike | None = None,
        lengths: npt.ArrayLike | None = None,
        *,
        dropout_masks: npt.ArrayLike | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """x (T, B, I) or (B, T, I) when batch_first; h0 (L*D, B, H); lengths (B,) ints in 1..T.
        In training mode with dropout between layers, the multipliers of the inputs of layers 1..
        are drawn from the layer's seed, or given as dropout_masks (L-1, T, B, D*H) (time-major)."""
        dtype = FLOAT_DTYPES[self.dtype]
        x_text = "(B, T, I)" if self.batch_first else "(T, B, I)"
        xs = as_float_array(x, "x", dtype, (None, None, self.input_size), f"{x_text} with I = {self.input_size}")
        if self.batch_first:
            xs = np.ascontiguousarray(xs.transpose(1, 0, 2))
        T, B = xs.shape[:2]
        if T == 0 or B == 0:
            raise ValueError(f"x: expected shape {x_text} with T >= 1 and B >= 1, got {xs.shape}")
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        h_0 = None if h0 is None else as_float_array(h0, "h0", dtype, (LD, B, H), f"(L*D, B, H) = ({LD}, {B}, {H})")
        lens = None if lengths is None else check_lengths(lengths, T, B)
        masks: FloatArray | None
        if not self.training:
            masks = None
        elif dropout_masks is None:
            masks = self._dropout_masks(T, B)
        else:
            masks = as_float_array(
                dropout_masks,
                "dropout_masks",
                dtype,
                (self.num_layers - 1, T, B, self.num_directions * H),
                f"(L-1, T, B, D*H) = ({self.num_layers - 1}, {T}, {B}, {self.num_directions * H})",
            )

        workspace = self._workspace(T, B) if self.training and self.backend == "cpp" else None
        self._cache = None  # the last step's cache is freed before this one is built, not after
        y: FloatArray
        h_n: FloatArray
        cache: Any
        if self.quantization is not None and self.training:
            self._check_trainable("forward in training mode")
        if self.backend == "cpp" and self.quantization is not None:  # the int8 step's steps
            forward_int8 = core_entry("gru_forward_int8", self.dtype)
            y, h_n = forward_int8(self.config, *self._int8_kernel_args(), self._params, xs, h_0, lens)
            cache = None
        elif self.backend == "cpp":
            dropout = None if masks is None else np.ascontiguousarray(masks)
            y, h_n = self._core_forward(self.config, self._params, xs, h_0, lens, dropout, workspace)
            cache = (workspace, lens, dropout)
        else:
            if self.training:  # the reference's cache keeps x and h0: not the caller's arrays, which may change
                xs, h_0 = xs.copy(), None if h_0 is None else h_0.copy()
            y, h_n, cache = reference.gru_forward(
                self._reference_params(),
                xs,
                np.zeros((LD, B, H), dtype) if h_0 is None else h_0,
                np.full(B, T) if lens is None else lens,
                num_layers=self.num_layers,
                bidirectional=self.bidirectional,
                reset_after=self.reset_after,
                dropout_masks=masks,
                keep_cache=self.training,
                compute_dtype=self.compute_dtype,
            )
        self._cache = (cache, xs.shape) if self.training else None
        if self.batch_first:
            y = np.ascontiguousarray(y.transpose(1, 0, 2))
        return y, h_n

    def step(self, x_t: npt.ArrayLike, h: npt.ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
        """One time step, for inference on a stream: x_t (B, I), h (L, B, H) or None for zeros.
        Returns (y_t (B, H), h_new (L, B, H)); feeding h_new back in step after step gives what
        forward gives for the whole sequence. Unidirectional layers only (a reverse direction
        needs the whole sequence); never applies dropout and keeps nothing for backward. The
        compiled step reads the weights in place, so changes to params apply at the next step."""
        if self.bidirectional:
            raise ValueError(
                "step: a bidirectional GRU needs the whole sequence (its reverse direction starts "
                "at the end); use forward"
            )
        dtype, L, H, I = FLOAT_DTYPES[self.dtype], self.num_layers, self.hidden_size, self.input_size
        # Per step: ready arrays pass is_float_array's quick test and no error text is built.
        x = (
            x_t
            if is_float_array(x_t, dtype, (None, I))
            else as_float_array(x_t, "x_t", dtype, (None, I), f"(B, I) with I = {I}")
        )
        B = x.shape[0]
        if B == 0:
            raise ValueError(f"x_t: expected shape (B, I) with B >= 1, got {x.shape}")
        if h is None:
            state = np.zeros((L, B, H), dtype)
        elif is_float_array(h, dtype, (L, B, H)):
            state = h
        else:
            state = as_float_array(h, "h", dtype, (L, B, H), f"(L, B, H) = ({L}, {B}, {H})")
        result: tuple[FloatArray, FloatArray]
        if self.backend == "cpp":
            if self.quantization is not None:  # the packed int8 weights: a quarter of the bytes
                step_int8 = core_entry("gru_step_int8", self.dtype)
                result = step_int8(self.config, *self._int8_kernel_args(), self._params, x, state)
            else:
                result = self._core_step(self.config, self._params, x, state)
            return result
        y, h_new, _ = reference.gru_forward(
            self._reference_params(),
            x[None],
            state,
            np.ones(B, np.int64),
            num_layers=L,
            bidirectional=False,
            reset_after=self.reset_after,
            dropout_masks=None,
            keep_cache=False,
            compute_dtype=self.compute_dtype,
        )
        return y[0], h_new

    @overload
    def backward(
        self, dy: npt.ArrayLike, dh_n: npt.ArrayLike | None = None, *, input_grad: Literal[True] = True
    ) -> tuple[FloatArray, FloatArray]: ...
    @overload
    def backward(
        self, dy: npt.ArrayLike, dh_n: npt.ArrayLike | None = None, *, input_grad: Literal[False]
    ) -> tuple[None, FloatArray]: ...
    @overload
    def backward(
        self, dy: npt.ArrayLike, dh_n: npt.ArrayLike | None = None, *, input_grad: bool
    ) -> tuple[FloatArray | None, FloatArray]: ...

    def backward(
        self, dy: npt.ArrayLike, dh_n: npt.ArrayLike | None = None, *, input_grad: bool = True
    ) -> tuple[FloatArray | None, FloatArray]:
        """Gradients through the last training-mode forward: returns (dx, dh0) and adds the
        parameter gradients into grad; input_grad=False: dx is None, its product skipped."""
        self._check_trainable("backward")
        if self._cache is None:
            raise RuntimeError(
                "backward: no training-mode forward to differentiate (call forward in training mode first)"
            )
        cache, (T, B, _) = self._cache
        dtype = FLOAT_DTYPES[self.dtype]
        DH, LD, H = self.num_directions * self.hidden_size, self.num_layers * self.num_directions, self.hidden_size
        if self.batch_first:
            dys = as_float_array(dy, "dy", dtype, (B, T, DH), f"(B, T, D*H) = ({B}, {T}, {DH})")
            dys = np.ascontiguousarray(dys.transpose(1, 0, 2))
        else:
            dys = as_float_array(dy, "dy", dtype, (T, B, DH), f"(T, B, D*H) = ({T}, {B}, {DH})")
        dh = (
            None if dh_n is None else as_float_array(dh_n, "dh_n", dtype, (LD, B, H), f"(L*D, B, H) = ({LD}, {B}, {H})")
        )

        dx: FloatArray | None
        dh0: FloatArray
        if self.backend == "cpp":
            workspace, lengths, dropout = cache
            dx, dh0 = self._core_backward(
                self.config, self._params, workspace, dys, self._grad, dh, lengths, dropout, bool(input_grad)
            )
        else:
            dx, dh0, grads = reference.gru_backward(
                self.state_dict(),
                cache,
                dys,
                np.zeros((LD, B, H), dtype) if dh is None else dh,
                num_layers=self.num_layers,
                bidirectional=self.bidirectional,
                reset_after=self.reset_after,
            )
            views = self.grads()
            for name, g in grads.items():
                views[name] += g
            if not input_grad:
                dx = None
        if self.batch_first and dx is not None:
            dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
        return dx, dh0

    def _reference_params(self) -> dict[str, Any]:
        """The parameters as the NumPy reference takes them: state_dict(), with the weight matrices
        of an int8 object as reference.Int8Rows."""
        params: dict[str, Any] = dict(self.state_dict())
        if self.quantization is not None:
            int8_views = self._views(self._int8)
            for name, scale in self._int8_scales.items():
                params[name] = reference.Int8Rows(int8_views[name], scale)
        return params

    def _int8_kernel_args(self) -> tuple[npt.NDArray[np.int8], FloatArray]:
        """The int8 weights as the compiled step and forward take them, made at the first call: packed
        in the kernels' panels (_core.gru_pack_int8), and their row scales (L*D, 2, 3H), each
        direction's weight_ih rows then weight_hh rows (the layout's order of its matrices)."""
        args: tuple[npt.NDArray[np.int8], FloatArray] | None = getattr(self, "_int8_kernel_cache", None)
        if args is None:
            matrices = [self._int8_scales[name] for name, _, shape in self._layout if len(shape) == 2]
            scales = np.stack(matrices).reshape(-1, 2, 3 * self.hidden_size)
            args = self._int8_kernel_cache = (_core.gru_pack_int8(self.config, self._int8), scales)
        return args

    def _workspace(self, T: int, B: int) -> FloatArray:
        """The core's training workspace for (T, B): the previous forward's when it fits, since
        only the last forward is ever differentiated (a fresh large buffer costs page faults).
        Drops the previous cache either way, so two are never alive at once."""
        size = _core.gru_workspace_size(self.config, T, B)
        previous: FloatArray | None = self._cache[0][0] if self._cache is not None else None
        self._cache = None
        if previous is not None and previous.size == size:
            return previous
        previous = None
        return np.empty(size, FLOAT_DTYPES[self.dtype])

    def _dropout_masks(self, T: int, B: int) -> FloatArray | None:
        """Multipliers (0 or 1/(1-p)) for the inputs of layers 1.. (L-1, T, B, D*H), drawn from the
        layer's seed; None without dropout."""
        if self.dropout == 0.0 or self.num_layers == 1:
            return None
        keep = 1.0 - self.dropout
        shape = (T, B, self.num_directions * self.hidden_size)
        return np.stack(
            [((self._rng.random(shape) < keep) / keep).astype(self.dtype) for _ in range(self.num_layers - 1)]
        )

    def __repr__(self) -> str:
        return (
            f"GRU({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bias={self.bias}, batch_first={self.batch_first}, bidirectional={self.bidirectional}, "
            f"dropout={self.dropout}, reset_after={self.reset_after}, dtype={self.dtype!r}, "
            f"compute_dtype={self.compute_dtype!r}, backend={self.backend!r}"
            + (f", quantization={self.quantization!r})" if self.quantization else ")")
        )


def gru_config(
    input_size: object,
    hidden_size: object,
    num_layers: object,
    bidirectional: bool,
    bias: bool,
    reset_after: bool,
    compute_dtype: str,
) -> _core.GruConfig:
    """The core's GruConfig; TypeError/ValueError naming the argument for a bad size,
    OverflowError when the parameters could not fit in one buffer (before any allocation)."""
    layers = check_positive_int(num_layers, "num_layers")
    if layers > _core.MAX_LAYERS:
        raise ValueError(f"num_layers: expected at most {_core.MAX_LAYERS}, got {layers}")
    return _core.GruConfig(
        check_size(input_size, "input_size"),
        check_size(hidden_size, "hidden_size"),
        layers,
        bool(bidirectional),
        bool(bias),
        bool(reset_after),
        compute_dtype,
    )


def check_lengths(lengths: npt.ArrayLike, T: int, B: int) -> IntArray:
    """lengths as a contiguous int64 (B,) array with every entry in 1..T, else TypeError/ValueError."""
    arr = np.asarray(lengths)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths: expected integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths: expected shape (B,) = ({B},), got {arr.shape}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(f"lengths: every length must be in 1..T = 1..{T}, got min {arr.min()}, max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)
