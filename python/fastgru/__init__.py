"""fastgru: the fastest way to train a GRU on a CPU from Python.

Layers with explicit backward over flat parameter buffers, with torch.nn.GRU's weight names,
shapes and gate order (r, z, n):
    GRU        multi-layer, optionally bidirectional GRU (help(fastgru.GRU): shapes, equations)
    Dense      torch.nn.Linear over the last axis
    Adam       torch.optim.Adam / AdamW as one fused pass over a flat buffer
Training API: GRURegressor and GRUClassifier (scikit-learn estimators), GRUModel (GRU + Dense
head + loss), load (a model saved with .save(path)), NonFiniteLossError; convert: weights from
Keras and ONNX. Optional parts, each loaded on first use: fastgru.torch (a drop-in
torch.nn.GRU), fastgru.keras (a drop-in keras.layers.GRU, Keras 3), fastgru.jax (a JAX function
and a Flax module), fastgru.onnx (export to ONNX), fastgru.distributed (training over MPI).
fastgru.reference is the NumPy specification of the math (backend="numpy").

Runtime: set_num_threads(n) / get_num_threads() size the thread pool (default OMP_NUM_THREADS,
else the core count); results are bit-identical for any thread count. The hot kernels exist per
instruction set; available_isas() lists those this CPU runs, active_isa() names the one in use
(the widest, unless the FASTGRU_ISA environment variable names another, in any case), and
set_isa(name) switches. A forward or backward keeps its temporaries' memory for the next call
(no page faults on fresh memory); release_memory() frees it (the calling thread's and the
thread pool's).
"""

import importlib
import types

from . import convert
from ._core import __version__, active_isa, available_isas, get_num_threads, release_memory, set_isa, set_num_threads
from .dense import Dense
from .estimators import GRUClassifier, GRURegressor
from .gru import GRU
from .model import GRUModel, StepReport
from .optim import Adam
from .persistence import load
from .quantization import quantize
from .training import NonFiniteLossError

__all__ = [
    "GRU",
    "Adam",
    "__version__",
    "active_isa",
    "available_isas",
    "convert",
    "get_num_threads",
    "release_memory",
    "set_isa",
    "set_num_threads",
]

__all__ += [
    "Dense",
    "GRUClassifier",
    "GRUModel",
    "GRURegressor",
    "NonFiniteLossError",
    "StepReport",
    "load",
    "quantize",
]


def __getattr__(name: str) -> types.ModuleType:
    # fastgru.onnx, fastgru.torch, fastgru.keras and fastgru.jax need optional packages (onnx, torch,
    # keras, jax): each is loaded on first use (fastgru.torch.GRU, ...), never by `import fastgru`.
    if name in ("onnx", "torch", "keras", "jax"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
