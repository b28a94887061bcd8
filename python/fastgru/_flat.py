"""FlatParameters: the one-flat-buffer parameter plumbing shared by GRU, Dense and GRUModel.

All parameters of a module live in one contiguous 1-D buffer (`params`) and their gradients in a
second of the same layout (`grad`), so one fused optimizer pass updates everything; the named
tensors of state_dict() and grads() are views into them. A module can also live inside a bigger
module's buffers (`buffers=(params, grad)`): a whole model is then one buffer.
"""

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ._backends import NUMPY as reference
from ._checks import as_numeric
from ._typing import FloatArray, Layout


def layout_end(layout: Layout) -> int:
    """The size of a flat buffer with this layout [(name, offset, shape)] (the core's layouts
    tile their buffer in order)."""
    _, offset, shape = layout[-1]
    return offset + math.prod(shape)


_Module = TypeVar("_Module", bound="FlatParameters")


class FlatParameters:
    """Base class. Subclasses call `super().__init__(size, dtype, buffers)` and set `_layout`, a
    list of (name, offset, shape) tiling the buffer, before state_dict() is used. Backward keeps
    what it needs in `_cache`, which eval mode drops.

    fastgru.quantize makes int8 copies (quantization == "int8"): every weight matrix is kept as
    int8 values with one float32 scale per row (fastgru.reference.quantize), and params holds the
    weights they stand for (read-only). Such an object is for inference only."""

    quantization: str | None = None  # "int8" for fastgru.quantize's copies

    _layout: Layout
    _int8: npt.NDArray[np.int8]
    _int8_scales: dict[str, npt.NDArray[np.float32]]

    def __init__(
        self, size: int, dtype: npt.DTypeLike, buffers: tuple[FloatArray, FloatArray] | list[FloatArray] | None = None
    ) -> None:
        """`buffers`: None to allocate, or a (params, grad) pair of writable contiguous 1-D arrays
        of `size` elements of dtype to live in; grad is zeroed, params is left to the subclass."""
        if buffers is None:
            try:
                self._params: FloatArray = np.empty(size, dtype)
                self._grad: FloatArray = np.zeros(size, dtype)
            except MemoryError:
                gib = 2 * size * np.dtype(dtype).itemsize / 2**30
                raise MemoryError(
                    f"{type(self).__name__}: not enough memory for {size} parameters "
                    f"({gib:.1f} GiB with their gradients)"
                ) from None
        else:
            if not isinstance(buffers, (tuple, list)) or len(buffers) != 2:
                raise ValueError("buffers: expected a (params, grad) pair of arrays")
            self._params, self._grad = (
                _check_buffer(b, name, size, dtype) for b, name in zip(buffers, ("buffers[0]", "buffers[1]"))
            )
            check_separate(self._params, self._grad, "buffers[1]", "buffers[0]")
            self._grad.fill(0)
        self.training = True
        self._cache: Any = None

    @property
    def params(self) -> FloatArray:
        """All parameters, one flat contiguous buffer (state_dict() values are views into it)."""
        return self._params

    @property
    def grad(self) -> FloatArray:
        """Gradients, same layout as params; backward() adds into it."""
        return self._grad

    def _views(self, flat: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
        return {name: flat[offset : offset + math.prod(shape)].reshape(shape) for name, offset, shape in self._layout}

    def state_dict(self) -> dict[str, FloatArray]:
        """dict name -> view into params, with PyTorch's names and shapes."""
        return self._views(self._params)

    def grads(self) -> dict[str, FloatArray]:
        """dict name -> view into grad, same keys and shapes as state_dict()."""
        return self._views(self._grad)

    def load_state_dict(self, mapping: Mapping[str, Any]) -> None:
        """Copies every tensor of mapping in; all keys and shapes are checked before any value is
        written, so a bad mapping leaves the weights unchanged."""
        self._check_trainable("load_state_dict")
        views = self.state_dict()
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

    def zero_grad(self) -> None:
        self._grad.fill(0)

    # -- int8 weights (fastgru.quantize) -------------------------------------------------------
    def _check_trainable(self, what: str) -> None:
        """RuntimeError naming `what` for an object that fastgru.quantize made (inference only)."""
        if self.quantization is not None:
            raise RuntimeError(
                f"{what}: this {type(self).__name__} is quantized ({self.quantization}) for "
                "inference only; train the float model and quantize it again"
            )

    def quantized_state_dict(self) -> dict[str, npt.NDArray[Any]]:
        """What a file of an int8 object holds: each weight matrix as int8 under its name, its row
        scales (float32) under name + ".scale", each bias as float32. RuntimeError for a float object."""
        if self.quantization is None:
            raise RuntimeError(f"quantized_state_dict: this {type(self).__name__} is not quantized (fastgru.quantize)")
        int8_views = self._views(self._int8)
        tensors: dict[str, npt.NDArray[Any]] = {}
        for name, view in self.state_dict().items():
            if name in self._int8_scales:
                tensors[name] = int8_views[name]
                tensors[name + ".scale"] = self._int8_scales[name]
            else:
                tensors[name] = view
        return tensors

    def _install_int8(
        self, weights: Mapping[str, npt.NDArray[np.int8]], scales: Mapping[str, npt.NDArray[np.floating[Any]]]
    ) -> None:
        """Makes this object int8: weights {name: int8 (rows, cols)} and scales {name: float32 (rows,)}
        for every weight matrix (the biases are already in params). params takes the weights they
        stand for and becomes read-only; the object goes to eval mode."""
        views = self.state_dict()
        self._int8 = np.zeros(self._params.size, np.int8)
        int8_views = self._views(self._int8)
        self._int8_scales = {}
        for name, view in views.items():
            if view.ndim == 2:
                int8_views[name][...] = weights[name]
                self._int8_scales[name] = np.ascontiguousarray(scales[name], np.float32)
                view[...] = reference.dequantize_rows(weights[name], scales[name])
        self._become_int8()

    def __getstate__(self) -> dict[str, Any]:
        # The int8 kernels' packed copy of the weights is rebuilt at first use: a pickle holds the
        # int8 weights once, in no particular fastgru version's packing.
        state = dict(self.__dict__)
        state.pop("_int8_kernel_cache", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickling: NumPy does not keep an array's read-only flag. A packed copy from an older
        # pickle may be in another version's packing: dropped, rebuilt at first use.
        self.__dict__.update(state)
        self.__dict__.pop("_int8_kernel_cache", None)
        if self.quantization is not None:
            self._params.flags.writeable = False

    def _become_int8(self) -> None:
        self.__dict__.pop("_int8_kernel_cache", None)  # the compiled kernels' copy of the old weights
        self.quantization = "int8"
        self.eval()
        self._params.flags.writeable = False

    def train(self: _Module, mode: bool = True) -> _Module:
        self.training = bool(mode)
        if not self.training:
            self._cache = None
        return self

    def eval(self: _Module) -> _Module:
        return self.train(False)


def grad_norm(grad: FloatArray) -> float:
    """The L2 norm of a flat buffer, summed in float64 so float32 gradients cannot overflow."""
    return float(np.sqrt(np.sum(np.square(grad, dtype=np.float64))))


def clip_scale(norm: float, max_norm: float) -> float:
    """The factor that brings a gradient of norm `norm` to norm <= max_norm, as
    torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6) when that is below 1, else 1."""
    coef = max_norm / (norm + 1e-6)
    return coef if coef < 1.0 else 1.0


def clip_grad_norm(grad: FloatArray, max_norm: float) -> float:
    """Scales the flat gradient buffer grad in place so that its L2 norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_); returns the norm before clipping."""
    total = grad_norm(grad)
    coef = clip_scale(total, max_norm)
    if coef < 1.0:
        grad *= grad.dtype.type(coef)
    return total


def _check_buffer(buf: object, name: str, size: int, dtype: npt.DTypeLike) -> FloatArray:
    """buf if it is a writable contiguous 1-D array of `size` elements of dtype, else ValueError."""
    if (
        not isinstance(buf, np.ndarray)
        or buf.dtype != dtype
        or buf.ndim != 1
        or buf.size != size
        or not buf.flags.c_contiguous
        or not buf.flags.writeable
    ):
        raise ValueError(f"{name}: expected a writable contiguous 1-D {np.dtype(dtype).name} array of size {size}")
    return buf


def check_separate(grad: npt.NDArray[Any], params: npt.NDArray[Any], grad_name: str, params_name: str) -> None:
    """ValueError if two buffers share memory: gradients added into the weights, or zero_grad
    zeroing them, would corrupt the model silently."""
    if np.shares_memory(grad, params):
        raise ValueError(f"{grad_name}: shares memory with {params_name}; give each its own buffer")
