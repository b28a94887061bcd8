"""The NumPy reference implementation: the readable specification of fastgru's math."""

from .adam import adam_step
from .gru import gru_backward, gru_forward
from .heads import LOSSES, dense_backward, dense_forward
from .quantize import Int8Rows, dequantize_rows, int8_product, quantize_activations, quantize_rows

__all__ = [
    "LOSSES",
    "Int8Rows",
    "adam_step",
    "dense_backward",
    "dense_forward",
    "dequantize_rows",
    "gru_backward",
    "gru_forward",
    "int8_product",
    "quantize_activations",
    "quantize_rows",
]
