"""fastgru: the fastest way to train a GRU on a CPU from Python."""

import importlib

from ._core import active_isa, available_isas, get_num_threads, set_isa, set_num_threads
from .gru import GRU
from .optim import Adam
from .layers import Dense
from .model import GRUModel, StepReport
from .training import NonFiniteLossError
from .estimators import GRUClassifier, GRURegressor
from .persistence import load
from . import convert

__version__ = "0.1.0"

__all__ = ["GRU", "Adam", "set_num_threads", "get_num_threads", "available_isas", "active_isa",
           "set_isa", "__version__"]

__all__ += ["GRURegressor", "GRUClassifier", "GRUModel", "StepReport", "Dense", "load", "NonFiniteLossError"]


def __getattr__(name):
    # fastgru.onnx needs the optional onnx package: loaded on first use (fastgru.onnx.export),
    # never by `import fastgru`.
    if name == "onnx":
        return importlib.import_module(".onnx", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
