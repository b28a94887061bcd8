"""The safetensors file format: named tensors and a str -> str metadata dict in one file.
Knows nothing of models (fastgru.persistence does).

The format is small enough to write ourselves, which keeps numpy fastgru's only dependency:
    8 bytes   little-endian u64 N, the header's length
    N bytes   JSON header: {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
                            "__metadata__": {str: str}}, padded with spaces to a multiple of 8
    the rest  the tensors' raw little-endian bytes, back to back, offsets relative to here
Files written here load with `safetensors.numpy.load_file` (and `safetensors.torch.load_file`).
"""

import json
import math
import os
import stat
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ._files import write_atomically

DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I8": np.dtype("i1"),
}
CODES = {dtype: code for code, dtype in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024


def write_safetensors(
    path: str | os.PathLike[str], tensors: Mapping[str, npt.ArrayLike], metadata: Mapping[str, object] | None = None
) -> None:
    """Writes dict name -> array (float32, float64, int64 or int8) and metadata (dict str -> str) to path
    atomically: a temporary file in the same folder, then os.replace, so a crash never leaves a
    half-written file under path."""
    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    for name, value in tensors.items():
        arr = np.ascontiguousarray(value)
        dtype = arr.dtype.newbyteorder("<")
        if dtype not in CODES:
            raise TypeError(f"tensors['{name}']: cannot store dtype {arr.dtype}")
        data = arr.astype(dtype, copy=False).tobytes()
        header[name] = {"dtype": CODES[dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it

    write_atomically(path, [struct.pack("<Q", len(text)), text] + chunks)


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, npt.NDArray[Any]], dict[str, str]]:
    """(dict name -> array, metadata dict) from a safetensors file; ValueError naming the file for
    anything that is not a complete safetensors file. The header is checked against the file's
    size before the data is read, so a huge file of another format (or a device) is never read
    whole."""

    def bad(why: object) -> ValueError:
        return ValueError(f"{path}: not a valid safetensors file ({why})")

    # Before opening too: opening a pipe waits for a writer, forever if none comes.
    if not stat.S_ISREG(os.stat(os.fspath(path)).st_mode):
        raise bad("not a regular file")
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):  # replaced between the two looks
            raise bad("not a regular file")
        size = st.st_size
        if size < 8:
            raise bad(f"{size} bytes, too short for the header length")
        (n,) = struct.unpack("<Q", f.read(8))
        if n < 2 or n > MAX_HEADER or 8 + n > size:
            raise bad(f"header length {n} does not fit a file of {size} bytes; truncated or another format")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise bad(f"header is not JSON: {why}") from None
        metadata, entries, length = _parse_header(header, bad)
        if length != size - 8 - n:
            raise bad(f"the tensors hold {length} bytes of data, the file {size - 8 - n}; truncated?")
        data = f.read(length)
    if len(data) != length:
        raise bad("the file shrank while it was read")
    try:
        tensors = {
            name: np.frombuffer(data, dtype, math.prod(shape), begin).reshape(shape).copy()
            for begin, end, name, dtype, shape in entries
        }
    except ValueError as exc:  # shapes NumPy cannot represent (too many dimensions, say)
        raise bad(f"a tensor's shape cannot be built: {exc}") from None
    return tensors, metadata


def _parse_header(
    header: object, bad: Callable[[object], ValueError]
) -> tuple[dict[str, str], list[tuple[int, int, str, np.dtype[Any], tuple[int, ...]]], int]:
    """(metadata, entries (begin, end, name, dtype, shape) in file order, data length) of a parsed
    header; bad(why) makes the error for anything malformed."""
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    entries: list[tuple[int, int, str, np.dtype[Any], tuple[int, ...]]] = []
    for name, info in header.items():
        try:
            dtype = DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"tensor '{name}': unsupported dtype or malformed entry {info!r}") from None
        if min(shape, default=0) < 0 or end - begin != math.prod(shape) * dtype.itemsize:
            raise bad(f"tensor '{name}': offsets [{begin}, {end}] do not match shape {list(shape)}")
        entries.append((begin, end, name, dtype, shape))
    entries.sort()
    position = 0
    for begin, end, name, _, _ in entries:
        if begin != position:
            raise bad(f"tensor '{name}' starts at {begin}, expected {position}")
        position = end
    return metadata, entries, position
