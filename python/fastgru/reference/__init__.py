"""The NumPy reference implementation: the readable specification of fastgru's math."""

from .adam import adam_step
from .gru import gru_backward, gru_forward
from .heads import LOSSES, dense_backward, dense_forward
from .quantize import dequantize_rows, quantize_rows

__all__ = [
    "LOSSES",
    "adam_step",
    "dense_backward",
    "dense_forward",
    "dequantize_rows",
    "gru_backward",
    "gru_forward",
    "quantize_rows",
]
