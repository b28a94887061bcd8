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
import struct

import numpy as np

from ._files import write_atomically

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}
CODES = {dtype: code for code, dtype in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024


def write_safetensors(path, tensors, metadata=None):
    """Writes dict name -> array (float32, float64 or int64) and metadata (dict str -> str) to path
    atomically: a temporary file in the same folder, then os.replace, so a crash never leaves a
    half-written file under path."""
    header, chunks, offset = {}, [], 0
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
    text += b" " * (-len(text) % 8)          # the data starts 8-byte aligned, as safetensors writes it

    write_atomically(path, [struct.pack("<Q", len(text)), text] + chunks)


def read_safetensors(path):
    """(dict name -> array, metadata dict) from a safetensors file; ValueError naming the file for
    anything that is not a complete safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()

    def bad(why):
        return ValueError(f"{path}: not a valid safetensors file ({why})")

    if len(blob) < 8:
        raise bad(f"{len(blob)} bytes, too short for the header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n < 2 or n > MAX_HEADER or 8 + n > len(blob):
        raise bad(f"header length {n} does not fit a file of {len(blob)} bytes; truncated or another format")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    data = memoryview(blob)[8 + n:]
    entries = []
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
    if position != len(data):
        raise bad(f"the tensors hold {position} bytes of data, the file {len(data)}; truncated?")
    tensors = {name: np.frombuffer(data[begin:end], dtype).reshape(shape).copy()
               for begin, end, name, dtype, shape in entries}
    return tensors, metadata
