"""Argument checks shared by the layers: clear errors that name the argument and its expected shape."""

import math
from collections.abc import Callable
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import MAX_ELEMENTS
from ._typing import FloatArray

FLOAT_DTYPES: dict[str, type[np.floating[Any]]] = {"float32": np.float32, "float64": np.float64}


def to_dtype_name(dtype: npt.DTypeLike) -> str:
    """'float32' or 'float64' from a name, a NumPy dtype or a scalar type; ValueError otherwise."""
    try:
        name: str = np.dtype(dtype).name
    except TypeError:
        name = ""
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return name


def core_entry(name: str, dtype: npt.DTypeLike) -> Callable[..., Any]:
    """The compiled entry `name` for float32 or float64 data (a name or a NumPy dtype): the core
    binds each once per dtype, as f"{name}_{dtype}" (an overload set would silently convert)."""
    entry = _CORE_ENTRIES.get((name, dtype))  # per step of a stream: the lookup costs 3 us
    if entry is None:
        entry = _CORE_ENTRIES[(name, dtype)] = getattr(_core, f"{name}_{np.dtype(dtype).name}")
    return entry


_CORE_ENTRIES: dict[tuple[str, Any], Callable[..., Any]] = {}


COMPUTE_DTYPES = ("float32", "bfloat16")


def check_compute_dtype(compute_dtype: object, dtype: str) -> str:
    """compute_dtype ('float32' or 'bfloat16', the precision of a GRU's products) for parameters of
    dtype (a name from FLOAT_DTYPES); ValueError naming compute_dtype otherwise, and for bfloat16
    with float64 parameters."""
    if not isinstance(compute_dtype, str) or compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype: expected 'float32' or 'bfloat16', got {compute_dtype!r}")
    if compute_dtype == "bfloat16" and dtype != "float32":
        raise ValueError(f"compute_dtype: 'bfloat16' needs dtype='float32', got dtype={dtype!r}")
    return compute_dtype


def as_numeric(value: object, name: str) -> npt.NDArray[Any]:
    """Any array-like (torch tensors included) as a NumPy array; TypeError if it is not real numbers."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array of real numbers ({exc})") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    return arr


def is_float_array(value: object, dtype: npt.DTypeLike, shape: tuple[int | None, ...]) -> TypeGuard[FloatArray]:
    """True when value is already a C-contiguous ndarray of dtype with exactly `shape` (None
    entries match anything), which as_float_array returns as it is. Cheap, for per-step paths
    (a stream step costs microseconds) that then skip building an error message."""
    if (
        type(value) is not np.ndarray
        or value.dtype != _NUMPY_DTYPES.get(dtype, dtype)  # a dtype compares faster than a scalar type
        or not value.flags.c_contiguous
    ):
        return False
    got: tuple[int, ...] = value.shape
    if None not in shape:
        return got == shape
    if len(got) != len(shape):
        return False
    for want, size in zip(shape, got):  # noqa: SIM110  # a loop: cheaper than all() on a generator
        if want is not None and want != size:
            return False
    return True


_NUMPY_DTYPES: dict[Any, np.dtype[Any]] = {t: np.dtype(t) for t in FLOAT_DTYPES.values()}


def as_float_array(
    value: object, name: str, dtype: npt.DTypeLike, shape: tuple[int | None, ...], shape_text: str
) -> FloatArray:
    """value as a C-contiguous array of dtype with exactly `shape` (None entries match anything)."""
    if is_float_array(value, dtype, shape):
        assert isinstance(value, np.ndarray)
        return value
    arr = as_numeric(value, name)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        raise ValueError(f"{name}: expected shape {shape_text}, got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def check_non_negative(value: object, name: str) -> float:
    """value as a float: TypeError naming the argument for a non-number, ValueError unless it is
    finite and >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    number = float(value)  # math on a float: np.isfinite costs a microsecond per optimizer step
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return number


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_size(value: object, name: str) -> int:
    """A dimension: an int >= 1 (TypeError/ValueError otherwise) that a buffer can have
    (OverflowError above MAX_ELEMENTS, before anything is allocated)."""
    size = check_positive_int(value, name)
    if size > MAX_ELEMENTS:
        raise OverflowError(f"{name}: {size} is more elements than a buffer can hold (at most {MAX_ELEMENTS})")
    return size


def check_element_count(count: int, what: str) -> int:
    """count (an exact Python int) if a buffer of that many elements can exist, else OverflowError."""
    if count > MAX_ELEMENTS:
        raise OverflowError(f"{what}: {count} elements is more than a buffer can hold (at most {MAX_ELEMENTS})")
    return count
