"""fastgru.quantize (this module's quantize): int8 copies of trained models, for inference.

    small = fastgru.quantize(model)          # a GRU, a GRUModel, or a fitted GRURegressor/GRUClassifier
    small.predict(X); small.save("m.safetensors")   # a quarter of the float32 file

Every weight matrix (each gate row of weight_ih and weight_hh, each output row of the head) is
stored as int8 with one float32 scale per row, symmetric; every product of the GRU meets it with
its float32 vector quantized on the fly to int8 with one scale of its own (x_t or a lower layer's
output, h, and r * h for reset_after=False), summed exactly in int32 and scaled
(fastgru.reference.quantize is the specification). Biases, states, gate math and outputs stay
float32; the head's small product keeps float32 activations. The outputs differ from float32's
by a relative error of about 1e-2 or less.

Where it pays: the stream step (GRU.step, stream()), a matrix-vector product bound by reading
the weights, reads a quarter of float32's bytes. Whole sequences (forward, predict) run through
the same steps, so streams give exactly the forward's results. Nothing trains an int8 copy
(a training-mode forward, backward, train_step, fit, Adam raise RuntimeError); ONNX export
refuses it (ONNX Runtime's GRU has no int8 weights).
"""

import copy
from typing import TypeVar

import numpy as np

from ._backends import NUMPY as reference
from .estimators import GRUEstimator
from .gru import GRU
from .model import GRUModel

DTYPES = ("int8",)

Quantizable = TypeVar("Quantizable", GRU, GRUModel, GRUEstimator)


def quantize(obj: Quantizable, dtype: str = "int8") -> Quantizable:
    """A new object of obj's class (fastgru.GRU, fastgru.GRUModel, or a fitted GRURegressor /
    GRUClassifier) with int8 weights, for inference; obj is left as it is. compute_dtype of the
    copy is "float32" (the GRU's products take int8 activations, its gate math float32).

    ValueError for another dtype, a float64 object, or weights holding NaN or infinity;
    TypeError for other objects; an unfitted estimator raises as its predict does."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
    if isinstance(obj, GRUEstimator):
        obj._check_fitted()
        estimator = type(obj)(**dict(obj.get_params(), compute_dtype="float32"))
        estimator._restore_fitted(copy.deepcopy(obj._fitted_state()), quantize(obj.model_, dtype))
        return estimator
    if not isinstance(obj, (GRU, GRUModel)):
        raise TypeError(
            f"quantize: expected a fastgru.GRU, GRUModel, GRURegressor or GRUClassifier, got {type(obj).__name__}"
        )
    if obj.quantization is not None:
        raise ValueError(f"quantize: this {type(obj).__name__} is already quantized ({obj.quantization})")
    if obj.dtype != "float32":
        raise ValueError(f"quantize: int8 weights stand for float32 ones; this {type(obj).__name__} is {obj.dtype}")
    state = obj.state_dict()
    for name, value in state.items():
        if not np.isfinite(value).all():
            raise ValueError(f"quantize: parameter {name} holds NaN or infinity")
    if isinstance(obj, GRUModel):
        result = GRUModel(**dict(obj.config, compute_dtype="float32"))
    else:
        result = GRU(
            obj.input_size,
            obj.hidden_size,
            obj.num_layers,
            bias=obj.bias,
            batch_first=obj.batch_first,
            bidirectional=obj.bidirectional,
            dropout=obj.dropout,
            reset_after=obj.reset_after,
            dtype=obj.dtype,
            backend=obj.backend,
        )
    result.load_state_dict(state)  # the biases (the weights are replaced below)
    matrices = {name: reference.quantize_rows(value) for name, value in state.items() if value.ndim == 2}
    result._install_int8({n: q for n, (q, _) in matrices.items()}, {n: s for n, (_, s) in matrices.items()})
    return result
